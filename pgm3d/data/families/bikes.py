"""Procedural bicycles (the thesis's third shape set, after Huang et al. 2015): a frame of tubes
whose joints follow from angles, wheels, a steered front end, cranks at any angle, handlebars
bent by style."""

from __future__ import annotations

import math

import torch

from pgm3d.data.families._geometry import axis, centred, columns
from pgm3d.data.parts import (
    Bent,
    Box,
    Frustum,
    Mirrored,
    Moved,
    Symmetrized,
    Torus,
    rotation_about,
)
from pgm3d.data.shapes import FAMILIES, ParamSampler, ShapeFamily

FLOOR = -1.0


def _tube(a, b, r, nominal, ref=(1.0, 0.0, 0.0)) -> Frustum:
    return Frustum(a, b, r, r, ref=ref, nominal=nominal)


@FAMILIES.register("bikes")
class Bikes(ShapeFamily):
    """Bicycles in four styles, side view in the ``y``-``z`` plane (front ``+z``), in metres
    (wheel radii 0.2-0.36), wheels on the floor ``y = -1``:

    ===========  ========================================================================
    ``road``     large thin wheels, steep head angle, drop bars bent downwards, a rear
                 rack a third of the time
    ``mountain`` fat tyres, slack head angle, riser bars bent upwards, short seat tube
    ``bmx``      small fat wheels, tiny frame, high bars, long seat post
    ``cruiser``  a top tube bent downwards, bars swept back, a rear rack half the time
    ===========  ========================================================================

    Each bicycle is centred along ``z``. Nonlinear variation: the frame's joints are positions
    on lines at the seat and head angles
    (sines and cosines of 65-76 degrees); the front end (fork, front wheel, stem, bars) turns
    about the steering axis by up to 0.5 rad (:class:`~pgm3d.data.parts.Moved`); the cranks
    take any angle in ``[0, 2 pi)``, a circle no linear model follows; handlebars and the
    cruiser's top tube are Barr bends (:class:`~pgm3d.data.parts.Bent`). Bicycles are
    mirror-symmetric about ``x = 0`` only up to the steering and the cranks, like real ones.
    """

    name = "bikes"
    part_names = (
        "wheel_front",
        "wheel_rear",
        "fork_left",
        "fork_right",
        "head_tube",
        "top_tube",
        "down_tube",
        "seat_tube",
        "chain_stay_left",
        "chain_stay_right",
        "seat_stay_left",
        "seat_stay_right",
        "seat_post",
        "saddle",
        "stem",
        "handlebar",
        "crank_left",
        "crank_right",
        "rack",
    )
    style_names = ("road", "mountain", "bmx", "cruiser")

    def generate(self, style: torch.Tensor, rng: ParamSampler):
        n = len(style)
        u, s = rng.uniform, rng.styles
        x, y, z = axis(n, 0), axis(n, 1), axis(n, 2)
        radius = u(road=(0.33, 0.36), mountain=(0.3, 0.34), bmx=(0.2, 0.24), cruiser=(0.32, 0.36))
        tyre = u(
            road=(0.012, 0.018), mountain=(0.03, 0.045), bmx=(0.028, 0.04), cruiser=(0.03, 0.04)
        )
        hub_y = FLOOR + radius
        rear_hub = rng.vec(
            0.0,
            hub_y,
            -u(road=(0.40, 0.44), mountain=(0.42, 0.48), bmx=(0.32, 0.37), cruiser=(0.44, 0.5)),
        )
        stay = u(road=(0.40, 0.43), mountain=(0.42, 0.46), bmx=(0.34, 0.38), cruiser=(0.44, 0.48))
        bb = rear_hub + rng.vec(0.0, -u((0.05, 0.08), bmx=(-0.02, 0.02)), stay)

        # the seat tube rises backwards at the seat angle; its length sets the frame size
        seat_angle = u(
            road=(1.25, 1.31), mountain=(1.2, 1.28), bmx=(1.2, 1.3), cruiser=(1.15, 1.22)
        )
        seat_dir = rng.vec(0.0, seat_angle.sin(), -seat_angle.cos())
        seat_len = u(road=(0.48, 0.6), mountain=(0.38, 0.48), bmx=(0.18, 0.24), cruiser=(0.42, 0.5))
        seat_top = bb + seat_len[:, None] * seat_dir

        # the head tube: at the reach in front of the bottom bracket, along the steering axis
        head_angle = u(
            road=(1.24, 1.29), mountain=(1.13, 1.2), bmx=(1.29, 1.33), cruiser=(1.13, 1.22)
        )
        steer = rng.vec(0.0, head_angle.sin(), -head_angle.cos())  # up and backwards
        head_len = u(road=(0.12, 0.18), mountain=(0.1, 0.14), bmx=(0.1, 0.13), cruiser=(0.15, 0.2))
        head_bottom = bb + rng.vec(
            0.0,
            u(road=(0.3, 0.36), mountain=(0.32, 0.4), bmx=(0.25, 0.3), cruiser=(0.3, 0.36)),
            u(road=(0.52, 0.58), mountain=(0.52, 0.6), bmx=(0.44, 0.5), cruiser=(0.52, 0.58)),
        )
        head_top = head_bottom + head_len[:, None] * steer
        head_tube = _tube(head_bottom, head_top, u((0.02, 0.025)), (0.02, 0.02, 0.15))

        # the fork: straight blades from the head tube to a hub raked forwards, wheel on the floor
        rake = u((0.03, 0.06))
        forward = rng.vec(0.0, head_angle.cos(), head_angle.sin())
        t = (head_bottom[:, 1] - hub_y + rake * head_angle.cos()) / head_angle.sin()
        front_hub = head_bottom - t[:, None] * steer + rake[:, None] * forward
        gap = tyre + u((0.015, 0.025))
        blade = _tube(
            head_bottom + gap[:, None] * x,
            front_hub + gap[:, None] * x,
            u((0.012, 0.018), mountain=(0.018, 0.024)),
            (0.015, 0.015, 0.4),
        )
        wheel_frame = columns(y, z, x)
        front_wheel = Torus(front_hub, radius - tyre, tyre, wheel_frame)
        rear_wheel = Torus(rear_hub, radius - tyre, tyre, wheel_frame)

        # stem and handlebar: a bar across x, bent by style, on a stem rising from the head tube
        stem_len = u(
            road=(0.08, 0.12), mountain=(0.05, 0.09), bmx=(0.12, 0.18), cruiser=(0.1, 0.16)
        )
        stem_rise = u(road=(0.1, 0.4), mountain=(0.2, 0.5), bmx=(0.8, 1.1), cruiser=(0.9, 1.3))
        stem_end = head_top + stem_len[:, None] * rng.vec(0.0, stem_rise.sin(), stem_rise.cos())
        stem = _tube(head_top, stem_end, u((0.015, 0.02)), (0.015, 0.015, 0.1))
        bar_half = u(road=(0.2, 0.23), mountain=(0.3, 0.38), bmx=(0.26, 0.32), cruiser=(0.28, 0.34))
        bar_bend = u(road=(3.0, 5.0), mountain=(0.5, 1.5), bmx=(1.0, 2.0), cruiser=(2.5, 4.5))
        bar_dir = torch.where(
            s("road")[:, None], -y, torch.where(s("cruiser")[:, None], -z, y)
        )  # drops bend down, cruisers' sweep back, others rise
        bar_r = u((0.011, 0.014))
        bar = Bent(
            Symmetrized(
                _tube(
                    stem_end - bar_half[:, None] * x,
                    stem_end + bar_half[:, None] * x,
                    bar_r,
                    (0.012, 0.012, 0.5),
                    ref=(0.0, 1.0, 0.0),
                )
            ),
            stem_end,
            x,
            bar_dir,
            bar_bend,
        )

        # steering: the front end turns about the steering axis through the head tube
        turn = rotation_about(steer, u((-0.5, 0.5)))

        def steered(part):
            return Moved(part, turn, head_bottom)

        # frame tubes
        top_start = seat_top - u((0.03, 0.08))[:, None] * seat_dir
        top_end = head_top - 0.02 * steer
        top_axis = top_end - top_start
        top_length = top_axis.norm(dim=-1)
        top_axis = top_axis / top_length[:, None]
        down_normal = torch.linalg.cross(x, top_axis)  # in the y-z plane, below the tube
        top_tube = Bent(
            _tube(top_start, top_end, u((0.014, 0.02)), (0.015, 0.015, 0.55)),
            top_start,
            top_axis,
            down_normal,
            u((0.0, 0.0), cruiser=(0.8, 1.8)),
        )
        down_tube = _tube(bb, head_bottom + 0.02 * steer, u((0.016, 0.024)), (0.02, 0.02, 0.6))
        seat_tube = _tube(bb, seat_top, u((0.014, 0.018)), (0.015, 0.015, 0.5))
        sx = u((0.04, 0.06))
        chain_stay = _tube(
            bb + sx[:, None] * x,
            rear_hub + (sx + 0.02)[:, None] * x,
            u((0.008, 0.012)),
            (0.01, 0.01, 0.42),
        )
        seat_stay = _tube(
            seat_top - 0.03 * seat_dir + sx[:, None] * x,
            rear_hub + (sx + 0.02)[:, None] * x,
            u((0.007, 0.01)),
            (0.01, 0.01, 0.5),
        )
        post_top = (
            seat_top
            + u(road=(0.1, 0.2), mountain=(0.1, 0.2), bmx=(0.15, 0.3), cruiser=(0.08, 0.16))[
                :, None
            ]
            * seat_dir
        )
        post = _tube(seat_top, post_top, u((0.012, 0.014)), (0.013, 0.013, 0.15))
        saddle = Box.cuboid(
            post_top + rng.vec(0.0, 0.025, 0.03),
            rng.vec(u((0.06, 0.08), cruiser=(0.1, 0.13)), u((0.02, 0.03)), u((0.11, 0.14))),
            nominal=(0.07, 0.025, 0.12),
        )

        # cranks at any angle phi, the left one opposite (phi + pi)
        phi = u((0.0, 2 * math.pi))
        crank_len = u((0.165, 0.175), bmx=(0.17, 0.18))
        cx = u((0.07, 0.09))

        def crank(angle):
            tip = bb + cx[:, None] * x + crank_len[:, None] * rng.vec(0.0, angle.sin(), angle.cos())
            return _tube(
                bb + cx[:, None] * x, tip, torch.full_like(cx, 0.012), (0.012, 0.012, 0.17)
            )

        rack = Box.cuboid(
            rear_hub + rng.vec(0.0, radius + u((0.06, 0.1)), u((0.0, 0.05))),
            rng.vec(u((0.06, 0.08)), torch.full_like(cx, 0.008), u((0.15, 0.2))),
            nominal=(0.07, 0.008, 0.17),
        )

        ones = torch.ones(n, dtype=torch.bool)
        has_rack = rng.bernoulli(road=1 / 3, cruiser=0.5)
        existence = torch.stack([*[ones] * 18, has_rack], -1)
        parts = [
            steered(Symmetrized(front_wheel)),
            Symmetrized(rear_wheel),
            steered(Mirrored(blade)),
            steered(blade),
            Symmetrized(head_tube),
            Symmetrized(top_tube),
            Symmetrized(down_tube),
            Symmetrized(seat_tube),
            Mirrored(chain_stay),
            chain_stay,
            Mirrored(seat_stay),
            seat_stay,
            Symmetrized(post),
            Symmetrized(saddle),
            steered(Symmetrized(stem)),
            steered(bar),
            Mirrored(crank(phi + math.pi)),
            crank(phi),
            Symmetrized(rack),
        ]
        return centred(parts, existence), existence
