"""Procedural airplanes: fuselage, two wings, two horizontal tail planes and a vertical fin."""

from __future__ import annotations

import torch

from pgm3d.data.families._geometry import axis, columns, deg, lifting_surface
from pgm3d.data.parts import Box, Ellipsoid, Mirrored, Symmetrized
from pgm3d.data.shapes import FAMILIES, ParamSampler, ShapeFamily


@FAMILIES.register("airplanes")
class Airplanes(ShapeFamily):
    """Airplanes in four styles; the nose points to ``+z`` and the wings span ``x``:

    ============  =========================================================================
    ``airliner``  long fuselage, swept tapered low wings, tail planes and fin
    ``fighter``   short fuselage, delta wings (strong sweep, tiny tip chord), fin; half of
                  them have no horizontal tail planes (tailless delta)
    ``prop``      small plane: short fuselage, straight high wings, little taper
    ``tailless``  flying wing: wide swept wings on a stubby body, no tail planes, no fin
    ============  =========================================================================

    Continuous variation: fuselage length and radius; wing span, root chord, taper, leading-edge
    sweep, dihedral, thickness and position; tail and fin sizes and sweeps.
    """

    name = "airplanes"
    part_names = ("fuselage", "wing_left", "wing_right", "tail_left", "tail_right", "fin")
    style_names = ("airliner", "fighter", "prop", "tailless")

    def generate(self, style: torch.Tensor, rng: ParamSampler):
        n = len(style)
        u = rng.uniform
        x, y, z = axis(n, 0), axis(n, 1), axis(n, 2)
        fl = u(airliner=(0.8, 0.92), fighter=(0.7, 0.85), prop=(0.55, 0.7), tailless=(0.45, 0.6))
        fr = u(airliner=(0.07, 0.1), fighter=(0.06, 0.09), prop=(0.07, 0.1), tailless=(0.1, 0.14))
        fuselage = Ellipsoid(
            torch.zeros(n, 3, dtype=torch.float64), rng.vec(fr, fr * u((1.0, 1.1)), fl)
        )

        # wings: span along +x, chord along z, thickness along y
        span = u(airliner=(0.8, 0.97), fighter=(0.4, 0.55), prop=(0.8, 0.97), tailless=(0.85, 0.97))
        chord = u(airliner=(0.3, 0.42), fighter=(0.6, 0.85), prop=(0.2, 0.28), tailless=(0.5, 0.7))
        taper = u(airliner=(0.25, 0.4), fighter=(0.05, 0.15), prop=(0.7, 1.0), tailless=(0.2, 0.35))
        sweep = deg(u(airliner=(25, 35), fighter=(40, 55), prop=(0, 5), tailless=(30, 40)))
        dihedral = deg(u(airliner=(3, 7), fighter=(-3, 0), prop=(1, 4), tailless=(0, 3)))
        wz = u(
            airliner=(-0.05, 0.1), fighter=(-0.35, -0.15), prop=(0.1, 0.25), tailless=(-0.05, 0.1)
        )
        wy = fr * u(airliner=(-0.5, -0.5), fighter=(0.0, 0.0), prop=(0.8, 0.8), tailless=(0.0, 0.0))
        wing = self._surface(
            rng,
            columns(y, z, x),
            x,
            y,
            z,
            0.0,
            wy,
            wz,
            span,
            chord,
            taper,
            sweep,
            dihedral,
            u((0.08, 0.14)),
            nominal=(0.01, 0.15, 0.45),
        )

        # horizontal tail planes near the rear of the fuselage
        t_span = u((0.25, 0.35), fighter=(0.2, 0.28), prop=(0.22, 0.3))
        t_chord = u((0.12, 0.2), fighter=(0.15, 0.22))
        t_sweep = deg(u(airliner=(25, 35), fighter=(35, 45), prop=(0, 10)))
        tz = -0.8 * fl + t_chord / 2
        tail = self._surface(
            rng,
            columns(y, z, x),
            x,
            y,
            z,
            0.0,
            fr * 0.2,
            tz,
            t_span,
            t_chord,
            u((0.4, 0.7)),
            t_sweep,
            deg(u((0, 5))),
            u((0.08, 0.12)),
            nominal=(0.005, 0.08, 0.15),
        )

        # vertical fin: span along +y, chord along z, thickness along x
        f_height = u((0.2, 0.3), fighter=(0.2, 0.28), prop=(0.15, 0.22))
        f_chord = u((0.15, 0.25))
        f_sweep = deg(u(airliner=(35, 45), fighter=(40, 50), prop=(15, 30)))
        fin = self.fin(rng, fl, fr, f_height, f_chord, u((0.4, 0.7)), f_sweep, u((0.08, 0.12)))

        s = rng.styles
        has_tail = s("airliner", "prop") | (s("fighter") & rng.bernoulli(fighter=0.5))
        has_fin = s("airliner", "fighter", "prop")
        ones = torch.ones(n, dtype=torch.bool)
        existence = torch.stack([ones, ones, ones, has_tail, has_tail, has_fin], -1)
        parts = [
            Symmetrized(fuselage),
            Mirrored(wing),
            wing,
            Mirrored(tail),
            tail,
            Symmetrized(fin),
        ]
        return parts, existence

    @classmethod
    def fin(cls, rng, length, radius, height, chord, taper, sweep, thickness) -> Box:
        """The vertical fin: span along ``+y`` from the fuselage's axis (``height`` above its
        top), root chord along ``z`` ending at 80% of the fuselage's half ``length`` behind
        the centre, thickness along ``x``."""
        n = len(length)
        x, y, z = axis(n, 0), axis(n, 1), axis(n, 2)
        return cls._surface(
            rng, columns(x, -z, y), y, x, z, 0.0, 0.0, -0.8 * length + chord / 2,
            height + radius / 2, chord, taper, sweep, 0.0 * radius, thickness,
            nominal=(0.005, 0.1, 0.12),
        )  # fmt: skip

    @staticmethod
    def _surface(
        rng,
        frame,
        span_dir,
        lift_dir,
        chord_dir,
        x0,
        y0,
        z0,
        span,
        chord,
        taper,
        sweep,
        dihedral,
        thickness,
        nominal,
    ):
        """A lifting surface whose root section is centred at ``(x0, y0, z0)``, its leading edge
        swept back by ``sweep`` and its tip raised by
        ``dihedral`` along ``lift_dir``.
        """
        root = rng.vec(x0, y0, z0)
        tip_chord = chord * taper
        # leading edge moves back (-z) by span * tan(sweep); centres sit half a chord behind it
        le_tip = (root * chord_dir).sum(-1) + chord / 2 - span * sweep.tan()
        centre_shift = (le_tip - tip_chord / 2) - (root * chord_dir).sum(-1)
        lift = span * torch.as_tensor(dihedral).tan()
        tip = (
            root
            + span[:, None] * span_dir
            + lift[:, None] * lift_dir
            + centre_shift[:, None] * chord_dir
        )
        return lifting_surface(frame, root, chord, tip, tip_chord, thickness, nominal)
