r"""ShapeVAE (Nash & Williams 2017, "The shape variational autoencoder: a deep generative model
of part-segmented 3D objects"; thesis §3.4): a joint model of part existences ``e``, surface
points and surface normals ``x`` of shapes with dense point correspondences,

.. math::
    p(e)\,p(z)\,p(x \mid z, e), \qquad p(z) = \mathcal{N}(0, I), \qquad
    p(x \mid z, e) = \prod_{p:\,e_p = 1} \mathcal{N}\big(x_p;\ \mu_p(z, e),
        \operatorname{diag}(\operatorname{softplus}(s_p(z, e)) + \sigma^2_{\min})\big),

with ``p(e)`` the empirical distribution of existence patterns
(:class:`~pgm3d.models.existence.ExistenceDistribution`). The decoder maps ``z`` and ``e``
through separate 256-unit layers, concatenates them (512), maps to a representation ``u_p``
per part (256 by default), then per part to a 512-unit pre-parameter layer and the part's
Gaussian means and variances. The encoder mirrors it: each present, observed part goes through
512 units to ``u_p``; an absent or entirely unobserved part contributes a learned bias ``b_p``;
the concatenated ``u`` goes through 512 and 256 units to ``q(z | x, e)``. The thesis trained with
KL weight ``α`` (``kl_weight`` of the objectives), ``σ²_min = 1e-3`` and Adam at 1e-4.

**Data vectors.** A row is ``[x_1, ..., x_P, e]``: every part's points (``[x y z]`` per point,
or ``[x y z nx ny nz]`` with normals), then the ``K`` existence flags as 0/1. Build them with
:meth:`ShapeVAE.data` from a :class:`~pgm3d.data.ShapeSet`. The observation site ``"x"`` masks
the entries of absent parts and the existence columns (the existences are observed by the site
``"e"``); missing entries (``mask`` False) are marginalised, so the completion back ends impute
dropped parts, and masking every normal infers normals from points.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n
from pgm3d.models.part_rows import PartRows

__all__ = ["ShapeVAE"]


class ShapeVAE(PartRows, Model, PyroModule):
    """The ShapeVAE model/guide pair.

    :param part_points: points per part ``(m_1, ..., m_K)``.
    :param torch.Tensor existence: ``(N, K)`` bool existences of the training shapes, which define
        ``p(e)``.
    :param int latent_dim: size of ``z`` (the thesis compared 8 and 64, among others).
    :param bool normals: rows hold normals as well as points (6 numbers per point, else 3).
    :param int part_dim: size of each part representation ``u_p`` (thesis: 128-256).
    :param int hidden: width of the joint and per-part pre-parameter layers (512).
    :param int embed: width of the separate ``z`` and ``e`` layers (256).
    :param float min_variance: ``σ²_min`` added to every variance.
    :param float existence_smoothing: Dirichlet pseudo-count of :class:`ExistenceDistribution`.
    :param activation: hidden activation (a ``torch.nn`` module class).
    """

    def __init__(
        self,
        part_points,
        existence: torch.Tensor,
        latent_dim: int = 64,
        *,
        normals: bool = True,
        part_dim: int = 256,
        hidden: int = 512,
        embed: int = 256,
        min_variance: float = 1e-3,
        existence_smoothing: float = 0.0,
        activation=nn.ReLU,
    ):
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if min_variance <= 0:
            raise ValueError(f"min_variance must be > 0, got {min_variance}")
        self.init_layout(part_points, existence, normals, existence_smoothing)
        self.latent_dim, self.min_variance = latent_dim, min_variance
        act = activation
        # decoder: z, e -> 256 each -> 512 -> u_p -> 512 -> (mean, variance) per part
        self.dec_z = nn.Sequential(nn.Linear(latent_dim, embed), act())
        self.dec_e = nn.Sequential(nn.Linear(self.num_parts, embed), act())
        self.dec_joint = nn.Sequential(nn.Linear(2 * embed, hidden), act())
        self.dec_parts = nn.ModuleList(
            nn.Sequential(
                nn.Linear(hidden, part_dim),
                act(),
                nn.Linear(part_dim, hidden),
                act(),
                nn.Linear(hidden, 2 * size),
            )
            for size in self.part_sizes
        )
        # encoder: part (with its mask) -> 512 -> u_p, or the bias b_p; concat -> 512 -> 256 -> z
        self.enc_parts = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * size, hidden), act(), nn.Linear(hidden, part_dim), act())
            for size in self.part_sizes
        )
        self.absent_bias = nn.Parameter(torch.zeros(self.num_parts, part_dim))
        self.enc_joint = nn.Sequential(
            nn.Linear(self.num_parts * part_dim, hidden),
            act(),
            nn.Linear(hidden, embed),
            act(),
            nn.Linear(embed, 2 * latent_dim),
        )

    @classmethod
    def from_data(cls, data, *, latent_dim=None, hidden=None, part_dim=None, **_) -> ShapeVAE:
        """Sized for a ShapeSet's parts and existences (:meth:`from_shapes`): ``latent_dim``
        8, ``part_dim`` 256, the thesis's joint width unless ``hidden`` sets another."""
        kwargs = {"hidden": hidden} if hidden not in (None, 128) else {}
        return cls.from_shapes(data, latent_dim or 8, part_dim=part_dim or 256, **kwargs)

    def decode(self, z: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and standard deviations ``(..., D)`` of the point entries given ``z (..., K_z)``
        and existences ``e (..., K)``."""
        e = e.to(z.dtype).expand(*z.shape[:-1], self.num_parts)
        h = self.dec_joint(torch.cat([self.dec_z(z), self.dec_e(e)], -1))
        locs, scales = [], []
        for net, size in zip(self.dec_parts, self.part_sizes, strict=True):
            out = net(h)
            locs.append(out[..., :size])
            scales.append((nn.functional.softplus(out[..., size:]) + self.min_variance).sqrt())
        return torch.cat(locs, -1), torch.cat(scales, -1)

    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self.check_rows(x, mask)
        _, e = self.split(x)
        zero = x.new_zeros(self.latent_dim)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("e", self.existence_distribution(), obs=e)
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            loc, scale = self.decode(z, e)
            # the site covers whole rows; existence columns are scored by "e", not here
            loc = torch.cat([loc, e.expand(*loc.shape[:-1], -1)], -1)
            scale = torch.cat([scale, torch.ones_like(scale[..., : self.num_parts])], -1)
            keep = torch.cat([self.entry_mask(e), torch.zeros_like(e, dtype=torch.bool)], -1)
            if mask is not None:
                keep = keep & mask
            px = dist.Normal(loc, scale, validate_args=False).mask(keep)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))
        return z

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dist.Independent:
        """``q(z | x_v, e)`` with batch ``(B,)`` and event ``(K_z,)``."""
        points, e = self.split(x)
        observed = self.entry_mask(e)
        if mask is not None:
            observed = observed & mask[..., : self.point_dim]
        clean = torch.where(observed, points, torch.zeros_like(points))
        m = observed.to(x.dtype)
        us, start = [], 0
        for k, (net, size) in enumerate(zip(self.enc_parts, self.part_sizes, strict=True)):
            part, pm = clean[..., start : start + size], m[..., start : start + size]
            seen = pm.any(-1, keepdim=True)  # absent or wholly unobserved parts use b_p
            us.append(torch.where(seen, net(torch.cat([part, pm], -1)), self.absent_bias[k]))
            start += size
        h = self.enc_joint(torch.cat(us, -1))
        loc, log_scale = h[..., : self.latent_dim], h[..., self.latent_dim :]
        return dist.Normal(loc, log_scale.clamp(-12, 6).exp()).to_event(1)

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", self.encode(x, mask))

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        return_latents: bool = False,
    ):
        """``n`` rows ``[x, e]`` from ``p(e) p(z) p(x | z, e)``; absent parts' entries are 0.
        With ``mean=True`` the points are the decoder means ``E[x | z, e]`` (shapes without the
        per-coordinate observation noise, as usually shown)."""
        check_n(n)
        p = next(self.parameters())
        with torch.no_grad():
            e = self.existence_distribution().sample((n,), generator=generator).to(p)
            z = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)
            loc, scale = self.decode(z, e)
            noise = torch.randn(loc.shape, generator=generator, dtype=p.dtype, device=p.device)
            x = torch.where(self.entry_mask(e), loc if mean else loc + scale * noise, 0.0)
        x = torch.cat([x, e], -1)
        return (x, z) if return_latents else x
