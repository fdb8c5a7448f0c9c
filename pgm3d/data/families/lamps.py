"""Procedural lamps: base, pole and shade."""

from __future__ import annotations

import torch

from pgm3d.data.families._geometry import disc
from pgm3d.data.parts import Frustum, Symmetrized
from pgm3d.data.shapes import FAMILIES, ParamSampler, ShapeFamily

FLOOR = -1.0


@FAMILIES.register("lamps")
class Lamps(ShapeFamily):
    """Lamps in three styles, all parts always present:

    =========  ==================================================================
    ``floor``  tall thin pole on a disc base, conical shade at the top
    ``table``  short thick body on a wide base under a large shade
    ``desk``   pole leaning forward (``+z``), shade pointing down and forward
    =========  ==================================================================

    The shade is a truncated cone from its narrow end to its open end, in every style.
    """

    name = "lamps"
    part_names = ("base", "pole", "shade")
    style_names = ("floor", "table", "desk")

    def generate(self, style: torch.Tensor, rng: ParamSampler):
        n = len(style)
        u = rng.uniform
        base_h = u((0.03, 0.08))
        base_r = u(floor=(0.2, 0.3), table=(0.2, 0.35), desk=(0.15, 0.25))
        base = disc(FLOOR, base_h, base_r, u((0.8, 1.0)), nominal=(0.25, 0.22, 0.05))

        desk = style == self.style_names.index("desk")
        pole_top = rng.vec(
            0.0,
            u(floor=(0.4, 0.6), table=(-0.4, -0.1), desk=(0.0, 0.3)),
            torch.where(desk, u((0.2, 0.4)), 0.0),
        )
        pole_r = u(floor=(0.015, 0.03), table=(0.03, 0.08), desk=(0.015, 0.025))
        pole = Frustum(
            rng.vec(0.0, FLOOR + base_h, torch.where(desk, -0.1, 0.0)),
            pole_top,
            pole_r,
            pole_r * u((0.7, 1.0)),
            nominal=(0.03, 0.025, 1.2),
        )

        # the shade axis points down (floor, table lamps) or down and forward (desk lamps)
        down = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
        forward = torch.tensor([0.0, -0.6, 0.8], dtype=torch.float64)
        direction = torch.where(desk[:, None], forward, down)
        lift = u(floor=(0.3, 0.4), table=(0.35, 0.45), desk=(0.0, 0.0))
        height = u(floor=(0.25, 0.4), table=(0.3, 0.45), desk=(0.2, 0.3))
        narrow = pole_top - lift[:, None] * down
        shade = Frustum(
            narrow,
            narrow + height[:, None] * direction,
            u(floor=(0.1, 0.2), table=(0.15, 0.25), desk=(0.03, 0.06)),
            u(floor=(0.25, 0.4), table=(0.3, 0.45), desk=(0.15, 0.22)),
            ref=(1.0, 0.0, 0.0),
            nominal=(0.15, 0.33, 0.33),
        )
        existence = torch.ones(n, 3, dtype=torch.bool)
        return [Symmetrized(base), Symmetrized(pole), Symmetrized(shade)], existence
