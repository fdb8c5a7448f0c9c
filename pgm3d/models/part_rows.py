"""The data rows of the part-based shape models (ShapeVAE, the per-pattern Gaussian, ShapeFA).

A row is ``[x_1, ..., x_K, e]``: each part's points (``[x y z]`` per point, or
``[x y z nx ny nz]`` with normals) and then the ``K`` existence flags as 0/1. Entries of absent
parts are ignored by the models; the existence columns must always be observed.
"""

from __future__ import annotations

import torch
from torch import nn

from pgm3d._validation import check_inputs
from pgm3d.models.base import data_kind
from pgm3d.models.existence import ExistenceDistribution, existence_patterns

__all__ = ["ExistencePrior", "PartRows"]


class ExistencePrior:
    """Mixin for ``nn.Module`` shape models: ``p(e)`` over the training existence patterns
    (buffers ``patterns``, ``pattern_counts``) and the part of every point entry
    (buffer ``part_of_entry``); their data are :class:`~pgm3d.data.ShapeSet` shapes."""

    data_kind = "shapes"

    def data_rows(self, data) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's rows and observation mask of a ShapeSet (:meth:`data`), on its device
        and dtype."""
        if data_kind(data) != "shapes":
            raise ValueError(f"{type(self).__name__} models part-segmented shapes, not rows")
        ref = self._reference()
        return self.data(data.to(dtype=ref.dtype, device=ref.device))

    def init_existence(self, existence, part_sizes, smoothing: float) -> None:
        patterns, counts = existence_patterns(existence)
        if patterns.shape[-1] != len(part_sizes):
            raise ValueError(
                f"existence has {patterns.shape[-1]} parts, expected {len(part_sizes)}"
            )
        self.existence_smoothing = smoothing
        self.register_buffer("patterns", patterns)
        self.register_buffer("pattern_counts", counts)
        sizes = torch.tensor(list(part_sizes))
        self.register_buffer(
            "part_of_entry", torch.repeat_interleave(torch.arange(len(sizes)), sizes)
        )

    def existence_distribution(self) -> ExistenceDistribution:
        """``p(e)``: the (smoothed) empirical distribution of the training patterns."""
        return ExistenceDistribution(self.patterns, self.pattern_counts, self.existence_smoothing)

    def entry_mask(self, e: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` bool: the entry's part is present."""
        return e.bool()[..., self.part_of_entry]


class PartRows(ExistencePrior):
    """Mixin for ``nn.Module`` models whose data are part rows; call :meth:`init_layout` in
    ``__init__`` (after ``nn.Module.__init__``)."""

    def init_layout(
        self, part_points, existence, normals: bool, existence_smoothing: float
    ) -> None:
        part_points = [int(m) for m in part_points]
        if not part_points or min(part_points) < 1:
            raise ValueError(f"part_points must be positive counts, got {part_points}")
        self.width = 6 if normals else 3
        self.part_points, self.num_parts = part_points, len(part_points)
        self.part_sizes = [m * self.width for m in part_points]
        self.point_dim = sum(self.part_sizes)
        self.data_dim = self.point_dim + self.num_parts
        self.init_existence(existence, self.part_sizes, existence_smoothing)

    @classmethod
    def from_shapes(cls, shapes, *args, normals: bool = True, **kwargs):
        """A model sized for a :class:`~pgm3d.data.ShapeSet` (its parts and existences)."""
        counts = torch.bincount(shapes.part_of_point.cpu(), minlength=shapes.num_parts).tolist()
        return cls(counts, shapes.existence.cpu(), *args, normals=normals, **kwargs)

    def _reference(self) -> torch.Tensor:
        """The first floating-point parameter or buffer: the model's dtype and device."""
        tensors = (*self.parameters(), *self.buffers())
        return next(t for t in tensors if t.is_floating_point())

    def sample_shapes(self, n: int, *, generator=None, mean: bool = False) -> dict:
        """``n`` sampled shapes for figures: :meth:`to_points` of :meth:`sample`'s rows, with
        the rows themselves under ``"rows"``."""
        rows = self.sample(n, generator=generator, mean=mean)
        return {**self.to_points(rows), "rows": rows}

    def observed_entries(self, mask: torch.Tensor, existence=None) -> torch.Tensor:
        """Observed point entries per row (the existence columns count in the numerator of a
        log-likelihood per dimension, as ``log p(e)``, not the denominator)."""
        return mask[:, : self.point_dim].sum(-1)

    def data(self, shapes, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[x, e]`` and their observation mask from a ShapeSet (absent parts masked;
        ``mask`` ``(N, P * width)`` additionally hides entries), on the model's device and dtype."""
        ref = self._reference()
        flat = shapes.flat(normals=self.width == 6)
        if flat.shape[-1] != self.point_dim:
            raise ValueError(
                f"the shapes have {flat.shape[-1]} point entries, the model {self.point_dim}"
            )
        observed = shapes.flat_mask(normals=self.width == 6)
        if mask is not None:
            observed = observed & mask.to(observed.device)
        e = shapes.existence
        dtype = ref.dtype if ref.is_floating_point() else flat.dtype
        x = torch.cat([flat, e.to(flat.dtype)], -1).to(device=ref.device, dtype=dtype)
        return x, torch.cat([observed, torch.ones_like(e)], -1).to(ref.device)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., D + K)`` rows into points ``(..., D)`` and existences ``(..., K)``."""
        return x[..., : self.point_dim], x[..., self.point_dim :]

    def check_rows(self, x: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Shape, dtype, device and NaN checks, plus: existences observed, binary, not all zero,
        and of nonzero prior probability."""
        check_inputs(self, x, mask)
        _, e = self.split(x)
        if mask is not None and not mask[..., self.point_dim :].all():
            raise ValueError("the existence columns (the last K entries of a row) must be observed")
        if not ((e == 0) | (e == 1)).all():
            raise ValueError("existence columns must be 0 or 1")
        if not e.bool().any(-1).all():
            raise ValueError("a row has no parts (all existences are 0)")
        self.existence_distribution().check_seen(e)

    def to_points(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Rows ``[x, e]`` as ``points (N, P, 3)``, ``normals (N, P, 3)`` (unit; None without
        normals), ``existence (N, K)`` and ``point_mask (N, P)``, for metrics and figures."""
        points, e = self.split(x)
        per_point = points.reshape(*points.shape[:-1], -1, self.width)
        normals = nn.functional.normalize(per_point[..., 3:], dim=-1) if self.width == 6 else None
        part_of_point = self.part_of_entry[:: self.width]
        return {
            "points": per_point[..., :3],
            "normals": normals,
            "existence": e.bool(),
            "point_mask": e.bool()[..., part_of_point],
        }
