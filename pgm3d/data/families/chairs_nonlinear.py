"""Procedural chairs whose variation is not linear in their parameters: reclining and bent
backs, curved legs and rockers, and discrete structure (the number of slats or of base spokes)
that moves every part of its kind."""

from __future__ import annotations

import math

import torch

from pgm3d.data.families._geometry import arc_length_for_drop, axis, centred, leg
from pgm3d.data.parts import Bent, Box, Frustum, Mirrored, Moved, Symmetrized, rotation_x
from pgm3d.data.shapes import FAMILIES, ParamSampler, ShapeFamily

FLOOR = -1.0


@FAMILIES.register("chairs_nonlinear")
class ChairsNonlinear(ShapeFamily):
    """Chairs in four styles whose shapes move along curves, not lines, as their parameters
    change (the variation the thesis's real chairs have and :class:`Chairs` lacks):

    ============  ====================================================================
    ``slatted``   four gently curved legs; a back of 2-5 vertical slats under a top rail,
                  spread evenly across the back (so the count moves every slat): a middle
                  slat for odd counts and mirrored pairs
    ``lounge``    low wide seat, a strongly bent back reclined 10-35 degrees, splayed
                  curved legs
    ``rocking``   straight legs standing on two curved rockers; a slightly bent back
    ``swivel``    a column on a star base of 3-6 spokes (spoke ``i`` at ``360 i / n``
                  degrees from the front), a back bent forwards or backwards
    ============  ====================================================================

    Nonlinear variation: the back reclines by a rotation about the seat's rear edge (angles up
    to 0.6 rad) after a Barr bend of curvature up to 1.6 per unit length
    (:class:`~pgm3d.data.parts.Bent`); legs bend outwards along an arc whose length keeps the
    foot on the floor; rockers bend upwards. Every shape is mirror-symmetric about ``x = 0``
    and centred along ``z`` (a reclined back would otherwise reach past ``z = -1``).
    """

    name = "chairs_nonlinear"
    part_names = (
        "seat",
        "back",
        "rail",
        "slat_middle",
        "slat_1_left",
        "slat_1_right",
        "slat_2_left",
        "slat_2_right",
        "leg_front_left",
        "leg_front_right",
        "leg_back_left",
        "leg_back_right",
        "runner_left",
        "runner_right",
        "column",
        "spoke_front",
        "spoke_back",
        "spoke_1_left",
        "spoke_1_right",
        "spoke_2_left",
        "spoke_2_right",
    )
    style_names = ("slatted", "lounge", "rocking", "swivel")

    def generate(self, style: torch.Tensor, rng: ParamSampler):
        n = len(style)
        u, s = rng.uniform, rng.styles
        y, z = axis(n, 1), axis(n, 2)
        hw = u(slatted=(0.35, 0.45), lounge=(0.45, 0.55), rocking=(0.38, 0.48), swivel=(0.38, 0.48))
        hd = u(slatted=(0.33, 0.42), lounge=(0.4, 0.5), rocking=(0.35, 0.42), swivel=(0.35, 0.45))
        top = u(
            slatted=(-0.1, 0.0), lounge=(-0.35, -0.2), rocking=(-0.15, -0.05), swivel=(-0.1, 0.05)
        )
        thick = u((0.05, 0.09), lounge=(0.1, 0.16))
        bottom = top - thick
        seat = Box.cuboid(
            rng.vec(0.0, bottom + thick / 2, 0.0),
            rng.vec(hw, thick / 2, hd),
            nominal=(0.45, 0.04, 0.4),
        )

        # the back: built upright from the seat's rear edge, bent backwards (kappa > 0) or
        # forwards, then reclined about that edge -- a rotation, so not linear in the angle
        height = u(slatted=(0.65, 0.85), lounge=(0.6, 0.8), rocking=(0.6, 0.8), swivel=(0.55, 0.75))
        bt = u((0.04, 0.07))
        bend = u(slatted=(0.0, 0.4), lounge=(0.5, 1.8), rocking=(0.0, 1.0), swivel=(-1.0, 1.0))
        recline = u(slatted=(0.0, 0.5), lounge=(0.2, 0.8), rocking=(0.1, 0.6), swivel=(0.0, 0.7))
        pivot = rng.vec(0.0, bottom, -hd)
        turn = rotation_x(-recline)

        def upright(part: Box) -> Moved:
            return Moved(Bent(part, pivot, y, -z, bend), turn, pivot)

        back = upright(
            Box.cuboid(
                rng.vec(0.0, bottom + (height + thick) / 2, -hd + bt / 2),
                rng.vec(hw * 0.95, (height + thick) / 2, bt / 2),
                nominal=(0.4, 0.45, 0.03),
            )
        )
        rail_h = u((0.06, 0.12))
        rail = upright(
            Box.cuboid(
                rng.vec(0.0, bottom + thick + height - rail_h / 2, -hd + bt / 2),
                rng.vec(hw * 0.95, rail_h / 2, bt / 2),
                nominal=(0.4, 0.05, 0.03),
            )
        )
        # slats: `count` evenly spread, as a middle slat (odd counts) and mirrored pairs; pair j
        # of `count` sits at +-(1 - (2j + 1) / count) of the back's half width
        count = rng.integers(slatted=(2, 5))
        slat_w = u((0.03, 0.06))

        def slat(at):
            return upright(
                Box.cuboid(
                    rng.vec(at, bottom + (thick + height - rail_h) / 2, -hd + bt / 2),
                    rng.vec(slat_w, (thick + height - rail_h) / 2, bt / 2 * 0.8),
                    nominal=(0.04, 0.4, 0.03),
                )
            )

        slat_pairs = [slat(hw * 0.8 * (1 - (2 * j + 1) / count)) for j in range(2)]
        middle_slat = slat(torch.zeros_like(hw))

        # rockers: long bars along z on the floor, bent upwards at both ends
        rocker_k = u(rocking=(0.6, 1.4))
        rocker_t = u((0.04, 0.06))
        rx = hw - u((0.03, 0.08))
        runner = Bent(
            Box.cuboid(
                rng.vec(rx, FLOOR + rocker_t / 2, 0.0),
                rng.vec(rocker_t / 2, rocker_t / 2, hd * 1.6),
                nominal=(0.02, 0.02, 0.6),
            ),
            rng.vec(rx, FLOOR, 0.0),
            z,
            y,
            rocker_k,
        )

        # legs: from under the seat corners, bent outwards along an arc that meets the floor
        # (or the rocker); the arc's length solves sin(kappa L) / kappa = drop
        radius = u((0.025, 0.045))
        inset = u((0.03, 0.08))
        curl = u(slatted=(0.0, 0.6), lounge=(0.3, 0.9), rocking=(0.0, 0.0), swivel=(0.0, 0.0))
        lx, lz = hw - inset - radius, hd - inset - radius
        rocker_rise = lz * lz * rocker_k / 2 * (torch.sinc(rocker_k * lz / 2 / math.pi) ** 2)
        foot = torch.where(
            s("rocking"), FLOOR + rocker_t + rocker_rise, torch.full_like(top, FLOOR)
        )
        drop = bottom - foot
        length = arc_length_for_drop(drop, curl)
        legs = {}
        for name, sz in (("front", 1.0), ("back", -1.0)):
            start = rng.vec(lx, bottom, sz * lz)
            out = rng.vec(math.sqrt(0.5), 0.0, sz * math.sqrt(0.5))
            straight = leg(start, start - length[:, None] * y, radius, u((0.6, 1.0)))
            legs[name] = Bent(straight, start, -y, out, curl)

        # swivel base: a column and n spokes, spoke i at 2 pi i / n from the front
        hub = FLOOR + u((0.12, 0.2))
        column = Frustum(
            rng.vec(0.0, bottom, 0.0),
            rng.vec(0.0, hub, 0.0),
            u((0.03, 0.05)),
            u((0.04, 0.06)),
            nominal=(0.05, 0.05, 0.8),
        )
        spokes_n = rng.integers(swivel=(3, 6))
        reach = u((0.35, 0.5))
        spoke_r = u((0.025, 0.035))

        def spoke(phi):
            tip = rng.vec(reach * phi.sin(), FLOOR + 0.04, reach * phi.cos())
            hub_at = rng.vec(0.0, hub, 0.0)
            return Frustum(hub_at, tip, spoke_r, spoke_r * 0.6, ref=(0.0, 1.0, 0.0),
                           nominal=(0.03, 0.02, 0.45))  # fmt: skip

        # spokes at 2 pi i / n from the front: the front one, mirrored pairs, the back one
        pairs = [spoke(2 * math.pi * i / spokes_n) for i in (1, 2)]
        front_spoke, back_spoke = spoke(0.0 * reach), spoke(math.pi + 0.0 * reach)

        ones = torch.ones(n, dtype=torch.bool)
        has_legs = s("slatted", "lounge", "rocking")
        solid = s("lounge", "rocking", "swivel")
        existence = torch.stack(
            [
                ones,
                solid,
                s("slatted"),
                s("slatted") & (count % 2 == 1),
                *[s("slatted") & (count >= 2 * (j + 1)) for j in range(2) for _ in "lr"],
                *[has_legs] * 4,
                s("rocking"),
                s("rocking"),
                s("swivel"),
                s("swivel"),
                s("swivel") & (spokes_n % 2 == 0),
                s("swivel"),
                s("swivel"),
                s("swivel") & (spokes_n >= 5),
                s("swivel") & (spokes_n >= 5),
            ],
            -1,
        )
        parts = [
            Symmetrized(seat),
            Symmetrized(back),
            Symmetrized(rail),
            Symmetrized(middle_slat),
            *[p for pair in slat_pairs for p in (Mirrored(pair), pair)],
            Mirrored(legs["front"]),
            legs["front"],
            Mirrored(legs["back"]),
            legs["back"],
            Mirrored(runner),
            runner,
            Symmetrized(column),
            Symmetrized(front_spoke),
            Symmetrized(back_spoke),
            *[p for pair in pairs for p in (Mirrored(pair), pair)],
        ]
        return centred(parts, existence), existence
