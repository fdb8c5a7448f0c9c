"""Saving and reloading models and training checkpoints — without pickle.

What a file holds (a safetensors file, :mod:`pgm3d._records`): tensors, plain values (numbers,
strings, lists) and a SHA-256 of the tensors, nothing that can name code to run. A pgm3d
model is stored as its registry name, the arguments its constructor was called with
(:attr:`~pgm3d.models.base.Model.init_args`), its parameters and buffers; :func:`load` looks
the name up in pgm3d's own registry (never importing a module a file names), calls the
constructor and loads the tensors. A model with an autoguide (``pgm3d fit --guide auto-...``)
is stored the same way, guide included. Any other module — a user's own model — is stored as
its parameters: build the model yourself and ``load(path, into=model)``.

Files written by pgm3d 0.1 are pickles, which can run any code when read: :func:`load` refuses
them unless told ``trust=True`` (``--trust-file`` on the command line) — only for files you or
someone you trust made.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from pgm3d._records import RecordError, is_zip, read_record, write_record

__all__ = [
    "CHECKPOINT_FILE",
    "MODEL_FILE",
    "CheckpointError",
    "load",
    "model_record",
    "read_checkpoint",
    "rebuild",
    "save",
]

MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
_MODEL, _CHECKPOINT = "pgm3d-model", "pgm3d-checkpoint"
_VERSION = 2


class CheckpointError(ValueError):
    """A model or checkpoint file that cannot be read (truncated, corrupt, not pgm3d's, or a
    pickle that was not trusted)."""


# ---------------------------------------------------------------------------- model records
def _registered() -> dict:
    from pgm3d.models import MODELS

    return {name: MODELS[name] for name in MODELS}


def _name_of(cls) -> str | None:
    return next((n for n, c in _registered().items() if c is cls), None)


def _activation(value):
    """Activation classes (ShapeVAE's ``activation``) by name, from torch.nn only."""
    if isinstance(value, type) and issubclass(value, torch.nn.Module):
        if getattr(torch.nn, value.__name__, None) is not value:
            raise TypeError(f"cannot store the class {value.__qualname__} in a pgm3d file")
        return {"$torch.nn": value.__name__}
    return value


def _from_activation(value):
    if isinstance(value, dict) and set(value) == {"$torch.nn"}:
        cls = getattr(torch.nn, value["$torch.nn"], None)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise CheckpointError(f"unknown torch.nn class {value['$torch.nn']!r} in the file")
        return cls
    return value


def _autoguide_of(model):
    from pgm3d.autoguide import AutoGuide

    return next((p for p in model.parts if isinstance(p, AutoGuide)), None)


def model_record(model) -> dict:
    """How a model file describes ``model`` (plain values and tensors only).

    - ``{"kind": "model"}``: a registered pgm3d model, rebuilt by :func:`rebuild`;
    - ``{"kind": "auto"}``: a pgm3d model with an :class:`~pgm3d.autoguide.AutoGuide`;
    - ``{"kind": "state"}``: any other module (a user's), its parameters and buffers only.
    """
    from pgm3d.contract import WrappedModel
    from pgm3d.models.base import Model

    if isinstance(model, WrappedModel):
        guide = _autoguide_of(model)
        own = model.source
        if isinstance(own, Model) and _name_of(type(own)) and guide is not None:
            return {
                "kind": "auto",
                "source": model_record(own),
                "guide": {
                    "options": guide.options_record(),
                    "built": guide.built,
                    "state": guide.state_dict(),
                },
                "settings": model.settings,
            }
        if isinstance(own, Model) and len(model.parts) == 1:
            return model_record(own)  # the model with its own guide
    name = _name_of(type(model))
    if isinstance(model, Model) and name is not None:
        return {
            "kind": "model",
            "class": name,
            "args": {k: _activation(v) for k, v in model.init_args.items()},
            "state": model.state_dict(),
            "extra": model.extra_state(),
        }
    if isinstance(model, torch.nn.Module):
        cls = type(model.source if isinstance(model, WrappedModel) else model)
        guide = _autoguide_of(model) if isinstance(model, WrappedModel) else None
        return {
            "kind": "state",
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "pair": isinstance(model, WrappedModel),
            # an autoguide builds its networks on first use: how, so `into=` can build them
            "guide_built": None if guide is None else guide.built,
            "state": model.state_dict(),
        }
    raise ValueError(
        f"pgm3d.save takes a model (a module), not a {type(model).__name__}; a (model, guide) "
        "pair of functions keeps its parameters in Pyro's param store: keep them in a module "
        "(PyroModule or nn.Module) to save them"
    )


def rebuild(record: dict, *, into=None, path: Path | None = None):
    """The model a :func:`model_record` describes (``into``: load a ``"state"`` record into
    this module, built by the caller)."""
    where = f"{path}: " if path else ""
    kind = record.get("kind")
    if into is not None:
        target = into
        if kind == "state" and record.get("pair"):
            from pgm3d.contract import as_model

            target = into if hasattr(into, "parts") else as_model(into)
            guide = _autoguide_of(target)
            if guide is not None and guide.built is None and record.get("guide_built"):
                guide.build(record["guide_built"])
        _load_state(target, record if kind == "state" else _flat_state(record), where)
        return into
    if kind == "state":
        raise CheckpointError(
            f"{where}this file holds the parameters of {record.get('class')}, a model pgm3d "
            "does not rebuild from a file (that would mean running code the file names); "
            "construct the model and load into it: pgm3d.load(path, into=model)"
        )
    if kind == "auto":
        return _rebuild_auto(record, where)
    if kind != "model":
        raise CheckpointError(f"{where}unknown kind of model record {kind!r}")
    cls = _registered().get(record.get("class"))
    if cls is None:
        raise CheckpointError(f"{where}unknown model {record.get('class')!r} in the file")
    args = {k: _from_activation(v) for k, v in record.get("args", {}).items()}
    try:
        model = cls(**args)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}cannot rebuild {record['class']}: {e}") from None
    _load_state(model, record, where)
    model.load_extra_state(record.get("extra", {}))
    return model


def _flat_state(record: dict) -> dict:
    return {"state": record.get("state", {})}


def _load_state(module, record: dict, where: str) -> None:
    try:
        module.load_state_dict(record["state"])
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"{where}its tensors do not fit the model: {e}") from None


def _rebuild_auto(record: dict, where: str):
    from pgm3d.autoguide import AutoGuide
    from pgm3d.contract import WrappedModel

    source = rebuild(record["source"])
    options = record["guide"]["options"]
    guide = AutoGuide(source, **options)
    built = record["guide"]["built"]
    if built is not None:
        guide.build(built)
    _load_state(guide, record["guide"], where)
    return WrappedModel(source, guide, **record["settings"])


# ---------------------------------------------------------------------------- files
def save(model, path: str | Path, info: dict | None = None) -> Path:
    """Save ``model`` to ``path`` (atomically: a crash leaves the previous file intact).

    :param model: a pgm3d model (with its own guide or an autoguide), or any other
        ``torch.nn.Module`` (stored as its parameters: :func:`load` it ``into=`` a model).
    :param dict info: JSON-like facts stored beside it (training settings, data name, ...),
        returned by :func:`load` with ``with_info=True``.
    :raises ValueError: a model whose parameters live in Pyro's param store (plain
        functions), or an argument that is not a plain value; nothing is written.
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
            + ", not in a module a model file can hold: keep them in a module (PyroModule or "
            "nn.Module) to save them with pgm3d.save, or save the store itself with "
            "pyro.get_param_store().save(path)"
        )
    record = {
        "format": _MODEL,
        "version": _VERSION,
        "pgm3d": __version__,
        "model": model_record(model),
        "info": dict(info or {}),
    }
    try:
        return write_record(path, record)
    except TypeError as e:
        raise ValueError(f"cannot save {type(model).__name__}: {e}") from None


def _read(path: Path, device, trust: bool) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if is_zip(path):
        if not trust:
            raise CheckpointError(
                f"{path} is a pgm3d 0.1 file, a Python pickle: reading it can run any code it "
                "holds. Load it only if you trust who made it: pgm3d.load(path, trust=True), "
                "or --trust-file on the command line (then save it again in the safe format)"
            )
        return _read_pickle(path, device)
    try:
        record = read_record(path, device)
    except RecordError as e:
        raise CheckpointError(str(e)) from None
    if record.get("format") not in (_MODEL, _CHECKPOINT):
        raise CheckpointError(f"{path} is not a pgm3d model or checkpoint file")
    return record


def _read_pickle(path: Path, device) -> dict:
    """pgm3d 0.1's pickled files, read only on the caller's explicit trust."""
    import pickle
    import zipfile

    warnings.warn(f"unpickling {path} (trust=True): it can run code", stacklevel=3)
    try:
        record = torch.load(path, map_location=device, weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            AttributeError, ModuleNotFoundError) as e:  # fmt: skip
        raise CheckpointError(f"{path} is not a readable pgm3d file ({e})") from None
    if not isinstance(record, dict) or record.get("format") not in (_MODEL, _CHECKPOINT):
        raise CheckpointError(f"{path} is not a pgm3d model or checkpoint file")
    record["legacy"] = True
    return record


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        for name in (MODEL_FILE, CHECKPOINT_FILE):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path} holds neither {MODEL_FILE} nor {CHECKPOINT_FILE}")
    return path


def load(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    with_info: bool = False,
    into=None,
    trust: bool = False,
):
    """Reload a model saved by :func:`save`, by ``pgm3d fit``, or the model of a checkpoint.

    :param path: a model file, a checkpoint file, or a run folder (its ``model.pt``, else its
        ``checkpoint.pt``).
    :param device: where to put the model's tensors.
    :param bool with_info: also return the stored facts (for a checkpoint: its fit settings,
        step and config).
    :param into: a model built by the caller to load the file's tensors into — needed for a
        user's own model, which pgm3d does not rebuild from a file.
    :param bool trust: also read pgm3d 0.1's pickled files, which can run code (only for files
        you trust).
    :raises CheckpointError: the file is truncated, corrupt (checksum), not a pgm3d file, holds
        a user's model and no ``into``, or is an untrusted pickle.
    """
    from pgm3d._validation import check_device

    device = check_device(device)
    path = _resolve(path)
    record = _read(path, device, trust)
    if record.get("legacy"):
        model = record.get("model")
        if not isinstance(model, torch.nn.Module):
            raise CheckpointError(f"{path} holds no model")
        if into is not None:
            into.load_state_dict(model.state_dict())
            model = into
    else:
        described = record.get("model")
        if described is None:
            raise CheckpointError(
                f"{path} holds no model pgm3d can rebuild (a user's model trained by fit); "
                "construct it and load into it: pgm3d.load(path, into=model)"
                if record["format"] == _CHECKPOINT and into is None
                else f"{path} holds no model"
            )
        model = rebuild(described, into=into, path=path)
        if into is None and isinstance(model, torch.nn.Module):
            model.to(device)
    if with_info:
        if record["format"] == _CHECKPOINT:
            info = {k: record[k] for k in ("settings", "config", "steps") if k in record}
        else:
            info = record.get("info", {})
        return model, info
    return model


def read_checkpoint(path: str | Path, map_location=None, *, trust: bool = False) -> dict:
    """The record of a training checkpoint written by :func:`pgm3d.inference.fit`.

    :raises CheckpointError: unreadable, or a model file rather than a checkpoint.
    """
    path = Path(path)
    record = _read(path, map_location or "cpu", trust)
    if record["format"] != _CHECKPOINT:
        raise CheckpointError(f"{path} is a saved model, not a training checkpoint")
    return record


def write_checkpoint(path: str | Path, *, model=None, **fields) -> Path:
    """Write a training checkpoint atomically (used by :func:`~pgm3d.inference.fit`).

    :param model: the model, stored so :func:`load` can rebuild it when pgm3d can (``None``
        for a user's model: its parameters are in ``state``).
    """
    described = None
    if model is not None:
        described = model_record(model)
        if described["kind"] == "state":
            described = None  # the parameters are in the checkpoint's own state already
    return write_record(
        path, {"format": _CHECKPOINT, "version": _VERSION, "model": described, **fields}
    )
