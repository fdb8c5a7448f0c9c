"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A reader (or a run killed mid-write) therefore sees either the old file or the new one, never
a torn one: ``os.replace`` is atomic on POSIX and Windows when both paths are on one volume.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["atomic_save", "atomic_write", "atomic_write_json", "atomic_write_text"]


def atomic_write(path: str | Path, write: Callable) -> Path:
    """Call ``write(f)`` on a binary file object and move the result to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a KeyboardInterrupt mid-write must not leave the temporary file behind either
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj, path: str | Path) -> Path:
    """``torch.save(obj, path)``, atomically."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")
