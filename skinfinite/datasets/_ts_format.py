"""Reader of the ``.ts`` time-series format of the UEA & UCR archives.

The format (used by the archives at timeseriesclassification.com and by
sktime) is a text file with

* comment lines starting with ``#`` (the dataset's description);
* a header of ``@tag value`` lines: ``@problemName``, ``@timeStamps``,
  ``@missing``, ``@univariate``, ``@dimensions``, ``@equalLength``,
  ``@seriesLength``, ``@classLabel`` (``true`` followed by the labels, or
  ``false``), ``@targetLabel`` (regression archives), ending with ``@data``;
* one line per case: the dimensions (channels) separated by ``:``, each a
  comma-separated list of values (``?`` for a missing value), then the class
  label (or regression target) as the last ``:``-separated field.  With
  ``@timeStamps true`` each value is written ``(timestamp,value)``.
"""
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ._tabular import DatasetError

__all__ = ["TSFormatError", "TSHeader", "read_ts"]


class TSFormatError(DatasetError):
    """A ``.ts`` file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class TSHeader:
    """The header of a ``.ts`` file.

    Attributes
    ----------
    problem_name : str
    timestamps : bool
        Values are written ``(timestamp,value)``.
    missing : bool or None
        Whether ``?`` (missing values) may occur; None when not declared.
    univariate : bool or None
    dimensions : int or None
        Number of channels; None when not declared (then taken from the data).
    equal_length : bool or None
    series_length : int or None
    class_labels : tuple of str or None
        The declared class labels; None for files without class labels.
    target_label : bool
        The last field is a numeric regression target.
    description : str
        The comment lines, without their ``#``.
    """

    problem_name: str
    timestamps: bool = False
    missing: bool | None = None
    univariate: bool | None = None
    dimensions: int | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    class_labels: tuple | None = None
    target_label: bool = False
    description: str = field(default="", repr=False)

    @property
    def has_labels(self):
        return self.class_labels is not None or self.target_label


_BOOLEAN_TAGS = {"timestamps": "timestamps", "missing": "missing",
                 "univariate": "univariate", "equallength": "equal_length",
                 "targetlabel": "target_label"}
_INTEGER_TAGS = {"dimensions": "dimensions", "serieslength": "series_length"}
_KNOWN_TAGS = ("@problemName", "@timeStamps", "@missing", "@univariate",
               "@dimensions", "@equalLength", "@seriesLength", "@classLabel",
               "@targetLabel", "@data")

_TIMESTAMPED_VALUE = re.compile(r"\(\s*([^(),]*?)\s*,\s*([^(),]*?)\s*\)")


class _Lines:
    """Numbered lines of a file, for error messages that point at a line."""

    def __init__(self, path):
        self.path = path

    def error(self, line_number, message):
        return TSFormatError(f"{self.path}, line {line_number}: {message}")


def read_ts(path, *, return_header=False):
    """Read a ``.ts`` file of the UEA & UCR time-series archives.

    Parameters
    ----------
    path : str or path-like
        The file.
    return_header : bool, default=False
        Also return the parsed :class:`TSHeader`.

    Returns
    -------
    X : ndarray of shape (n_cases, length, n_channels) or list of ndarray
        A 3-D array when every case has the same length, else a list of
        ``(length_i, n_channels)`` arrays.  Missing values (``?``) are NaN.
        Timestamps, when the file has them, are checked and dropped: the
        values are kept in file order.
    y : ndarray of shape (n_cases,) or None
        Class labels (strings, as written in the file), regression targets
        (floats) for ``@targetLabel true``, or None for unlabelled files.
    header : TSHeader
        Only when ``return_header`` is true.

    Raises
    ------
    TSFormatError
        If the file is malformed: unknown or repeated tags, a bad boolean or
        integer, no ``@data`` section or no cases, a case with the wrong
        number of dimensions, a value that is not a number, an undeclared
        class label, lengths that contradict ``@equalLength`` or
        ``@seriesLength``, or ``?`` in a file declaring ``@missing false``.
        The message names the file and the line.
    FileNotFoundError
        If the file does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> from skinfinite.datasets import read_ts
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.ts")
    >>> with open(path, "w") as f:
    ...     _ = f.write("@problemName tiny\\n@univariate false\\n@dimensions 2\\n"
    ...                 "@classLabel true a b\\n@data\\n"
    ...                 "1,2,3:4,5,6:a\\n7,8:9,10:b\\n")
    >>> X, y = read_ts(path)
    >>> [x.shape for x in X], y.tolist()
    ([(3, 2), (2, 2)], ['a', 'b'])
    """
    path = os.fspath(path)
    lines = _Lines(path)
    with open(path, encoding="utf-8") as handle:
        numbered = enumerate((raw.rstrip("\r\n") for raw in handle), start=1)
        header = _read_header(numbered, lines)
        cases, labels = _read_cases(numbered, header, lines)
    X = _stack_if_equal(cases)
    y = _label_array(labels, header)
    return (X, y, header) if return_header else (X, y)


# --------------------------------------------------------------------- header
def _read_header(numbered, lines):
    comments, values, seen = [], {}, {}
    for line_number, raw in numbered:
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
            continue
        if not line.startswith("@"):
            raise lines.error(line_number, f"expected a header tag or @data before "
                              f"the data, got {_excerpt(line)}.")
        tag, rest = (line.split(None, 1) + [""])[:2]
        key = tag[1:].lower()
        if key in seen:
            raise lines.error(line_number, f"tag {tag} repeats the tag of line "
                              f"{seen[key]}.")
        seen[key] = line_number
        if key == "data":
            if rest.strip():
                raise lines.error(line_number, "@data takes no value; the cases "
                                  "start on the next line.")
            return _header_from(values, comments, lines, line_number)
        values[key] = _tag_value(key, tag, rest.strip(), lines, line_number)
    raise TSFormatError(f"{lines.path}: no @data line; a .ts file needs a header "
                        "ending with @data followed by one line per case.")


def _tag_value(key, tag, rest, lines, line_number):
    if key == "problemname":
        if not rest:
            raise lines.error(line_number, "@problemName needs a name.")
        return rest
    if key in _BOOLEAN_TAGS:
        return _boolean(tag, rest, lines, line_number)
    if key in _INTEGER_TAGS:
        try:
            value = int(rest)
        except ValueError:
            value = 0
        if value < 1:
            raise lines.error(line_number, f"{tag} needs a positive integer, got "
                              f"{rest!r}.")
        return value
    if key == "classlabel":
        flag, label_text = (rest.split(None, 1) + [""])[:2]
        if not _boolean(tag, flag, lines, line_number):
            if label_text.strip():
                raise lines.error(line_number, "@classLabel false takes no labels.")
            return None
        labels = tuple(label_text.split())
        if not labels:
            raise lines.error(line_number, "@classLabel true needs the list of "
                              "class labels after it.")
        if len(set(labels)) != len(labels):
            raise lines.error(line_number, f"@classLabel lists a label twice: "
                              f"{' '.join(labels)}.")
        return labels
    raise lines.error(line_number, f"unknown header tag {tag}; the known tags "
                      f"are {', '.join(_KNOWN_TAGS)}.")


def _boolean(tag, text, lines, line_number):
    word = text.strip().lower()
    if word not in ("true", "false"):
        raise lines.error(line_number, f"{tag} must be true or false, got {text!r}.")
    return word == "true"


def _header_from(values, comments, lines, data_line):
    if "problemname" not in values:
        raise lines.error(data_line, "the header has no @problemName.")
    kwargs = {_BOOLEAN_TAGS.get(k, _INTEGER_TAGS.get(k, k)): v for k, v in values.items()
              if k not in ("problemname", "classlabel")}
    header = TSHeader(problem_name=values["problemname"],
                      class_labels=values.get("classlabel"),
                      description="\n".join(comments).strip(), **kwargs)
    if header.class_labels is not None and header.target_label:
        raise lines.error(data_line, "the header declares both @classLabel true "
                          "and @targetLabel true; a case has one label.")
    if header.univariate and header.dimensions not in (None, 1):
        raise lines.error(data_line, f"@univariate true contradicts @dimensions "
                          f"{header.dimensions}.")
    return header


# ---------------------------------------------------------------------- cases
def _read_cases(numbered, header, lines):
    n_channels = 1 if header.univariate and header.dimensions is None else header.dimensions
    cases, labels = [], []
    for line_number, raw in numbered:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = _split_fields(line, header, lines, line_number)
        if header.has_labels:
            labels.append(_case_label(fields.pop().strip(), header, lines, line_number))
        if n_channels is None:
            n_channels = len(fields)
        if len(fields) != n_channels:
            raise lines.error(line_number, f"the case has {len(fields)} dimensions "
                              f"but {_expected_channels(header, n_channels)}.")
        cases.append(_case_values(fields, header, lines, line_number))
    if not cases:
        raise TSFormatError(f"{lines.path}: the @data section holds no cases.")
    _check_lengths(cases, header, lines)
    return cases, labels


def _split_fields(line, header, lines, line_number):
    if not header.timestamps:
        fields = line.split(":")
    else:
        # Timestamps may contain ':' (times of day), so split outside brackets.
        fields, depth, start = [], 0, 0
        for position, char in enumerate(line):
            depth += (char == "(") - (char == ")")
            if char == ":" and depth == 0:
                fields.append(line[start:position])
                start = position + 1
        fields.append(line[start:])
    if header.has_labels and len(fields) < 2:
        raise lines.error(line_number, "the case has no ':'-separated label after "
                          "its values.")
    return fields


def _expected_channels(header, n_channels):
    if header.dimensions is not None:
        return f"@dimensions declares {header.dimensions}"
    if header.univariate:
        return "@univariate true declares 1"
    return f"the first case has {n_channels}"


def _case_label(text, header, lines, line_number):
    if header.target_label:
        value = _number(text, lines, line_number, "the target")
        if not math.isfinite(value):
            raise lines.error(line_number, f"the target {text!r} is not a finite "
                              "number.")
        return value
    if text not in header.class_labels:
        raise lines.error(line_number, f"class label {text!r} is not among the "
                          f"labels declared by @classLabel: "
                          f"{' '.join(header.class_labels)}.")
    return text


def _case_values(fields, header, lines, line_number):
    channels = [_channel_values(text, header, lines, line_number, k)
                for k, text in enumerate(fields, start=1)]
    lengths = {len(c) for c in channels}
    if len(lengths) > 1:
        raise lines.error(line_number, f"the dimensions of the case have different "
                          f"lengths {[len(c) for c in channels]}; a case must have "
                          "one length for all its dimensions.")
    return np.column_stack(channels)


def _channel_values(text, header, lines, line_number, dimension):
    text = text.strip()
    if not text:
        raise lines.error(line_number, f"dimension {dimension} of the case is empty.")
    if header.timestamps:
        tokens = _timestamped_values(text, lines, line_number, dimension)
    else:
        tokens = text.split(",")
    values = np.empty(len(tokens))
    for i, token in enumerate(tokens):
        token = token.strip()
        if token == "?":
            if header.missing is False:
                raise lines.error(line_number, f"dimension {dimension} has a missing "
                                  "value '?' but the header declares @missing false.")
            values[i] = np.nan
            continue
        values[i] = _number(token, lines, line_number, f"dimension {dimension}")
        if np.isinf(values[i]):
            raise lines.error(line_number, f"dimension {dimension} holds an "
                              f"infinite value {token!r}.")
    return values


def _timestamped_values(text, lines, line_number, dimension):
    matches = list(_TIMESTAMPED_VALUE.finditer(text))
    rebuilt = ",".join(m.group(0) for m in matches)
    if not matches or rebuilt.replace(" ", "") != text.replace(" ", ""):
        raise lines.error(line_number, f"dimension {dimension} is not a list of "
                          f"(timestamp,value) pairs as @timeStamps true requires: "
                          f"{_excerpt(text)}.")
    return [m.group(2) for m in matches]


def _number(token, lines, line_number, where):
    try:
        return float(token)
    except ValueError:
        raise lines.error(line_number, f"{where} holds {_excerpt(token)}, which is "
                          "not a number.") from None


def _check_lengths(cases, header, lines):
    lengths = [len(case) for case in cases]
    if header.equal_length and len(set(lengths)) > 1:
        raise TSFormatError(f"{lines.path}: @equalLength true but the cases have "
                            f"lengths from {min(lengths)} to {max(lengths)}.")
    if header.equal_length and header.series_length is not None \
            and lengths[0] != header.series_length:
        raise TSFormatError(f"{lines.path}: @seriesLength {header.series_length} "
                            f"but the cases have length {lengths[0]}.")


def _excerpt(text, limit=40):
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --------------------------------------------------------------------- output
def _stack_if_equal(cases):
    if len({case.shape for case in cases}) == 1:
        return np.stack(cases)
    return cases


def _label_array(labels, header):
    if not header.has_labels:
        return None
    if header.target_label:
        return np.asarray(labels, dtype=float)
    return np.asarray(labels, dtype=str)
