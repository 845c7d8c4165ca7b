"""Command-line interface: ``skinfinite benchmark``.

Examples
--------
Run the default benchmark (all built-in datasets, default models)::

    skinfinite benchmark

Two datasets, three folds, a CSV file and a figure of the results::

    skinfinite benchmark --dataset wine,diabetes --folds 3 \\
        --out results.csv --plot results.png

A table of your own, with only the ReLU networks and the SVM (a name
selects that model only; ``*`` and ``?`` match parts of names)::

    skinfinite benchmark --csv data.csv --target price --models "*relu*,svm_rbf"

Time series (signature kernels against baselines on resampled or summarised
series, scored on the archive's fixed train/test split)::

    skinfinite benchmark --dataset basic_motions,japanese_vowels

The same commands work as ``python -m skinfinite benchmark ...``.
"""
import argparse
import sys

__all__ = ["main", "build_parser"]

_BENCHMARK_EPILOG = """\
datasets (built into scikit-learn, nothing is downloaded):
  {datasets}
time-series datasets (shipped with skinfinite; run only when named; fixed
train/test split, --folds does not apply; only the sequence models run on them):
  {series}

models (default set marked with *; --models all runs every one):
{models}

A CSV table (--csv) is read with the first line as header; numeric columns are
median-imputed and standardised, other columns are imputed with their most
frequent value and one-hot encoded; rows with a missing target are dropped.
The task is inferred (classification for text targets or at most 20 distinct
integer values) unless --task is given.

Folds are shuffled with --seed and stratified for classification; regression
targets are standardised inside each fold.  Scores are accuracy or R^2 (mean
+/- standard deviation over folds); times are means per fold.

Each dataset's table is printed as soon as its models have run, and --out is
rewritten after every model, so an interrupted run (Ctrl-C) keeps what has
finished.  Exit status: 0 on success, 1 if a model failed or an output could
not be written, 2 for a usage error, 130 when interrupted.
"""


def _epilog():
    from .benchmark import list_models
    from .datasets import list_datasets, list_timeseries_datasets

    width = max(len(s.name) for s in list_models())
    lines = [f"  {'*' if s.default else ' '} {s.name.ljust(width)}  {s.description}"
             for s in list_models()]
    return _BENCHMARK_EPILOG.format(datasets=", ".join(list_datasets()),
                                    series=", ".join(list_timeseries_datasets()),
                                    models="\n".join(lines))


def build_parser():
    """Return the :class:`argparse.ArgumentParser` of the ``skinfinite`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="skinfinite",
        description="Infinite-width neural networks as scikit-learn kernel machines.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    bench = commands.add_parser(
        "benchmark",
        help="cross-validate NTK/NNGP models against RBF SVM, kernel ridge "
             "and random forest",
        description="Cross-validate infinite-width networks (NTK and NNGP kernel\n"
                    "machines) against an RBF SVM, RBF kernel ridge and a random\n"
                    "forest, and print a ranked table per dataset.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    data = bench.add_argument_group("data")
    data.add_argument(
        "-d", "--dataset", action="append", metavar="NAME",
        help="built-in dataset to use; repeat or separate with commas "
             "(default: all built-in tabular datasets, or none when --csv is "
             "given); basic_motions and japanese_vowels are time series")
    data.add_argument("--csv", metavar="PATH", help="benchmark a CSV table of your own")
    data.add_argument("--target", metavar="COLUMN",
                      help="column of the CSV table to predict (required with --csv)")
    data.add_argument("--task", choices=("classification", "regression"),
                      help="task of the CSV table (default: inferred from the target)")
    data.add_argument("--encoding", metavar="NAME",
                      help="text encoding of the CSV table (default: UTF-8, "
                           "else Windows-1252 or Latin-1, detected)")
    protocol = bench.add_argument_group("protocol")
    protocol.add_argument(
        "-m", "--models", action="append", metavar="NAMES",
        help="models to run: exact names, or wildcards (ntk_*, '*relu*') "
             "matching parts of names, comma-separated or repeated; 'all' "
             "runs every registered model (default: the models marked * below)")
    protocol.add_argument("-k", "--folds", type=int, default=5,
                          help="number of cross-validation folds (default: 5)")
    protocol.add_argument("--seed", type=int, default=0,
                          help="seed of the fold shuffling and random forests (default: 0)")
    protocol.add_argument("--scheduler", metavar="ADDRESS",
                          help="run the (dataset, model) jobs on the Dask "
                               "cluster of this scheduler, e.g. "
                               "tcp://10.0.0.1:8786 (the 'distributed' extra)")
    output = bench.add_argument_group("output")
    output.add_argument("-o", "--out", metavar="PATH",
                        help="write one CSV row per (dataset, model) to PATH")
    output.add_argument("--plot", metavar="PATH",
                        help="save a bar chart of the scores to PATH; the "
                             "extension names the format (.png, .pdf, .svg...)")
    output.add_argument("-q", "--quiet", action="store_true",
                        help="no progress report (by default a progress bar "
                             "on a terminal, one line per model in a log)")
    output.add_argument("--list", action="store_true",
                        help="list the datasets and models and exit")
    bench.set_defaults(handler=lambda args: _on_cluster(args, bench))
    return parser


def _on_cluster(args, parser):
    """``_benchmark`` with its jobs on the Dask cluster of ``--scheduler``."""
    if not args.scheduler or args.list:
        return _benchmark(args, parser)
    from .distributed import connect
    try:
        client = connect(args.scheduler)
    except (ImportError, ConnectionError, RuntimeError) as exc:
        parser.error(f"argument --scheduler: {exc}")
    try:
        return _benchmark(args, parser, backend="dask")
    finally:   # a closed cluster must not stay the default client
        client.close()


def _benchmark(args, parser, backend=None):
    from . import benchmark as bm
    from .datasets import DatasetError

    if args.list:
        print(_epilog())
        return 0
    if args.folds < 2:
        parser.error(f"--folds must be at least 2, got {args.folds}")
    if args.csv is None and (args.target is not None or args.task is not None
                             or args.encoding is not None):
        parser.error("--target, --task and --encoding only apply with --csv PATH")
    if args.csv is not None and args.target is None:
        parser.error("--csv needs --target COLUMN (the column to predict)")
    if args.plot:
        try:
            bm.check_figure_format(args.plot)
        except bm.BenchmarkError as exc:
            parser.error(f"argument --plot: {exc}")
    try:
        rows = bm.iter_benchmark(
            args.dataset, folds=args.folds, seed=args.seed, models=args.models,
            csv=args.csv, target=args.target, task=args.task,
            show_progress=not args.quiet, encoding=args.encoding,
            backend=backend)
    except (bm.BenchmarkError, DatasetError) as exc:
        parser.error(str(exc))
    done, shown = [], 0
    try:
        if args.out:   # an unwritable path fails now, not after the first model
            bm.write_csv(done, args.out)
        for row in rows:
            done.append(row)
            if args.out:
                bm.write_csv(done, args.out)
            if all(dataset != row["dataset"] for dataset, _ in rows.pending):
                shown = _show_tables(bm, done, shown)
    except KeyboardInterrupt:
        _show_tables(bm, done, shown)
        kept = f"; {len(done)} finished results are in {args.out}" if (
            args.out and done) else ""
        print(f"skinfinite benchmark: interrupted{kept}", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"skinfinite benchmark: error: {exc}", file=sys.stderr)
        return 1
    _show_tables(bm, done, shown)
    try:
        if args.out:
            print(f"\nresults written to {args.out}")
        if args.plot:
            bm.plot_results(done, args.plot)
            print(f"figure written to {args.plot}")
    except OSError as exc:
        print(f"skinfinite benchmark: error: {exc}", file=sys.stderr)
        return 1
    return 1 if any(row["error"] for row in done) else 0


def _show_tables(bm, rows, shown):
    """Print the tables of the datasets in ``rows[shown:]``; the new count."""
    if len(rows) > shown:
        from tqdm import tqdm

        # above a progress bar, if one is drawn
        tqdm.write(("\n" if shown else "") + bm.format_table(rows[shown:]),
                   file=sys.stdout)
    return len(rows)


def main(argv=None):
    """Run the ``skinfinite`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 if a model failed or an output could not be written,
        130 if interrupted (Ctrl-C).  Usage errors (unknown names, unreadable
        CSV tables, unknown figure formats) exit through
        :class:`SystemExit` with status 2 before anything is run.

    Examples
    --------
    >>> from skinfinite.cli import main
    >>> main(["benchmark", "--dataset", "iris", "--folds", "2", "--quiet",
    ...       "--models", "svm_rbf"])  # doctest: +SKIP
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
