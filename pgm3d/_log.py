"""pgm3d's ``logging`` logger and the stages of long work.

A library logs and lets the application decide what to show: pgm3d's modules log to the
``"pgm3d"`` logger, which has only a ``NullHandler`` until someone configures it. The ``pgm3d``
command does (:func:`log_to_stderr`), so long commands say what they are doing, one line per
stage with its time, whether or not a terminal is attached; tqdm bars stay for terminals.

To see the stages from Python: ``logging.basicConfig(level=logging.INFO)``, or
``logging.getLogger("pgm3d").setLevel(logging.INFO)`` with a handler of your own.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["log_to_stderr", "logger", "stage"]

#: the parent of every pgm3d logger
logger = logging.getLogger("pgm3d")
logger.addHandler(logging.NullHandler())


@contextmanager
def stage(name: str, times: dict | None = None, log: logging.Logger = logger) -> Iterator[None]:
    """Log the start of a stage and, when it ends, its wall time (``times[name]`` too).

    :param str name: what the stage does, as a person would say it.
    :param dict times: where to record the seconds (e.g. a run's ``stage_seconds``).
    """
    log.info("%s ...", name)
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        log.info("%s: stopped after %.1f s", name, time.perf_counter() - start)
        raise
    seconds = time.perf_counter() - start
    if times is not None:
        times[name] = seconds
    log.info("%s: done in %.1f s", name, seconds)


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time (test runners and
    notebooks replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


@contextmanager
def log_to_stderr(enabled: bool = True, level: int = logging.INFO) -> Iterator[None]:
    """While in the block, send pgm3d's log to standard error (``pgm3d HH:MM:SS message``), as
    the command line does; nothing is added when the application has given the logger a handler
    of its own, or when not ``enabled``."""
    if not enabled or any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
        yield
        return
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("pgm3d %(asctime)s %(message)s", "%H:%M:%S"))
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
