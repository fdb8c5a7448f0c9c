"""Procedural tables: top, four legs, central column and base."""

from __future__ import annotations

import torch

from pgm3d.data.families._geometry import disc, leg
from pgm3d.data.parts import Box, Frustum, Mirrored, Symmetrized
from pgm3d.data.shapes import FAMILIES, ParamSampler, ShapeFamily

FLOOR = -1.0


@FAMILIES.register("tables")
class Tables(ShapeFamily):
    """Tables in four styles:

    ============  ====================================================================
    ``dining``    large thin top on four straight legs
    ``coffee``    low, thick top on four short thick legs
    ``pedestal``  small top on a central column standing on a round base
    ``bar``       high, narrow top on four splayed legs, or (half of them) on a column
                  and base
    ============  ====================================================================

    Continuous variation: top width, depth, height and thickness; leg radius, taper, inset and
    splay; column radius; base radius and height.
    """

    name = "tables"
    part_names = (
        "top",
        "leg_front_left",
        "leg_front_right",
        "leg_back_left",
        "leg_back_right",
        "column",
        "base",
    )
    style_names = ("dining", "coffee", "pedestal", "bar")

    def generate(self, style: torch.Tensor, rng: ParamSampler):
        n = len(style)
        u = rng.uniform
        hw = u(dining=(0.6, 0.95), coffee=(0.55, 0.85), pedestal=(0.35, 0.5), bar=(0.3, 0.4))
        hd = u(dining=(0.4, 0.6), coffee=(0.3, 0.5), pedestal=(0.35, 0.5), bar=(0.3, 0.4))
        top_y = u(dining=(0.35, 0.55), coffee=(-0.4, -0.2), pedestal=(0.3, 0.5), bar=(0.8, 0.95))
        thick = u((0.04, 0.1), coffee=(0.06, 0.14))
        bottom = top_y - thick
        top = Box.cuboid(
            rng.vec(0.0, bottom + thick / 2, 0.0),
            rng.vec(hw, thick / 2, hd),
            nominal=(0.7, 0.035, 0.5),
        )

        radius = u(
            dining=(0.03, 0.06), coffee=(0.05, 0.08), pedestal=(0.03, 0.05), bar=(0.025, 0.04)
        )
        taper = u((0.6, 1.0))
        inset = u((0.03, 0.1))
        splay = u((0.0, 0.0), coffee=(0.0, 0.05), bar=(0.05, 0.15))
        drop = (bottom - FLOOR) * splay.tan()
        lx, lz = hw - inset - radius, hd - inset - radius
        legs = {
            name: leg(
                rng.vec(lx, bottom, sz * lz),
                rng.vec(lx + drop, FLOOR, sz * (lz + drop)),
                radius,
                taper,
            )
            for name, sz in (("front", 1.0), ("back", -1.0))
        }

        base_h = u((0.03, 0.07))
        base_r = u((0.25, 0.4), bar=(0.2, 0.3))
        base = disc(FLOOR, base_h, base_r, u((0.7, 0.95)), nominal=(0.3, 0.25, 0.05))
        column = Frustum(
            rng.vec(0.0, bottom, 0.0),
            rng.vec(0.0, FLOOR + base_h, 0.0),
            u((0.05, 0.09)),
            u((0.05, 0.12)),
            nominal=(0.07, 0.08, 1.3),
        )

        s = rng.styles
        on_column = s("pedestal") | (s("bar") & rng.bernoulli(bar=0.5))
        existence = torch.stack(
            [torch.ones(n, dtype=torch.bool), *[~on_column] * 4, on_column, on_column], -1
        )
        parts = [
            Symmetrized(top),
            Mirrored(legs["front"]),
            legs["front"],
            Mirrored(legs["back"]),
            legs["back"],
            Symmetrized(column),
            Symmetrized(base),
        ]
        return parts, existence
