"""Nested records of plain values and tensors, written as safetensors files with no pickle.

A record (dicts, lists, tuples, strings, numbers, booleans, ``None``, tensors and numpy arrays)
is split into a flat dict of tensors and a JSON description in which each tensor is a reference
``{"$tensor": key}``. Both go into one safetensors file: the tensors as its buffers, the JSON
and a SHA-256 of every tensor's bytes in its metadata header. Reading builds back only those
plain types — a file cannot name a function, a class or anything else to run — and refuses a
file whose tensors do not hash to the stored digest.

safetensors was chosen over ``torch.load(weights_only=True)``: it has no pickle interpreter at
all (a header of JSON and raw buffers, by design; torch's restricted unpickler had a remote code
execution bug as late as torch 2.5, CVE-2025-32434), it is the format the model-sharing world
settled on, and it reads without copying.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import torch

__all__ = ["RecordError", "decode", "encode", "read_record", "record_bytes", "write_record"]

_KEY = "pgm3d"  # the metadata entry holding the JSON
_DIGEST = "sha256"


class RecordError(ValueError):
    """A file that is not a readable pgm3d record."""


def encode(value, tensors: dict, prefix: str = "t", _seen: dict | None = None):
    """``value`` as JSON-able data, its tensors moved into ``tensors`` under fresh keys.

    The same tensor met twice (a model's parameters in its record and in a checkpoint's
    state) is stored once; every stored tensor owns its memory (safetensors refuses views).
    """
    seen = {} if _seen is None else _seen

    def enc(v):
        return encode(v, tensors, prefix, seen)

    if isinstance(value, torch.Tensor):
        sig = (value.device, value.data_ptr(), value.dtype, tuple(value.shape), value.stride())
        if value.numel() and sig in seen:
            return {"$tensor": seen[sig]}
        key = seen[sig] = f"{prefix}{len(tensors)}"
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
        return {"$tensor": key}
    if isinstance(value, np.ndarray):
        key = f"{prefix}{len(tensors)}"
        wide = np.int64 if value.dtype.kind in "ui" else value.dtype  # uint32 states, say
        tensors[key] = torch.from_numpy(np.array(value, dtype=wide, copy=True))
        return {"$ndarray": key, "dtype": str(value.dtype)}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: enc(v) for k, v in value.items()}
        return {"$items": [[enc(k), enc(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"$tuple": [enc(v) for v in value]}
    if isinstance(value, list):
        return [enc(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a pgm3d file")


def decode(value, tensors: dict):
    """The inverse of :func:`encode`: plain values and the referenced tensors, nothing else."""
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "$tensor" in value:
        return tensors[value["$tensor"]]
    if "$ndarray" in value:
        return tensors[value["$ndarray"]].numpy().astype(np.dtype(value["dtype"]))
    if "$tuple" in value:
        return tuple(decode(v, tensors) for v in value["$tuple"])
    if "$items" in value:
        return {_hashable(decode(k, tensors)): decode(v, tensors) for k, v in value["$items"]}
    return {k: decode(v, tensors) for k, v in value.items()}


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def digest(tensors: dict) -> str:
    """SHA-256 of every tensor's name, dtype, shape and bytes, in key order."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key]
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def record_bytes(record: dict) -> bytes:
    """A record as the bytes of a safetensors file."""
    from safetensors.torch import save

    tensors: dict = {}
    described = encode(record, tensors)
    meta = {_KEY: json.dumps(described, allow_nan=True), _DIGEST: digest(tensors)}
    return save(tensors, metadata=meta)


def write_record(path: str | Path, record: dict) -> Path:
    """Write ``record`` to ``path`` atomically (see :mod:`pgm3d._io`)."""
    from pgm3d._io import atomic_write

    data = record_bytes(record)
    return atomic_write(path, lambda f: f.write(data))


def is_zip(path: Path) -> bool:
    """A torch.save zip archive (pgm3d 0.1's pickled files) rather than a safetensors file."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def read_record(path: str | Path, device="cpu") -> dict:
    """Read a record written by :func:`write_record`, tensors moved to ``device``.

    :raises RecordError: not a safetensors file, not pgm3d's, truncated, or its tensors do not
        match the stored digest (corrupted).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    data = path.read_bytes()
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
        meta = header.get("__metadata__") or {}
    except (struct.error, ValueError, UnicodeDecodeError, AttributeError):
        raise RecordError(f"{path} is not a readable pgm3d file (no safetensors header)") from None
    if _KEY not in meta or _DIGEST not in meta:
        raise RecordError(f"{path} is a safetensors file but not one pgm3d wrote")
    try:
        tensors = load(data)
    except (SafetensorError, RuntimeError, ValueError) as e:
        raise RecordError(
            f"{path} is not a readable pgm3d file: truncated or damaged ({e})"
        ) from None
    if digest(tensors) != meta[_DIGEST]:
        raise RecordError(
            f"{path} is corrupted: its tensors do not match the checksum stored with them"
        )
    try:
        described = json.loads(meta[_KEY])
        record = decode(described, {k: v.to(device) for k, v in tensors.items()})
    except (ValueError, KeyError, TypeError) as e:
        raise RecordError(f"{path} has a damaged description ({e})") from None
    if not isinstance(record, dict):
        raise RecordError(f"{path} does not hold a pgm3d record")
    return record
