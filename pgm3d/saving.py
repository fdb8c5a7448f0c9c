"""Saving and reloading models and training checkpoints.

A model file holds the pickled model (class, buffers and parameters), so
``pgm3d.load("runs/fit/model.pt")`` gives back an object that works with every back end, with
no need to know how it was constructed. Pickles can run code when loaded: load only files
you or your colleagues wrote.
"""

from __future__ import annotations

import pickle
import zipfile
from contextlib import contextmanager
from pathlib import Path

import torch

from pgm3d._io import atomic_save

__all__ = ["CHECKPOINT_FILE", "MODEL_FILE", "CheckpointError", "load", "read_checkpoint", "save"]

MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
_MODEL, _CHECKPOINT = "pgm3d-model", "pgm3d-checkpoint"


class CheckpointError(ValueError):
    """A model or checkpoint file that cannot be read (truncated, corrupt, or not pgm3d's)."""


def save(model, path: str | Path, info: dict | None = None) -> Path:
    """Save ``model`` to ``path`` (atomically: a crash leaves the previous file intact).

    :param model: a pgm3d model, or any picklable ``torch.nn.Module`` with ``model`` and
        ``guide`` methods (wrapped by :func:`pgm3d.wrap` or not).
    :param dict info: JSON-like facts stored beside it (training settings, data name, ...), returned
        by :func:`load` with ``with_info=True``.
    :raises ValueError: a pair whose parameters live in Pyro's param store (plain functions,
        or ``pyro.param`` sites), which the file could not hold; nothing is written.
    """
    from pgm3d import __version__
    from pgm3d.contract import WrappedModel

    if isinstance(model, tuple) or (
        isinstance(model, WrappedModel)
        and (not isinstance(model.source, torch.nn.Module) or model.param_store_tensors())
    ):
        names = sorted(model.param_store_tensors()) if isinstance(model, WrappedModel) else []
        raise ValueError(
            "this model keeps its parameters in Pyro's param store"
            + (f" ({', '.join(names)})" if names else "")
            + ", not in a module a model file can hold: save them with "
            "pyro.get_param_store().save(path) and rebuild the functions when you load them"
        )
    cls = type(model)
    record = {
        "format": _MODEL,
        "version": 1,
        "pgm3d": __version__,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "model": model,
        "info": dict(info or {}),
    }
    with _without_param_store_links(model):
        return atomic_save(record, path)


@contextmanager
def _without_param_store_links(model):
    """``pyro.module`` marks each parameter with a weak reference to its param-store entry,
    which cannot be pickled; take the marks off while writing and put them back after."""
    marked = []
    if isinstance(model, torch.nn.Module):
        for t in (*model.parameters(), *model.buffers()):
            link = t.__dict__.pop("unconstrained", None)
            if link is not None:
                marked.append((t, link))
    try:
        yield
    finally:
        for t, link in marked:
            t.unconstrained = link


def _read(path: Path, map_location) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        # weights_only=False: the file holds a pickled model, see the module docstring
        record = torch.load(path, map_location=map_location, weights_only=False)
    except (
        RuntimeError,
        EOFError,
        OSError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        AttributeError,
        ModuleNotFoundError,
    ) as e:
        raise CheckpointError(f"{path} is not a readable pgm3d file ({e})") from None
    if not isinstance(record, dict) or record.get("format") not in (_MODEL, _CHECKPOINT):
        raise CheckpointError(f"{path} is not a pgm3d model or checkpoint file")
    return record


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        for name in (MODEL_FILE, CHECKPOINT_FILE):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path} holds neither {MODEL_FILE} nor {CHECKPOINT_FILE}")
    return path


def load(path: str | Path, *, device: str | torch.device = "cpu", with_info: bool = False):
    """Reload a model saved by :func:`save`, by ``pgm3d fit``, or the model of a checkpoint.

    :param path: a model file, a checkpoint file, or a run folder (its ``model.pt``, else its
        ``checkpoint.pt``).
    :param device: where to put the model's tensors.
    :param bool with_info: also return the stored facts (for a checkpoint: its fit settings,
        step and config).
    :raises CheckpointError: the file is truncated, corrupt or not a pgm3d file.
    """
    path = _resolve(path)
    record = _read(path, device)
    model = record["model"]
    if with_info:
        if record["format"] == _CHECKPOINT:
            info = {k: record[k] for k in ("settings", "config", "steps") if k in record}
        else:
            info = record.get("info", {})
        return model, info
    return model


def read_checkpoint(path: str | Path, map_location=None) -> dict:
    """The record of a training checkpoint written by :func:`pgm3d.inference.fit`.

    :raises CheckpointError: unreadable, or a model file rather than a checkpoint.
    """
    path = Path(path)
    record = _read(path, map_location)
    if record["format"] != _CHECKPOINT:
        raise CheckpointError(f"{path} is a saved model, not a training checkpoint")
    return record


def write_checkpoint(path: str | Path, **fields) -> Path:
    """Write a training checkpoint atomically (used by :func:`~pgm3d.inference.fit`)."""
    return atomic_save({"format": _CHECKPOINT, "version": 1, **fields}, path)
