"""Reports of benchmark results: plain-text tables, CSV files and figures."""
import csv as _csv
import math
import os

import numpy as np

from ..datasets._tabular import REGRESSION
from ._errors import BenchmarkError
from ._models import MODELS
from ._runner import CSV_COLUMNS

__all__ = ["format_table", "write_csv", "plot_results", "check_figure_format"]


def _ranked(rows):
    """Group rows by dataset (first-seen order), best score first."""
    groups = {}
    for row in rows:
        groups.setdefault(row["dataset"], []).append(row)
    for name, group in groups.items():
        groups[name] = sorted(
            group, key=lambda r: (math.isnan(r["score_mean"]), -r["score_mean"]
                                  if not math.isnan(r["score_mean"]) else 0.0))
    return groups


def _fmt_time(seconds):
    if math.isnan(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e3:.2f}ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds:.2f}s"


def _fmt_pair(mean, std):
    # four significant digits for the mean, the same decimals for the spread
    magnitude = math.floor(math.log10(abs(mean))) if mean and math.isfinite(mean) else 0
    decimals = max(0, 3 - magnitude)
    return f"{mean:.{decimals}f} +/- {std:.{decimals}f}"


def _align(cells, widths, right):
    parts = [c.rjust(w) if k in right else c.ljust(w)
             for k, (c, w) in enumerate(zip(cells, widths, strict=True))]
    return (" " + "  ".join(parts)).rstrip()


def format_table(rows):
    """Format benchmark rows as plain-text tables, one per dataset, best first.

    Parameters
    ----------
    rows : list of dict
        As returned by :func:`run_benchmark`.

    Returns
    -------
    text : str

    Examples
    --------
    >>> from skinfinite.benchmark import format_table
    >>> rows = [dict(dataset="toy", task="classification", model="rf",
    ...              score_mean=0.9, score_std=0.01, metric="accuracy",
    ...              fit_time_s=0.2, predict_time_s=0.01, n_samples=100,
    ...              n_features=4, folds=5)]
    >>> print(format_table(rows))
    toy: classification, 100 samples x 4 features, 5-fold CV
     rank  model  accuracy           fit time  predict time
        1  rf     0.9000 +/- 0.0100     200ms          10ms
    """
    return "\n\n".join(_format_block(name, group)
                       for name, group in _ranked(rows).items())


def _format_block(name, group):
    """The table of one dataset, its rows already ranked."""
    first = group[0]
    folds = first.get("folds")
    if folds == 0:  # a time-series dataset on its fixed split
        header = (f"{name}: {first['task']}, {first['n_samples']} training series, "
                  f"{first['n_features']} channels, fixed train/test split")
    else:
        header = (f"{name}: {first['task']}, {first['n_samples']} samples x "
                  f"{first['n_features']} features"
                  + (f", {folds}-fold CV" if folds else ""))
    regression = first["task"] == REGRESSION
    metric = "R^2" if first["metric"] == "r2" else first["metric"]
    columns = ["rank", "model", metric]
    if regression:
        columns.append("RMSE")
    columns += ["fit time", "predict time"]
    table = [_table_cells(rank, row, regression)
             for rank, row in enumerate(group, start=1)]
    widths = [max(len(columns[k]), *(len(r[k]) for r in table))
              for k in range(len(columns))]
    # rank and times right-aligned, names and scores left-aligned
    right = {0, len(columns) - 2, len(columns) - 1}
    lines = [header] + [_align(cells, widths, right) for cells in [columns, *table]]
    errors = [r for r in group if r.get("error")]
    lines += [f"   {r['model']} failed: {r['error']}" for r in errors]
    return "\n".join(lines)


def _table_cells(rank, row, regression):
    if row.get("error"):
        cells = ["-", row["model"], "failed"]
        if regression:
            cells.append("-")
        return cells + ["-", "-"]
    score = f"{row['score_mean']:.4f}"
    if not math.isnan(row["score_std"]):
        score += f" +/- {row['score_std']:.4f}"
    cells = [str(rank), row["model"], score]
    if regression:
        cells.append(_fmt_pair(row["rmse_mean"], row["rmse_std"]))
    return cells + [_fmt_time(row["fit_time_s"]), _fmt_time(row["predict_time_s"])]


def write_csv(rows, path):
    """Write benchmark rows to a CSV file, one line per (dataset, model).

    The columns are :data:`CSV_COLUMNS`; missing numbers are empty cells.

    Parameters
    ----------
    rows : list of dict
        As returned by :func:`run_benchmark`.
    path : str or path-like

    Examples
    --------
    >>> import os, tempfile
    >>> from skinfinite.benchmark import run_benchmark, write_csv
    >>> rows = run_benchmark("iris", folds=2, models="svm_rbf", show_progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "results.csv")
    >>> write_csv(rows, path)
    >>> open(path).readline().strip().split(",")[:3]
    ['dataset', 'task', 'model']
    """
    def cell(value):
        if isinstance(value, float):
            return "" if math.isnan(value) else repr(value)
        return "" if value is None else value

    with open(os.fspath(path), "w", newline="", encoding="utf-8") as handle:
        writer = _csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([cell(row.get(column)) for column in CSV_COLUMNS])


def check_figure_format(path):
    """The figure format a path's extension names, if matplotlib writes it.

    Parameters
    ----------
    path : str or path-like
        Without an extension, matplotlib's default format
        (``rcParams["savefig.format"]``) is used.

    Returns
    -------
    format : str

    Raises
    ------
    BenchmarkError
        If matplotlib cannot write that format (the message lists those it
        can).

    Examples
    --------
    >>> from skinfinite.benchmark import check_figure_format
    >>> check_figure_format("results.svg")
    'svg'
    """
    import matplotlib
    from matplotlib.backend_bases import FigureCanvasBase

    extension = os.path.splitext(os.fspath(path))[1]
    fmt = (extension[1:] if extension else matplotlib.rcParams["savefig.format"]).lower()
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise BenchmarkError(
            f"matplotlib cannot write {fmt!r} figures ({os.fspath(path)!r}); "
            f"use one of the extensions {', '.join('.' + f for f in sorted(supported))}.")
    return fmt


_FAMILY_COLOURS = {"ntk": "#1f77b4", "nngp": "#2ca02c", "signature": "#d62728",
                   "baseline": "#7f7f7f"}


def plot_results(rows, path):
    """Plot mean scores with fold standard deviations, one panel per dataset.

    Bars are horizontal, best model on top, each labelled with its score;
    NTK models are blue, NNGP models green, signature kernels red and
    baselines grey.  The score axis runs from 0 to 1 (accuracy and R^2 at
    most 1), so bar lengths compare as ratios; negative R^2 extends it to at
    most -1, and a bar beyond is cut there and labelled.  The figure is drawn
    with the Agg backend, so no display is needed.

    Parameters
    ----------
    rows : list of dict
        As returned by :func:`run_benchmark`.
    path : str or path-like
        Output file; the format follows the extension (``.png``, ``.pdf``,
        ``.svg``...).

    Returns
    -------
    figure : matplotlib.figure.Figure

    Examples
    --------
    >>> import os, tempfile
    >>> from skinfinite.benchmark import run_benchmark, plot_results
    >>> rows = run_benchmark("iris", folds=2, models="svm_rbf,rf", show_progress=False)
    >>> fig = plot_results(rows, os.path.join(tempfile.mkdtemp(), "results.png"))
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check_figure_format(path)
    groups = _ranked(rows)
    if not groups:
        raise BenchmarkError("No results to plot.")
    n_panels = len(groups)
    ncols = min(3, n_panels)
    nrows = math.ceil(n_panels / ncols)
    n_models = max(len(g) for g in groups.values())
    panel_height = 0.32 * n_models + 1.3
    figure = Figure(figsize=(5.2 * ncols, panel_height * nrows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, group) in zip(axes, groups.items(), strict=False):
        _plot_panel(ax, name, group)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    _add_legend(figure, axes[0], rows)
    figure.savefig(os.fspath(path), dpi=120)
    return figure


def _plot_panel(ax, name, group):
    """Bars of one dataset's ranked rows, best at the top."""
    from matplotlib.ticker import MaxNLocator

    group = group[::-1]  # barh draws the first bar at the bottom
    means = np.array([r["score_mean"] for r in group], dtype=float)
    # a fixed train/test split has no spread over folds
    stds = np.nan_to_num(np.array([r["score_std"] for r in group], dtype=float))
    colours = [_FAMILY_COLOURS.get(
        MODELS[r["model"]].family if r["model"] in MODELS else "", "#9467bd")
        for r in group]
    ok = ~np.isnan(means)
    positions = np.arange(len(group))
    metric = group[0]["metric"]
    left, right = _score_limits(means[ok], stds[ok])
    shown = np.clip(means, left, right)
    ax.barh(positions[ok], shown[ok], xerr=np.where(means == shown, stds, 0)[ok],
            color=np.array(colours)[ok], height=0.7,
            error_kw={"elinewidth": 1, "capsize": 2})
    for y_pos, mean, bar_end in zip(positions[ok], means[ok], shown[ok], strict=True):
        cut = mean != bar_end
        # inside the bar's far end when it is long, beyond it otherwise
        inside = abs(bar_end) > 0.35 * (right - left)
        ax.text(bar_end, y_pos, f" {mean:.3f}{' (cut)' if cut else ''} ",
                va="center", fontsize=7,
                ha=("right" if bar_end > 0 else "left") if inside else
                   ("left" if bar_end >= 0 else "right"),
                color="white" if inside else "black")
    ax.set_yticks(positions, [r["model"] for r in group], fontsize=8)
    ax.set_xlabel("R$^2$" if metric == "r2" else metric)
    ax.set_title(f"{name} ({group[0]['task']}, n={group[0]['n_samples']})",
                 fontsize=10)
    ax.set_xlim(left, right)
    if left < 0:
        ax.axvline(0.0, color="black", linewidth=0.8)
    for y_pos in positions[~ok]:
        ax.text(0.02, y_pos, "failed", transform=ax.get_yaxis_transform(),
                va="center", fontsize=8, color="firebrick")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.grid(axis="x", alpha=0.3)


def _score_limits(means, stds):
    """The score axis: from 0 (or down to -1 for a negative R^2) to 1.

    Accuracy and R^2 are at most 1; starting at 0 makes bar lengths ratios
    of scores, so a small difference looks small.
    """
    lo = float(np.min(means - stds)) if means.size else 0.0
    return max(min(0.0, lo * 1.05), -1.0), 1.0


def _add_legend(figure, first_ax, rows):
    from matplotlib.patches import Patch

    families = {MODELS[r["model"]].family for r in rows if r["model"] in MODELS}
    handles = [Patch(color=_FAMILY_COLOURS[f], label=label)
               for f, label in (("ntk", "NTK"), ("nngp", "NNGP"),
                                ("signature", "signature"), ("baseline", "baseline"))
               if f in families]
    if not handles:
        return
    try:
        figure.legend(handles=handles, loc="outside lower center",
                      ncols=len(handles), fontsize=8, frameon=False)
    except ValueError:  # matplotlib < 3.7 has no "outside" locations
        first_ax.legend(handles=handles, loc="lower right", fontsize=7)
