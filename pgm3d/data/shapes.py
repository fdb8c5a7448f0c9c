"""Part-segmented shape sets with dense point correspondences, normals and part existences.

This is the data ShapeVAE and ShapeFA model (Nash & Williams 2017, after the chairs, planes and
bikes of Huang et al. 2015). A :class:`ShapeSet` holds ``N`` shapes of ``P`` points each; the
points of a part are contiguous, and point ``i`` corresponds across all shapes. Shapes whose part
``k`` is absent have ``existence[n, k] = False`` and zeros in that part's points and normals, so
:meth:`ShapeSet.point_mask` (or :meth:`ShapeSet.flat_mask`) is the observation mask that the
models' masked likelihoods take.

Coordinates: ``y`` is up, ``+z`` is the front, and every family is mirror-symmetric about the
plane ``x = 0``; shapes are aligned and share one scale, fitting in ``[-1, 1]^3`` (up to the
radius of a splayed leg); chairs, tables and lamps stand on the floor ``y = -1`` and airplanes
are centred on the origin.

Get a procedural set with :func:`shapes` (``shapes("chairs", 1000, seed=0)``); convert a real
dataset once to the ``.npz`` schema of :meth:`ShapeSet.save` and read it back with
:func:`load_shapes` (or ``shapes("path/to/set.npz")``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from pgm3d._validation import check_device
from pgm3d.data.mesh import Mesh
from pgm3d.data.parts import Part
from pgm3d.registry import Registry

__all__ = [
    "FAMILIES",
    "ParamSampler",
    "ShapeFamily",
    "ShapeSet",
    "load_shapes",
    "shapes",
]

FAMILIES: Registry = Registry("shape family")


@dataclass
class ShapeSet:
    """``N`` part-segmented shapes with corresponding points.

    :ivar torch.Tensor points: ``(N, P, 3)`` surface points; zeros where the part is absent.
    :ivar torch.Tensor normals: ``(N, P, 3)`` outward unit normals (zeros where absent), or None.
    :ivar torch.Tensor existence: ``(N, K)`` bool, part ``k`` present in shape ``n``.
    :ivar torch.Tensor part_of_point: ``(P,)`` long, nondecreasing part index of each point.
    :ivar torch.Tensor style: ``(N,)`` long style index (``-1`` when unknown).
    :ivar tuple part_names: ``K`` names. :ivar tuple style_names: style names.
    :ivar str family: family name, or the file it was loaded from.
    :ivar torch.Tensor parameters: ``(N, J)`` float64, the generator's random draws per shape
        (procedural sets only; see :class:`ParamSampler`), or None.
    """

    points: torch.Tensor
    normals: torch.Tensor | None
    existence: torch.Tensor
    part_of_point: torch.Tensor
    style: torch.Tensor
    part_names: tuple[str, ...]
    style_names: tuple[str, ...] = ()
    family: str | None = None
    parts: list[Part] | None = field(default=None, repr=False)
    parameters: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self):
        n, p = self.points.shape[:2]
        _check(
            self.points.dim() == 3 and self.points.shape[-1] == 3,
            "points",
            "(N, P, 3)",
            self.points,
        )
        if self.normals is not None:
            _check(self.normals.shape == self.points.shape, "normals", "like points", self.normals)
        k = len(self.part_names)
        _check(self.existence.shape == (n, k), "existence", f"({n}, {k}) bool", self.existence)
        _check(self.existence.dtype == torch.bool, "existence", "bool", self.existence)
        _check(self.part_of_point.shape == (p,), "part_of_point", f"({p},)", self.part_of_point)
        _check(self.style.shape == (n,), "style", f"({n},)", self.style)
        pop = self.part_of_point
        if p and (pop.min() < 0 or pop.max() >= k or (pop.diff() < 0).any()):
            raise ValueError(f"part_of_point must be nondecreasing part indices in [0, {k})")

    def __len__(self) -> int:
        return self.points.shape[0]

    @property
    def num_points(self) -> int:
        return self.points.shape[1]

    @property
    def num_parts(self) -> int:
        return len(self.part_names)

    def point_mask(self) -> torch.Tensor:
        """``(N, P)`` bool: the point's part is present."""
        return self.existence[:, self.part_of_point]

    def part_slice(self, part: int | str) -> slice:
        """The contiguous range of point indices of ``part`` (index or name)."""
        k = self.part_names.index(part) if isinstance(part, str) else part
        idx = (self.part_of_point == k).nonzero().flatten()
        return slice(int(idx[0]), int(idx[-1]) + 1) if len(idx) else slice(0, 0)

    def flat(self, normals: bool = True) -> torch.Tensor:
        """``(N, P * 6)`` rows ``[x, y, z, nx, ny, nz]`` per point (``(N, P * 3)`` without normals),
        the data vectors of ShapeVAE/ShapeFA; each part is a contiguous block.
        """
        if not normals:
            return self.points.reshape(len(self), -1)
        if self.normals is None:
            raise ValueError("this shape set has no normals; use flat(normals=False)")
        return torch.cat([self.points, self.normals], -1).reshape(len(self), -1)

    def flat_mask(self, normals: bool = True) -> torch.Tensor:
        """The observation mask matching :meth:`flat`."""
        width = 6 if normals else 3
        return self.point_mask().repeat_interleave(width, -1)

    def __getitem__(self, index) -> ShapeSet:
        """A subset of shapes (int, slice, index tensor or bool mask); parts are kept for meshes."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        if isinstance(index, torch.Tensor):
            index = index.to(self.points.device)
        sub = [
            p[index] if isinstance(p, torch.Tensor) else None for p in (self.points, self.normals)
        ]
        return replace(
            self,
            points=sub[0],
            normals=sub[1],
            existence=self.existence[index],
            style=self.style[index],
            parts=None if self.parts is None else [p[index] for p in self.parts],
            parameters=None
            if self.parameters is None
            else self.parameters[index.cpu() if isinstance(index, torch.Tensor) else index],
        )

    def to(self, *args, **kwargs) -> ShapeSet:
        """Move or cast the floating-point fields (``shape_set.to("cuda", torch.float64)``)."""
        points = self.points.to(*args, **kwargs)
        return replace(
            self,
            points=points,
            normals=None if self.normals is None else self.normals.to(*args, **kwargs),
            existence=self.existence.to(points.device),
            part_of_point=self.part_of_point.to(points.device),
            style=self.style.to(points.device),
        )

    def mesh(self, i: int) -> Mesh:
        """The closed triangle mesh of shape ``i``: the union of its present parts' meshes
        (each part closed and outward-oriented; parts may overlap), with ``part_of_face``.
        """
        if self.parts is None:
            raise ValueError("meshes are only available for procedurally generated shape sets")
        if not -len(self) <= i < len(self):
            raise IndexError(f"shape index {i} out of range for {len(self)} shapes")
        vertices, faces, part_of_face, offset = [], [], [], 0
        for k, part in enumerate(self.parts):
            if not self.existence[i, k]:
                continue
            v, f = part.mesh()
            vertices.append(v[i])
            faces.append(f + offset)
            part_of_face.append(torch.full((len(f),), k, dtype=torch.long))
            offset += v.shape[1]
        return Mesh(
            torch.cat(vertices).double().cpu(), torch.cat(faces).cpu(), torch.cat(part_of_face)
        )

    def save(self, path: str | os.PathLike) -> str:
        """Write the ``.npz`` schema read by :func:`load_shapes`.

        Keys: ``points (N, P, 3)`` float, ``normals (N, P, 3)`` float (optional),
        ``existence (N, K)``
        bool, ``part_of_point (P,)`` int, ``part_names (K,)`` str, and optionally ``style (N,)`` int
        and ``style_names`` str. Absent parts' points may hold anything (they are masked).
        """
        arrays = {
            "points": self.points.detach().cpu().numpy(),
            "existence": self.existence.cpu().numpy(),
            "part_of_point": self.part_of_point.cpu().numpy(),
            "part_names": np.array(self.part_names),
            "style": self.style.cpu().numpy(),
            "style_names": np.array(self.style_names, dtype=str),
        }
        if self.normals is not None:
            arrays["normals"] = self.normals.detach().cpu().numpy()
        np.savez_compressed(path, **arrays)
        return str(path)


def _check(ok: bool, name: str, expected: str, value) -> None:
    if not ok:
        got = tuple(value.shape) if hasattr(value, "shape") else type(value).__name__
        raise ValueError(f"{name} must be {expected}, got {got} ({getattr(value, 'dtype', '')})")


def load_shapes(path: str | os.PathLike, *, dtype=None) -> ShapeSet:
    """Read a shape set written in the ``.npz`` schema of :meth:`ShapeSet.save`.

    :raises FileNotFoundError: no such file. :raises ValueError: a key is missing or malformed
        (the message names the file and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no shape file at {path}")
    dtype = dtype or torch.get_default_dtype()
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile/pickle errors: report the file, not numpy internals
        raise ValueError(f"{path}: not a readable .npz shape file ({e})") from e
    for key in ("points", "existence", "part_of_point", "part_names"):
        if key not in data:
            raise ValueError(
                f"{path}: missing key {key!r}; the schema needs points, existence, "
                "part_of_point, part_names (and optionally normals, style, style_names)"
            )
    n = data["points"].shape[0]
    existence = data["existence"]
    if existence.dtype != bool and not np.isin(existence, (0, 1)).all():
        raise ValueError(f"{path}: 'existence' must be boolean (0/1)")
    try:
        return ShapeSet(
            points=torch.as_tensor(data["points"], dtype=dtype),
            normals=torch.as_tensor(data["normals"], dtype=dtype) if "normals" in data else None,
            existence=torch.as_tensor(existence.astype(bool)),
            part_of_point=torch.as_tensor(data["part_of_point"].astype(np.int64)),
            style=torch.as_tensor(data.get("style", np.full(n, -1)).astype(np.int64)),
            part_names=tuple(str(s) for s in data["part_names"]),
            style_names=tuple(str(s) for s in data.get("style_names", ())),
            family=str(path),
        )
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


class ShapeFamily:
    """A procedural family of part-segmented shapes.

    Subclasses set ``part_names``, ``style_names`` and ``symmetric_parts`` and implement
    :meth:`generate`, which returns the parts (one batched :class:`~pgm3d.data.parts.Part` per
    name, geometry valid even where absent) and the existences for ``N`` shapes of given styles.
    """

    name: str
    part_names: tuple[str, ...]
    style_names: tuple[str, ...]

    def generate(self, style: torch.Tensor, rng: ParamSampler) -> tuple[list[Part], torch.Tensor]:
        raise NotImplementedError


class ParamSampler:
    """Draws per-shape parameters whose ranges depend on each shape's style.

    ``rng.uniform(chair=(0.4, 0.5), bench=(0.8, 0.9))`` returns ``(N,)`` values drawn uniformly in
    the range of each shape's style; styles not named use the first range (their value is unused or
    irrelevant, e.g. the geometry of an absent part).

    It keeps every value it draws, in order (:attr:`draws`, a list of ``(N,)`` float64
    tensors), which :func:`shapes` returns as :attr:`ShapeSet.parameters`: the draws that vary
    within a style bound its number of free parameters from above (a draw for a part the style
    lacks still varies).
    """

    def __init__(self, style: torch.Tensor, style_names, generator: torch.Generator):
        self.style, self.names, self.generator = style, tuple(style_names), generator
        self.draws: list[torch.Tensor] = []

    def _draw(self, value: torch.Tensor) -> torch.Tensor:
        self.draws.append(value.to(torch.float64))
        return value

    def _table(self, values: dict, default) -> torch.Tensor:
        unknown = set(values) - set(self.names)
        if unknown:
            raise KeyError(f"unknown styles {sorted(unknown)}")
        return torch.tensor([values.get(name, default) for name in self.names], dtype=torch.float64)

    def uniform(self, default=None, **ranges) -> torch.Tensor:
        default = default if default is not None else next(iter(ranges.values()))
        table = self._table(ranges, default)
        if table.dim() == 1:  # a fixed value
            return table[self.style]
        lohi = table[self.style]
        u = torch.rand(len(self.style), generator=self.generator, dtype=torch.float64)
        return self._draw(lohi[:, 0] + u * (lohi[:, 1] - lohi[:, 0]))

    def integers(self, default=None, **ranges) -> torch.Tensor:
        """``(N,)`` long, uniform on ``lo..hi`` inclusive for each shape's style (a discrete
        structural choice: the number of legs, slats or engines)."""
        default = default if default is not None else next(iter(ranges.values()))
        table = self._table(ranges, default).long()
        lohi = table[self.style]
        u = torch.rand(len(self.style), generator=self.generator, dtype=torch.float64)
        return self._draw(lohi[:, 0] + (u * (lohi[:, 1] - lohi[:, 0] + 1)).long())

    def bernoulli(self, default: float = 0.0, **probs) -> torch.Tensor:
        p = self._table(probs, default)[self.style]
        u = torch.rand(len(self.style), generator=self.generator, dtype=torch.float64)
        return self._draw(u < p)

    def styles(self, *names: str) -> torch.Tensor:
        """``(N,)`` bool: the shape's style is one of ``names``."""
        unknown = set(names) - set(self.names)
        if unknown:
            raise KeyError(f"unknown styles {sorted(unknown)}")
        return torch.isin(self.style, torch.tensor([self.names.index(s) for s in names]))

    def vec(self, *components) -> torch.Tensor:
        """Stack ``(N,)`` tensors or floats into ``(N, 3)`` (or ``(N, len)``) vectors."""
        n = len(self.style)
        return torch.stack(
            [torch.as_tensor(c, dtype=torch.float64).expand(n) for c in components], -1
        )


def shapes(
    family: str | os.PathLike,
    n: int | None = None,
    seed: int = 0,
    points_per_part: int | dict[str, int] = 256,
    *,
    normals: bool = True,
    styles: list[str] | None = None,
    dtype=None,
    device=None,
) -> ShapeSet:
    """``n`` shapes of a procedural family, or a shape set read from an ``.npz`` file.

    :param family: a registered family (``"chairs"``, ``"airplanes"``, ``"tables"``, ``"lamps"``;
        see ``FAMILIES.names()``) or the path of an ``.npz`` file in the :meth:`ShapeSet.save`
        schema (then ``n`` takes the first ``n`` shapes, or all when None).
    :param int n: number of shapes (> 0).
    :param int seed: the same seed gives the same shapes.
    :param points_per_part: points per part, one int for all parts or a dict by part name.
    :param bool normals: also return unit normals.
    :param styles: restrict to these style names (default: all, drawn uniformly).
    :returns: a :class:`ShapeSet` whose ``parts`` give meshes (:meth:`ShapeSet.mesh`).
    """
    if isinstance(family, os.PathLike) or (isinstance(family, str) and family.endswith(".npz")):
        data = load_shapes(family, dtype=dtype)
        data = data if n is None else data[: _positive(n, "n")]
        return data.to(check_device(device)) if device is not None else data
    fam: ShapeFamily = FAMILIES[family]()
    n = _positive(n, "n")
    counts = _point_counts(points_per_part, fam.part_names)
    names = fam.style_names if styles is None else tuple(styles)
    for s in names:
        if s not in fam.style_names:
            raise ValueError(f"unknown style {s!r} for {family}; choose from {fam.style_names}")
    g = torch.Generator().manual_seed(seed)
    chosen = torch.tensor([fam.style_names.index(s) for s in names])
    style = chosen[torch.randint(len(chosen), (n,), generator=g)]
    rng = ParamSampler(style, fam.style_names, g)
    parts, existence = fam.generate(style, rng)
    pts, nrm = zip(*(part.surface(m) for part, m in zip(parts, counts, strict=True)), strict=True)
    part_of_point = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    mask = existence[:, part_of_point].unsqueeze(-1)
    dtype = dtype or torch.get_default_dtype()

    def finish(t):
        return torch.where(mask, torch.cat(t, 1), 0.0).to(device=device, dtype=dtype)

    return ShapeSet(
        points=finish(pts),
        normals=finish(nrm) if normals else None,
        existence=existence.to(device),
        part_of_point=part_of_point.to(device),
        style=style.to(device),
        part_names=fam.part_names,
        style_names=fam.style_names,
        family=family,
        parts=parts,
        parameters=torch.stack(rng.draws, -1) if rng.draws else None,
    )


def _positive(n, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _point_counts(points_per_part, part_names) -> list[int]:
    if isinstance(points_per_part, dict):
        unknown = set(points_per_part) - set(part_names)
        if unknown or set(points_per_part) != set(part_names):
            raise ValueError(
                f"points_per_part must give every part of {list(part_names)}; "
                f"unknown {sorted(unknown)}, "
                f"missing {sorted(set(part_names) - set(points_per_part))}"
            )
        counts = [points_per_part[p] for p in part_names]
    else:
        counts = [points_per_part] * len(part_names)
    for c in counts:
        _positive(c, "points_per_part")
    return [int(c) for c in counts]
