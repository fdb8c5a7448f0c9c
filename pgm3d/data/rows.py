"""Data rows from files: ``.npy``, ``.npz``, ``.csv`` and ``.txt``, with one meaning of missing.

An ``(N, D)`` array of real numbers, one row per data point. **NaN marks a missing entry** —
in a text file also an empty field or ``nan``/``NA`` — and nothing else does: an infinity is
refused with its position, never taken as missing, and so are complex, text and object arrays
(a complex array would otherwise lose its imaginary part without a word). Positions in
messages are 1-based — row 1 is the first data row, after any header — and name the file.

- ``.npy``: one 2-D array.
- ``.npz``: the array named ``x``, or the only array when there is one (an ``.npz`` with a
  ``voxels`` array is voxel grids and one with ``part_of_point`` a shape set, read elsewhere).
- ``.csv`` (comma-separated) and ``.txt`` (whitespace-separated): one row per line; a first
  line that is not all numbers is a header and gives the column names.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ROW_SUFFIXES", "Rows", "read_rows"]

ROW_SUFFIXES = (".npy", ".npz", ".csv", ".txt")
#: text fields that mean a missing entry (compared lower-case)
MISSING_FIELDS = frozenset({"", "nan", "na"})


@dataclass
class Rows:
    """What :func:`read_rows` read.

    :ivar numpy.ndarray x: ``(N, D)`` float64, NaN where missing.
    :ivar columns: the header's column names of a text file that has one, else ``None``.
    :ivar tuple empty: 1-based numbers of the rows with no observed entry.
    """

    x: np.ndarray
    columns: tuple[str, ...] | None = None
    empty: tuple[int, ...] = ()


def read_rows(path: str | Path) -> Rows:
    """Read an ``(N, D)`` file of rows (module docstring) and check it.

    :raises ValueError: unreadable, not a 2-D array of real numbers, an infinity (with its row
        and column), or no observed entry at all; each message names the file.
    """
    path = Path(path)
    columns = None
    try:
        if path.suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            x = _npz_rows(path)
        elif path.suffix in (".csv", ".txt"):
            x, columns = _text_rows(path)
        else:
            raise ValueError(f"unsupported file type; use one of {', '.join(ROW_SUFFIXES)}")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read data rows from {path}: {e}") from None
    x = _real(x, path)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"{path}: expected a 2-D array of rows, got shape {x.shape}")
    _refuse_infinities(x, path)
    observed = ~np.isnan(x)
    if not observed.any():
        raise ValueError(f"{path} has no observed entry: every value is missing (NaN)")
    empty = tuple(int(i) + 1 for i in np.flatnonzero(~observed.any(axis=1)))
    return Rows(x, columns, empty)


def _npz_rows(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as f:
        keys = list(f.keys())
        if "x" in keys:
            return f["x"]
        if len(keys) == 1:
            return f[keys[0]]
    raise ValueError(f"it holds the arrays {keys}; name the data array 'x'")


def _real(x: np.ndarray, path: Path) -> np.ndarray:
    """``x`` as float64; complex, text and object arrays are refused."""
    if np.iscomplexobj(x):
        raise ValueError(
            f"{path} holds complex numbers ({x.dtype}); pgm3d models real data: save the real "
            "part, or real and imaginary parts as separate columns"
        )
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{path} holds {x.dtype} values, not numbers")
    return x.astype(np.float64)


def _refuse_infinities(x: np.ndarray, path: Path) -> None:
    bad = np.isinf(x)
    if bad.any():
        row, col = (int(i) + 1 for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{path}, row {row}, column {col}: {x[row - 1, col - 1]} ({int(bad.sum())} infinite "
            "value(s) in all); infinities are not data, and only NaN means missing: fix or "
            "remove them, or write NaN where a value is missing"
        )


def _number(field: str) -> float | None:
    field = field.strip()
    if field.lower() in MISSING_FIELDS:
        return float("nan")
    try:
        return float(field)
    except ValueError:
        return None


def _text_rows(path: Path) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """A ``.csv`` / ``.txt`` file: a header when its first line is not all numbers; empty
    fields and ``nan``/``NA`` are missing; a field that is not a number is an error at its
    (1-based) row and column."""
    with open(path, newline="") as f:
        if path.suffix == ".csv":
            lines = [r for r in csv.reader(f) if r and any(v.strip() for v in r)]
        else:
            lines = [line.split() for line in f if line.strip() and not line.startswith("#")]
    if not lines:
        raise ValueError("the file holds no rows")
    columns = None
    if any(_number(v) is None for v in lines[0]):
        columns = tuple(v.strip() for v in lines[0])
        lines = lines[1:]
        if not lines:
            raise ValueError("the file holds a header and no rows")
    width = len(columns) if columns else len(lines[0])
    x = np.empty((len(lines), width))
    for i, line in enumerate(lines, 1):
        where = f"row {i}" + (" (after the header)" if columns else "")
        if len(line) != width:
            raise ValueError(f"{where} has {len(line)} values, expected {width}")
        for j, field in enumerate(line, 1):
            value = _number(field)
            if value is None:
                raise ValueError(f"{where}, column {j}: {field.strip()!r} is not a number")
            x[i - 1, j - 1] = value
    return x, columns
