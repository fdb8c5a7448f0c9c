"""Triangle meshes: a small tensor container with the checks voxelisation needs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Mesh"]


@dataclass
class Mesh:
    """A triangle mesh.

    :ivar torch.Tensor vertices: ``(V, 3)`` floating point.
    :ivar torch.Tensor faces: ``(F, 3)`` long vertex indices, counter-clockwise seen from outside
        for an outward-oriented mesh.
    :ivar torch.Tensor part_of_face: ``(F,)`` long part index per face, or None.
    :ivar str source: where the mesh came from (a file path), used in error messages.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    part_of_face: torch.Tensor | None = None
    source: str | None = None

    def __post_init__(self):
        v, f = self.vertices, self.faces
        if v.dim() != 2 or v.shape[-1] != 3 or not v.is_floating_point():
            raise ValueError(
                f"{self._name()}: vertices must be a float (V, 3) tensor, got {tuple(v.shape)}"
            )
        if f.dim() != 2 or f.shape[-1] != 3:
            raise ValueError(f"{self._name()}: faces must be a (F, 3) tensor, got {tuple(f.shape)}")
        if len(f) and (f.min() < 0 or f.max() >= len(v)):
            raise ValueError(f"{self._name()}: face indices out of range for {len(v)} vertices")
        if not torch.isfinite(v).all():
            raise ValueError(f"{self._name()}: vertices contain NaN or inf")

    def _name(self) -> str:
        return f"mesh {self.source!r}" if self.source else "mesh"

    @property
    def is_empty(self) -> bool:
        return len(self.faces) == 0

    def _edges(self) -> torch.Tensor:
        f = self.faces
        return torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])  # directed, (3F, 2)

    @property
    def is_watertight(self) -> bool:
        """Every undirected edge is shared by exactly two faces (a closed 2-manifold edge set)."""
        if self.is_empty:
            return False
        _, counts = self._edges().sort(-1).values.unique(dim=0, return_counts=True)
        return bool((counts == 2).all())

    @property
    def is_oriented(self) -> bool:
        """Watertight with consistent winding: every directed edge occurs exactly once."""
        if not self.is_watertight:
            return False
        _, counts = self._edges().unique(dim=0, return_counts=True)
        return bool((counts == 1).all())

    def face_areas(self) -> torch.Tensor:
        """``(F,)`` triangle areas."""
        a, b, c = self.vertices[self.faces].unbind(-2)
        return torch.linalg.cross(b - a, c - a).norm(dim=-1) / 2

    def volume(self) -> torch.Tensor:
        """Signed enclosed volume (divergence theorem); positive for an outward-oriented mesh."""
        a, b, c = self.vertices[self.faces].unbind(-2)
        return (a * torch.linalg.cross(b, c)).sum() / 6

    def bounds(self) -> torch.Tensor:
        """``(2, 3)``: min and max corner."""
        return torch.stack([self.vertices.amin(0), self.vertices.amax(0)])

    def sample_points(self, n: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` points uniform on the surface (area-weighted) with their face normals.

        :returns: ``points (n, 3)``, ``normals (n, 3)`` (unit, following the face winding).
        """
        if self.is_empty:
            raise ValueError(f"{self._name()} has no faces to sample")
        g = torch.Generator().manual_seed(seed)
        areas = self.face_areas().double().cpu()
        face = torch.multinomial(areas / areas.sum(), n, replacement=True, generator=g)
        r = torch.rand(n, 2, generator=g, dtype=torch.float64)
        flip = r.sum(-1) > 1  # fold the unit square onto the triangle
        r[flip] = 1 - r[flip]
        r = r.to(self.vertices)
        face = face.to(self.faces.device)
        a, b, c = self.vertices[self.faces[face]].unbind(-2)
        points = a + r[:, :1] * (b - a) + r[:, 1:] * (c - a)
        normal = torch.linalg.cross(b - a, c - a)
        return points, normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-30)

    @classmethod
    def from_trimesh(cls, tm, source: str | None = None, dtype=torch.float64) -> Mesh:
        import numpy as np

        return cls(
            torch.as_tensor(np.asarray(tm.vertices), dtype=dtype),
            torch.as_tensor(np.asarray(tm.faces, dtype=np.int64)),
            source=source,
        )

    def to_trimesh(self):
        """This mesh as a ``trimesh.Trimesh``; export with ``mesh.to_trimesh().export("x.ply")``."""
        import trimesh

        return trimesh.Trimesh(
            self.vertices.detach().cpu().double().numpy(),
            self.faces.cpu().numpy(),
            process=False,
        )
