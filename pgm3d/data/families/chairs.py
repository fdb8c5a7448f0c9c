"""Procedural chairs: seat, back, four legs, two arms and a central column."""

from __future__ import annotations

import math

import torch

from pgm3d.data.families._geometry import axis, columns, leg
from pgm3d.data.parts import Box, Frustum, Mirrored, Symmetrized, rotation_x
from pgm3d.data.shapes import FAMILIES, ParamSampler, ShapeFamily

FLOOR = -1.0


@FAMILIES.register("chairs")
class Chairs(ShapeFamily):
    """Chairs in six styles, so the data is multi-modal:

    ================  ====================================================================
    ``four_leg``      seat, back, four straight or slightly splayed legs
    ``armchair``      low, wide, thick seat and back with solid side arms
    ``bench``         long seat on four legs, no back
    ``tall``          high seat (bar chair), long splayed legs, short back
    ``office``        seat, tilted back, central column on a four-spoke star base, arms
                      half of the time
    ``pedestal``      seat and back on a flared central column, no legs (tulip chair)
    ================  ====================================================================

    Continuous variation: seat width, depth, height and thickness; back height, width,
    thickness and tilt; leg radius, taper, inset and splay; arm height and thickness. Left
    parts (``x < 0``) are exact mirror images of right ones; the front is ``+z``.
    """

    name = "chairs"
    part_names = (
        "seat",
        "back",
        "leg_front_left",
        "leg_front_right",
        "leg_back_left",
        "leg_back_right",
        "arm_left",
        "arm_right",
        "column",
    )
    style_names = ("four_leg", "armchair", "bench", "tall", "office", "pedestal")

    def generate(self, style: torch.Tensor, rng: ParamSampler):
        n = len(style)
        u = rng.uniform
        hw = u(
            four_leg=(0.35, 0.48),
            armchair=(0.42, 0.55),
            bench=(0.75, 0.95),
            tall=(0.3, 0.4),
            office=(0.38, 0.48),
            pedestal=(0.35, 0.45),
        )
        hd = u(
            four_leg=(0.33, 0.45),
            armchair=(0.4, 0.5),
            bench=(0.25, 0.35),
            tall=(0.28, 0.35),
            office=(0.35, 0.45),
            pedestal=(0.33, 0.42),
        )
        top = u(
            four_leg=(-0.15, 0.0),
            armchair=(-0.3, -0.15),
            bench=(-0.2, -0.05),
            tall=(0.2, 0.35),
            office=(-0.15, 0.0),
            pedestal=(-0.15, 0.0),
        )
        thick = u(
            four_leg=(0.05, 0.1),
            armchair=(0.15, 0.25),
            bench=(0.06, 0.12),
            tall=(0.04, 0.08),
            office=(0.08, 0.14),
            pedestal=(0.05, 0.1),
        )
        bottom = top - thick
        x, y, z = axis(n, 0), axis(n, 1), axis(n, 2)
        seat = Box.cuboid(
            rng.vec(0.0, bottom + thick / 2, 0.0),
            rng.vec(hw, thick / 2, hd),
            nominal=(0.45, 0.04, 0.4),
        )

        # back: a slab rising from the rear of the seat, tilted backwards about the x axis
        bh = u(
            four_leg=(0.7, 0.95),
            armchair=(0.45, 0.7),
            bench=(0.5, 0.6),
            tall=(0.45, 0.6),
            office=(0.75, 0.95),
            pedestal=(0.6, 0.8),
        )
        bt = u((0.04, 0.08), armchair=(0.12, 0.2))
        bw = u((0.85, 1.0), office=(0.7, 0.9))
        tilt = u(
            four_leg=(0.0, 0.2),
            armchair=(0.1, 0.3),
            bench=(0.0, 0.1),
            tall=(0.0, 0.15),
            office=(0.1, 0.3),
            pedestal=(0.05, 0.2),
        )
        rot = rotation_x(-tilt)
        up, across = rot @ y.unsqueeze(-1), rot @ z.unsqueeze(-1)
        back_frame = columns(across.squeeze(-1), x, up.squeeze(-1))
        c0 = rng.vec(0.0, bottom, -hd + bt / 2)
        half = torch.stack([bt / 2, hw * bw], -1)
        back = Box.loft(
            back_frame,
            c0,
            half,
            c0 + (bh + thick)[:, None] * up.squeeze(-1),
            half,
            nominal=(0.03, 0.4, 0.45),
        )

        # legs: from under the seat corners to the floor, splayed outwards
        radius = u(
            four_leg=(0.025, 0.05),
            armchair=(0.04, 0.07),
            bench=(0.04, 0.07),
            tall=(0.02, 0.035),
            office=(0.025, 0.04),
            pedestal=(0.03, 0.04),
        )
        taper = u((0.6, 1.0), office=(1.0, 1.0))
        inset = u((0.02, 0.08), office=(0.0, 0.0))
        splay = u(
            four_leg=(0.0, 0.1),
            armchair=(0.0, 0.05),
            bench=(0.0, 0.15),
            tall=(0.05, 0.2),
            office=(0.0, 0.0),
            pedestal=(0.0, 0.0),
        )
        drop = (bottom - FLOOR) * splay.tan()
        lx, lz = hw - inset - radius, hd - inset - radius
        office = style == self.style_names.index("office")
        # office chairs: a four-spoke star at +-45 degrees from the column foot
        star = u((0.4, 0.5)) / math.sqrt(2)
        hub = FLOOR + 0.2
        legs = {}
        for name, sz in (("front", 1.0), ("back", -1.0)):
            top_pt = torch.where(
                office[:, None], rng.vec(0.0, hub, 0.0), rng.vec(lx, bottom, sz * lz)
            )
            foot = torch.where(
                office[:, None],
                rng.vec(star, FLOOR + 0.05, sz * star),
                rng.vec(lx + drop, FLOOR, sz * (lz + drop)),
            )
            legs[name] = leg(top_pt, foot, radius, taper)

        # arms: solid side panels (armchair) or thin arm rests (office)
        at = u((0.08, 0.15), office=(0.04, 0.06))
        ah = u((0.25, 0.35), office=(0.2, 0.28))
        depth = u((0.9, 1.0), office=(0.5, 0.65))
        arm_bottom = torch.where(office, top + ah - 0.04, bottom)
        arm_top = top + ah
        arm = Box.cuboid(
            rng.vec(hw - at / 2, (arm_bottom + arm_top) / 2, 0.0),
            rng.vec(at / 2, (arm_top - arm_bottom) / 2, hd * depth),
            nominal=(0.05, 0.15, 0.4),
        )

        # central column: office (narrow, to the star hub) or pedestal (flared to the floor)
        pedestal = style == self.style_names.index("pedestal")
        col_foot = torch.where(pedestal, torch.full_like(top, FLOOR), torch.full_like(top, hub))
        col_r0 = u((0.03, 0.05), pedestal=(0.04, 0.07))
        col_r1 = u((0.03, 0.05), pedestal=(0.25, 0.35))
        column = Frustum(
            rng.vec(0.0, bottom, 0.0),
            rng.vec(0.0, col_foot, 0.0),
            col_r0,
            col_r1,
            nominal=(0.05, 0.15, 0.8),
        )

        s = rng.styles
        has_back = ~s("bench")
        has_legs = ~s("pedestal")
        has_arms = s("armchair") | (s("office") & rng.bernoulli(office=0.5))
        has_column = s("office", "pedestal")
        existence = torch.stack(
            [
                torch.ones(n, dtype=torch.bool),
                has_back,
                *[has_legs] * 4,
                has_arms,
                has_arms,
                has_column,
            ],
            -1,
        )
        parts = [
            Symmetrized(seat),
            Symmetrized(back),
            Mirrored(legs["front"]),
            legs["front"],
            Mirrored(legs["back"]),
            legs["back"],
            Mirrored(arm),
            arm,
            Symmetrized(column),
        ]
        return parts, existence
