"""Procedural airplanes whose variation is not linear in their parameters: wings that swing
about a pivot (variable sweep), wings that bend upwards along their span, engines whose number
moves them along the wing, and tail planes that jump to the top of the fin (T-tails)."""

from __future__ import annotations

import torch

from pgm3d.data.families._geometry import axis, columns, lifting_surface
from pgm3d.data.families.airplanes import Airplanes
from pgm3d.data.parts import Bent, Ellipsoid, Mirrored, Moved, Symmetrized, rotation_y
from pgm3d.data.shapes import FAMILIES, ParamSampler, ShapeFamily


@FAMILIES.register("airplanes_nonlinear")
class AirplanesNonlinear(ShapeFamily):
    """Airplanes in four styles; the nose points to ``+z`` and the wings span ``x``:

    ==============  =======================================================================
    ``airliner``    swept wings bent slightly upwards, one or two engines under each wing
                    (one: at 40% of the span; two: at 25% and 60%), low tail planes, fin
    ``swing_wing``  a variable-sweep fighter: the wings turn about a pivot by 10-65 degrees
    ``prop``        straight high wings with 0-2 engine nacelles each; a
                    T-tail (tail planes on top of the fin) half the time
    ``glider``      long slender wings bent upwards along the span, T-tail, no engines
    ==============  =======================================================================

    Each wing is built straight along ``+x``, bent upwards by a Barr bend of curvature
    ``kappa`` (:class:`~pgm3d.data.parts.Bent`), then swept by a rotation about the vertical
    axis through its root (:class:`~pgm3d.data.parts.Moved`); engines hang under the point of
    the bent and swept wing at their span fraction, so their positions are products of sines,
    cosines and the discrete engine count. Every shape is mirror-symmetric about ``x = 0``.
    """

    name = "airplanes_nonlinear"
    part_names = (
        "fuselage",
        "wing_left",
        "wing_right",
        "tail_left",
        "tail_right",
        "fin",
        "engine_inner_left",
        "engine_inner_right",
        "engine_outer_left",
        "engine_outer_right",
    )
    style_names = ("airliner", "swing_wing", "prop", "glider")

    def generate(self, style: torch.Tensor, rng: ParamSampler):
        n = len(style)
        u, s = rng.uniform, rng.styles
        x, y, z = axis(n, 0), axis(n, 1), axis(n, 2)
        fl = u(airliner=(0.8, 0.92), swing_wing=(0.75, 0.9), prop=(0.55, 0.7), glider=(0.5, 0.65))
        fr = u(airliner=(0.07, 0.1), swing_wing=(0.06, 0.09), prop=(0.07, 0.1), glider=(0.05, 0.07))
        fuselage = Ellipsoid(
            torch.zeros(n, 3, dtype=torch.float64), rng.vec(fr, fr * u((1.0, 1.1)), fl)
        )

        span = u(
            airliner=(0.75, 0.92), swing_wing=(0.55, 0.75), prop=(0.8, 0.95), glider=(0.85, 0.97)
        )
        chord = u(
            airliner=(0.25, 0.35), swing_wing=(0.25, 0.35), prop=(0.2, 0.28), glider=(0.12, 0.18)
        )
        taper = u(airliner=(0.25, 0.4), swing_wing=(0.3, 0.5), prop=(0.7, 1.0), glider=(0.3, 0.5))
        sweep = u(airliner=(0.4, 0.7), swing_wing=(0.17, 1.13), prop=(0.0, 0.1), glider=(0.0, 0.1))
        bend = u(airliner=(0.0, 0.5), swing_wing=(-0.2, 0.2), prop=(-0.3, 0.3), glider=(0.3, 1.1))
        thickness = u((0.08, 0.14))
        wz = u(airliner=(0.0, 0.12), swing_wing=(0.0, 0.15), prop=(0.1, 0.25), glider=(0.05, 0.2))
        wy = fr * u(
            airliner=(-0.5, -0.5), swing_wing=(0.0, 0.3), prop=(0.8, 0.8), glider=(0.8, 0.8)
        )
        root = rng.vec(fr * 0.5, wy, wz)
        wing = self._wing(root, x, y, z, span, chord, taper, thickness, bend, sweep)

        # engines: nacelles under the wing at a span fraction that depends on the count
        count = rng.integers((0, 0), airliner=(1, 2), prop=(0, 2))
        er = u((0.05, 0.07), prop=(0.04, 0.05))
        el = u((0.16, 0.22), prop=(0.12, 0.16))
        engines = []
        for frac in (
            torch.where(count == 2, 0.25, 0.4),
            torch.full((n,), 0.6, dtype=torch.float64),
        ):
            # the point a quarter chord behind the leading edge at this fraction of the span
            rest = root + (frac * span)[:, None] * x
            anchor = wing.place(rest[:, None]).squeeze(1)
            centre = anchor - (er * 1.3)[:, None] * y + (chord * 0.2)[:, None] * z
            engines.append(Ellipsoid(centre, torch.stack([er, er, el], -1)))

        # fin, then tail planes at the fuselage (conventional) or on top of the fin (T-tail)
        f_height = u((0.2, 0.3), glider=(0.22, 0.3))
        f_chord = u((0.15, 0.25))
        fin = Airplanes.fin(
            rng, fl, fr, f_height, f_chord, u((0.5, 0.8)), u((0.5, 0.8)), u((0.08, 0.12))
        )
        t_tail = s("glider") | (s("prop") & rng.bernoulli(prop=0.5))
        t_span = u((0.25, 0.35), glider=(0.18, 0.25))
        t_chord = u((0.1, 0.16))
        t_y = torch.where(t_tail, f_height + fr / 2, fr * 0.2)
        t_root = rng.vec(0.0, t_y, -0.8 * fl + t_chord / 2)
        tail = self._wing(
            t_root,
            x,
            y,
            z,
            t_span,
            t_chord,
            u((0.4, 0.7)),
            u((0.08, 0.12)),
            0.0 * fr,
            u((0.3, 0.7), glider=(0.0, 0.2)),
        )

        ones = torch.ones(n, dtype=torch.bool)
        existence = torch.stack(
            [ones, ones, ones, ones, ones, ones, count >= 1, count >= 1, count >= 2, count >= 2],
            -1,
        )
        inner, outer = engines
        parts = [
            Symmetrized(fuselage),
            Mirrored(wing),
            wing,
            Mirrored(tail),
            tail,
            Symmetrized(fin),
            Mirrored(inner),
            inner,
            Mirrored(outer),
            outer,
        ]
        return parts, existence

    @staticmethod
    def _wing(root, x, y, z, span, chord, taper, thickness, bend, sweep) -> _Wing:
        """A straight tapered wing from ``root`` along ``+x``, bent up by ``bend`` (curvature)
        and swept back by ``sweep`` radians about the vertical axis through ``root``."""
        tip = root + span[:, None] * x
        straight = lifting_surface(
            columns(y, z, x), root, chord, tip, chord * taper, thickness, (0.01, 0.15, 0.45)
        )
        return _Wing(Bent(straight, root, x, y, bend), rotation_y(sweep), root)


class _Wing(Moved):
    """A bent and swept wing that can also place other points (engines) as it places its own."""

    def place(self, x: torch.Tensor) -> torch.Tensor:
        """The image of rest-frame points ``x (N, M, 3)`` under the wing's bend and sweep."""
        return self._apply(self.part._forward(x))
