"""Progress bars for long loops (tqdm), shown on a terminal unless asked otherwise."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["progress_bar", "show_progress"]


def progress_bar(iterable, *, desc: str, progress: bool | None = None, **kwargs):
    """Wrap ``iterable`` in a tqdm bar.

    :param progress: ``True`` always shows the bar, ``False`` never does, ``None`` shows it only
        when standard error is a terminal (tqdm's ``disable=None``).
    """
    disable = None if progress is None else not progress
    return tqdm(iterable, desc=desc, disable=disable, leave=False, **kwargs)


def show_progress(progress: bool | None) -> bool:
    """Whether to show progress: ``progress`` itself, or (``None``) whether standard error is
    a terminal — for bars pgm3d does not draw itself (Lightning's)."""
    return sys.stderr.isatty() if progress is None else bool(progress)
