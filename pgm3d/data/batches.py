"""Rows in batches: data sets larger than memory, and the inputs a PyTorch user already has.

:func:`~pgm3d.inference.fit`, :func:`~pgm3d.inference.complete`,
:func:`~pgm3d.inference.log_likelihood` and :func:`~pgm3d.evaluation.evaluate_posteriors`
take, besides a tensor, a NumPy array (a memory-mapped ``.npy`` too), a map-style ``Dataset``
or a ``DataLoader``. A ``Dataset``'s items (and a ``DataLoader``'s batches) are rows as pgm3d
reads them: a tensor ``x``; a tuple ``(x,)``, ``(x, mask)`` or ``(x, mask, context)``; or a dict
``{"x": ..., "mask": ..., "context": ...}`` (:class:`Rows` makes such items from arrays).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "Rows",
    "collate_rows",
    "gather_rows",
    "is_stream",
    "row_batches",
    "unpack_batch",
]


class Rows(Dataset):
    """Row ``i`` of a data set with its mask and context, as a dict ``{"x", "mask",
    "context"}`` (``mask`` only where there is one or the row has NaN entries; ``context`` only
    where there is any).

    Rows are read one at a time, so a memory-mapped array (``np.load(path, mmap_mode="r")``)
    is never read into memory whole.

    :param data: ``(N, D)`` tensor or array (NaN = missing when ``mask`` is None).
    :param mask: optional bool ``(N, D)``, True = observed.
    :param context: optional row-aligned conditioning inputs: an ``(N, ...)`` tensor/array or a
        dict of them by argument name.
    :param dtype: the dtype rows are returned in (default: the data's if a float tensor,
        else torch's default).
    """

    def __init__(self, data, mask=None, context=None, *, dtype: torch.dtype | None = None):
        if getattr(data, "ndim", None) != 2:
            raise ValueError(f"data must be (N, D), got shape {tuple(getattr(data, 'shape', ()))}")
        self.data, self.n = data, int(data.shape[0])
        if dtype is None:
            float_tensor = isinstance(data, torch.Tensor) and data.is_floating_point()
            dtype = data.dtype if float_tensor else torch.get_default_dtype()
        self.dtype = dtype
        if mask is not None and tuple(mask.shape) != tuple(data.shape):
            raise ValueError(f"mask has shape {tuple(mask.shape)}, data {tuple(data.shape)}")
        self.mask = mask
        if context is not None and not isinstance(context, dict):
            context = {"context": context}
        for name, value in (context or {}).items():
            if len(value) != self.n:
                raise ValueError(f"context {name!r} has {len(value)} rows, the data {self.n}")
        self.context = context or {}

    def __len__(self) -> int:
        return self.n

    def __getitems__(self, indices) -> dict:
        """The rows ``indices`` as one batch, read at once (a ``DataLoader`` calls this rather
        than :meth:`__getitem__` per row; :func:`collate_rows` passes the batch through)."""
        idx = np.asarray(indices, dtype=np.int64)
        x = _tensor(self.data[idx] if not isinstance(self.data, torch.Tensor)
                    else self.data[torch.as_tensor(idx)]).to(self.dtype)  # fmt: skip
        batch = {"x": x}
        if self.mask is not None:
            m = self.mask[idx] if not isinstance(self.mask, torch.Tensor) else self.mask[
                torch.as_tensor(idx)]  # fmt: skip
            batch["mask"] = _tensor(m).bool()
        elif x.isnan().any():
            batch["mask"] = ~x.isnan()
        if batch.get("mask") is not None:
            batch["x"] = torch.where(batch["mask"], x, 0.0)
        if self.context:
            batch["context"] = {
                k: _tensor(v[idx] if not isinstance(v, torch.Tensor) else v[torch.as_tensor(idx)])
                for k, v in self.context.items()
            }
        return _Batch(batch)

    def __getitem__(self, i: int) -> dict:
        x = _tensor(self.data[i]).to(self.dtype)
        item = {"x": x}
        if self.mask is not None:
            item["mask"] = _tensor(self.mask[i]).bool()
        elif x.isnan().any():
            item["mask"] = ~x.isnan()
        if item.get("mask") is not None:
            item["x"] = torch.where(item["mask"], x, 0.0)
        if self.context:
            item["context"] = {k: _tensor(v[i]) for k, v in self.context.items()}
        return item


def _tensor(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    return torch.from_numpy(np.array(value))  # a copy: memory maps are read-only


def _as_item(item) -> dict:
    """A data set item in any of the accepted forms, as a dict."""
    if isinstance(item, dict):
        if "x" not in item:
            raise ValueError(f"a row given as a dict needs an 'x' entry, got keys {list(item)}")
        return item
    if isinstance(item, tuple | list):
        if not 1 <= len(item) <= 3:
            raise ValueError(f"a row given as a tuple is (x[, mask[, context]]), got {len(item)}")
        return dict(zip(("x", "mask", "context"), item, strict=False))
    return {"x": item}


class _Batch(dict):
    """A batch :meth:`Rows.__getitems__` read at once (``collate_rows`` passes it through)."""


def collate_rows(items) -> dict:
    """Stack data set items into a batch ``{"x", "mask", "context"}``; a batch in which some
    rows have a mask gets an all-True mask for the others. A batch read at once
    (:meth:`Rows.__getitems__`) passes through as it is."""
    if isinstance(items, _Batch):
        return dict(items)
    items = [_as_item(it) for it in items]
    xs = [_tensor(it["x"]) for it in items]
    batch = {"x": torch.stack(xs)}
    if any(it.get("mask") is not None for it in items):
        full = torch.ones_like(xs[0], dtype=torch.bool)
        batch["mask"] = torch.stack(
            [full if it.get("mask") is None else _tensor(it["mask"]).bool() for it in items]
        )
    context = items[0].get("context")
    if context is not None:
        if isinstance(context, dict):
            batch["context"] = {k: torch.stack([_tensor(it["context"][k]) for it in items])
                                for k in context}  # fmt: skip
        else:
            batch["context"] = torch.stack([_tensor(it["context"]) for it in items])
    return batch


def unpack_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None, object]:
    """``(x, mask, context)`` of a batch in any accepted form (see the module docstring)."""
    b = _as_item(batch)
    x = _tensor(b["x"])
    mask = b.get("mask")
    return x, None if mask is None else _tensor(mask).bool(), b.get("context")


def is_stream(data) -> bool:
    """Is ``data`` read in batches (a ``Dataset`` or ``DataLoader``) rather than held whole?"""
    return isinstance(data, DataLoader | Dataset) and not isinstance(data, torch.Tensor)


def row_batches(data, batch_size: int = 1024) -> Iterator[tuple]:
    """``(x, mask, context)`` batches of a ``Dataset`` (in order, ``batch_size`` rows each) or
    a ``DataLoader`` (its own batches)."""
    if isinstance(data, Dataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_rows)
    for batch in data:
        yield unpack_batch(batch)


def gather_rows(data) -> tuple[torch.Tensor, torch.Tensor | None, object]:
    """All the rows of a ``Dataset`` or ``DataLoader`` as one ``(x, mask, context)``, for work
    that needs every row at once (comparing posteriors on a test set); the mask is None when no
    batch had one."""
    xs, masks, contexts = [], [], []
    for x, mask, context in row_batches(data):
        xs.append(x)
        masks.append(mask)
        contexts.append(context)
    if not xs:
        raise ValueError("the data set has no rows")
    x = torch.cat(xs)
    mask = None
    if any(m is not None for m in masks):
        mask = torch.cat([torch.ones_like(b, dtype=torch.bool) if m is None else m
                          for b, m in zip(xs, masks, strict=True)])  # fmt: skip
    context = None
    if contexts[0] is not None:
        if isinstance(contexts[0], dict):
            context = {k: torch.cat([c[k] for c in contexts]) for k in contexts[0]}
        else:
            context = torch.cat(contexts)
    return x, mask, context
