r"""The Variational Shape Learner (Liu, Ororbia & Giles 2017, "Learning a hierarchical
latent-variable model of 3D shapes").

A global latent :math:`z_0` and :math:`m` local latents chained by skip connections:

.. math::
    p(z_0) = \mathcal{N}(0, I), \quad
    p(z_i \mid z_{i-1}, z_0) = \mathcal{N}\big(\mu^p_i, \operatorname{diag}\sigma^{p\,2}_i\big),
    \quad
    p(x \mid z_{0:m}) = \prod_v \operatorname{Bernoulli}\big(x_v;
    \operatorname{sigmoid} g_\theta(z_0, \dots, z_m)_v\big),

    q(z_0 \mid x) = \mathcal{N}(\mu_0(h), \sigma_0(h)^2), \quad
    q(z_i \mid z_{i-1}, z_0, x) =
    \mathcal{N}\big(\mu_i(a(z_0), h, b(z_{i-1})), \sigma_i(\cdot)^2\big),

with :math:`h` the 100-unit output of a 3D convolutional encoder of :math:`x` (kernels 6, 5, 4;
strides 2, 2, 1; channels 32, 64, 128; then 256 and 100 units), :math:`a` and :math:`b` the two
100-unit skip layers from :math:`z_0` and from the previous local latent, and :math:`g_\theta` a
de-convolutional decoder (all latents → 100 (m + 1) → 1024 = 128 × 2³ → 64 × 5³ → 32 × 13³ →
1 × 30³). As in the authors' code, the encoder trunk and the local posterior layers are shared
by all local latents (the first local latent has no previous one, so it has its own input
layer), and the defaults are theirs: :math:`z_0` of 20 dimensions, 5 local latents of 10.

Differences, named: the prior :math:`p(z_i \mid z_{i-1}, z_0)` is learned with the same skip
structure as the posterior (the authors' code scored every latent against
:math:`\mathcal{N}(0, I)`; ``prior="standard"`` does so too); the decoder reads samples of
the latents, as a VAE's ELBO requires (their code fed it the posterior means);
``mask_channel=True`` adds the observation mask as a second input channel so the guide can tell
a missing voxel from an empty one (the paper's encoder reads one channel, here zero-filled
where missing).

The seed's objective, binary cross-entropy averaged over voxels plus
:math:`\beta = 10^{-3}` times the KL averaged over the :math:`m + 1` latents, is the ELBO with KL
weight :math:`\alpha = \beta R^3 / (m + 1)` (4.5 at 30³ with 5 local latents) up to a constant
factor: :meth:`VSL.kl_weight_for` gives it for ``fit(..., kl_weight=)``.

Rows are flattened grids: ``x`` of shape ``(B, R³)`` with 0/1 entries (:meth:`VSL.rows`).
"""

from __future__ import annotations

import itertools

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from pgm3d._validation import check_inputs
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n, grid_rows

__all__ = ["VSL"]

#: second de-convolution's output padding per resolution (13³ → 30³, or 14³ → 32³)
_RESOLUTIONS = {30: 0, 32: 1}


#: log standard deviations are squashed into (MID - HALF, MID + HALF) = (-12, 6)
_LOG_SCALE_MID, _LOG_SCALE_HALF = -3.0, 9.0


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


def _gaussian(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    loc, log_scale = params.chunk(2, -1)
    # exp of a log standard deviation, as the seed, kept in (-12, 6) so a bad step cannot
    # overflow: smoothly (a tanh), since a hard clamp has no gradient at its bounds and a scale
    # that reached one could never leave it (a learned prior stuck at e^-12 gave KLs of 1e13)
    return loc, (
        _LOG_SCALE_MID
        + _LOG_SCALE_HALF * torch.tanh((log_scale - _LOG_SCALE_MID) / _LOG_SCALE_HALF)
    ).exp()


class VSL(Model, PyroModule):
    r"""The Variational Shape Learner as a Pyro model/guide pair over flattened voxel grids.

    :param int resolution: ``R``, 30 (the paper's) or 32.
    :param int global_dim: size of :math:`z_0` (20).
    :param int local_dim: size of each local latent (10).
    :param int num_local: number of local latents ``m`` (5).
    :param int hidden: width of the skip and posterior layers (100).
    :param bool mask_channel: give the encoder the observation mask as a second channel.
    :param str prior: ``"learned"``: :math:`p(z_i \mid z_{i-1}, z_0)` with the skip structure
        (the paper's equations); ``"standard"``: :math:`\mathcal{N}(0, I)` for every latent (the
        authors' code).
    :param str init: ``"xavier"``: Glorot-uniform weights and zero biases, the authors'
        initialisation (default); ``"torch"``: PyTorch's defaults. At the start the encoder's
        posterior means vary across sparse grids by ~1e-3 (PyTorch's) or ~6e-3 (Glorot) against
        a posterior scale of 1, so the decoder first learns the mean shape and the latents sit
        at the edge of collapse; measured on a mesh folder (``scripts/vsl_collapse.py``, 200
        steps, 3 seeds), PyTorch's initialisation left 2 of 3 runs fully collapsed (KL <= 0.04
        nats per latent, features at chance), Glorot's none.
    """

    def __init__(
        self,
        resolution: int = 30,
        global_dim: int = 20,
        local_dim: int = 10,
        num_local: int = 5,
        *,
        hidden: int = 100,
        mask_channel: bool = False,
        prior: str = "learned",
        init: str = "xavier",
    ):
        super().__init__()
        if prior not in ("learned", "standard"):
            raise ValueError(f"prior must be 'learned' or 'standard', got {prior!r}")
        if init not in ("xavier", "torch"):
            raise ValueError(f"init must be 'xavier' or 'torch', got {init!r}")
        self.prior_kind, self.init = prior, init
        if resolution not in _RESOLUTIONS:
            raise ValueError(f"resolution must be 30 or 32, got {resolution}")
        if min(global_dim, local_dim, num_local) < 1:
            raise ValueError("global_dim, local_dim and num_local must be >= 1")
        self.resolution, self.data_dim = resolution, resolution**3
        self.global_dim, self.local_dim, self.num_local = global_dim, local_dim, num_local
        self.mask_channel = mask_channel
        H, L = hidden, local_dim
        # encoder trunk x -> h (shared by every latent, as in the seed)
        self.enc_conv = nn.Sequential(
            nn.Conv3d(2 if mask_channel else 1, 32, 6, stride=2),
            nn.ReLU(),
            nn.Conv3d(32, 64, 5, stride=2),
            nn.ReLU(),
            nn.Conv3d(64, 128, 4, stride=1),
            nn.ReLU(),
        )
        self.enc_fc = _mlp([128 * 8, 256, H])
        self.q_z0 = nn.Linear(H, 2 * global_dim)
        # guide skip paths z_0 -> a, z_{i-1} -> b, and [a, h(, b)] -> q(z_i)
        self.q_from_global = _mlp([global_dim, H, H])
        self.q_from_prev = _mlp([L, H, H])
        self.q_first = nn.Sequential(_mlp([2 * H, H, H]), nn.Linear(H, 2 * L))
        self.q_rest = nn.Sequential(_mlp([3 * H, H, H]), nn.Linear(H, 2 * L))
        # prior skip paths: p(z_1 | z_0), p(z_i | z_{i-1}, z_0)
        self.p_from_global = _mlp([global_dim, H, H])
        self.p_from_prev = _mlp([L, H, H])
        self.p_first = nn.Linear(H, 2 * L)
        self.p_rest = nn.Linear(2 * H, 2 * L)
        # decoder: all latents -> 100 (m + 1) -> 1024 -> 128 x 2^3 -> ... -> 1 x R^3 logits
        self.dec_fc = _mlp([global_dim + num_local * L, H * (num_local + 1), 128 * 8])
        self.dec_conv = nn.Sequential(
            nn.ConvTranspose3d(128, 64, 4, stride=1),
            nn.ReLU(),
            nn.ConvTranspose3d(64, 32, 5, stride=2, output_padding=_RESOLUTIONS[resolution]),
            nn.ReLU(),
            nn.ConvTranspose3d(32, 1, 6, stride=2),
        )
        if init == "xavier":
            for layer in self.modules():
                if isinstance(layer, nn.Linear | nn.Conv3d | nn.ConvTranspose3d):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)

    data_kind = "voxels"

    @property
    def row_shape(self) -> tuple[int, ...]:
        """A row is a flattened occupancy grid of this shape."""
        return (1, self.resolution, self.resolution, self.resolution)

    @classmethod
    def from_data(cls, data, *, latent_dim=None, hidden=None, **_) -> VSL:
        """Sized for a VoxelSet's resolution with the seed's defaults: ``z_0`` of
        ``latent_dim`` (20), skip layers of ``hidden`` (100) units."""
        return cls(data.resolution, latent_dim or 20, hidden=hidden or 100)

    @staticmethod
    def sizes_for(num_classes: int) -> dict:
        """The seed's latent sizes for a ``num_classes``-way classification (§4.1.2): up to 10
        classes, :math:`z_0` of 10 and 5 local latents of 5; above, :math:`z_0` of 20 and 5 of 10
        (the 40-way setting, also the ModelNet40 generation setting)."""
        if num_classes <= 10:
            return {"global_dim": 10, "local_dim": 5, "num_local": 5}
        return {"global_dim": 20, "local_dim": 10, "num_local": 5}

    def default_kl_weight(self) -> float:
        """The KL weight equal to the seed's loss with :math:`\\beta = 10^{-3}`."""
        return self.kl_weight_for(1e-3, self.resolution, self.num_local)

    @property
    def latent_sites(self) -> list[str]:
        """``["z0", "z1", ..., "zm"]``."""
        return [f"z{i}" for i in range(self.num_local + 1)]

    @staticmethod
    def kl_weight_for(beta: float = 1e-3, resolution: int = 30, num_local: int = 5) -> float:
        """The ELBO's KL weight equivalent to the seed's loss (mean voxel cross-entropy plus
        ``beta`` times the mean KL over latents): ``beta * R^3 / (m + 1)``."""
        return beta * resolution**3 / (num_local + 1)

    #: flatten ``(N, R, R, R)`` grids to ``(N, R³)`` rows of 0/1
    rows = staticmethod(grid_rows)

    # -- networks ------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``h (B, 100)`` from rows ``x (B, R³)``; missing voxels read as empty."""
        R = self.resolution
        grid = clean_missing(x, mask).reshape(-1, 1, R, R, R)
        if self.mask_channel:
            m = torch.ones_like(grid) if mask is None else mask.to(x.dtype).reshape(grid.shape)
            grid = torch.cat([grid, m], 1)
        return self.enc_fc(self.enc_conv(grid).flatten(1))

    def prior(self, i: int, z0: torch.Tensor, prev: torch.Tensor | None):
        """Location and scale of :math:`p(z_i \\mid z_{i-1}, z_0)`, ``i >= 1``."""
        if self.prior_kind == "standard":
            zero = z0.new_zeros(*z0.shape[:-1], self.local_dim)
            return zero, torch.ones_like(zero)
        a = self.p_from_global(z0)
        if i == 1:
            return _gaussian(self.p_first(a))
        return _gaussian(self.p_rest(torch.cat([a, self.p_from_prev(prev)], -1)))

    def posterior(self, i: int, h, z0, prev):
        """Location and scale of :math:`q(z_i \\mid z_{i-1}, z_0, x)`; ``i = 0`` reads ``h``
        only."""
        if i == 0:
            return _gaussian(self.q_z0(h))
        a = self.q_from_global(z0)
        h = h.expand(*a.shape[:-1], h.shape[-1])  # z0 may carry leading particle dims
        if i == 1:
            return _gaussian(self.q_first(torch.cat([a, h], -1)))
        return _gaussian(self.q_rest(torch.cat([a, h, self.q_from_prev(prev)], -1)))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Voxel logits ``(..., R³)`` from the concatenated latents ``(..., G + m L)``."""
        batch = z.shape[:-1]
        out = self.dec_conv(self.dec_fc(z.reshape(-1, z.shape[-1])).reshape(-1, 128, 2, 2, 2))
        return out.reshape(*batch, self.data_dim)

    # -- Pyro ----------------------------------------------------------------------------------
    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self, x, mask)
        zero = x.new_zeros(self.global_dim)
        with pyro.plate("data", x.shape[0]):
            z0 = pyro.sample("z0", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            zs, prev = [z0], None
            for i in range(1, self.num_local + 1):
                loc, scale = self.prior(i, z0, prev)
                prev = pyro.sample(f"z{i}", dist.Normal(loc, scale).to_event(1))
                zs.append(prev)
            px = dist.Bernoulli(logits=self.decode_logits(torch.cat(zs, -1)), validate_args=False)
            if mask is not None:
                px = px.mask(mask)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))
        return z0

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.encode(x, mask)
        with pyro.plate("data", x.shape[0]):
            z0 = prev = None
            for i in range(self.num_local + 1):
                loc, scale = self.posterior(i, h, z0, prev)
                prev = pyro.sample(f"z{i}", dist.Normal(loc, scale).to_event(1))
                z0 = prev if i == 0 else z0
        return z0

    # -- uses ----------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenated posterior means of :math:`z_0, \\dots, z_m` ``(B, G + m L)``, the
        features of the seed's shape classification (each local mean given the means before
        it)."""
        h = self.encode(x, mask)
        z0 = prev = None
        means = []
        for i in range(self.num_local + 1):
            prev, _ = self.posterior(i, h, z0, prev)
            z0 = prev if i == 0 else z0
            means.append(prev)
        return torch.cat(means, -1)

    @torch.no_grad()
    def kl_per_latent(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        r""":math:`\mathrm{KL}(q(z_i \mid \cdot, x) \,\|\, p(z_i \mid \cdot))` of each latent
        ``(m + 1,)``, averaged over rows, with one draw of the parents from the guide: the
        nats each latent carries. All near zero means the posterior has collapsed to the prior
        and the features carry nothing the decoder uses."""
        h = self.encode(x, mask)
        z0 = prev = None
        kls = []
        for i in range(self.num_local + 1):
            loc, scale = self.posterior(i, h, z0, prev)
            if i == 0:
                ploc, pscale = torch.zeros_like(loc), torch.ones_like(scale)
            else:
                ploc, pscale = self.prior(i, z0, prev)
            q = torch.distributions.Normal(loc, scale)
            p = torch.distributions.Normal(ploc, pscale)
            kls.append(torch.distributions.kl_divergence(q, p).sum(-1).mean())
            prev = q.sample()
            z0 = prev if i == 0 else z0
        return torch.stack(kls)

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """:meth:`embed` in batches: the features of the seed's shape classification."""
        return torch.cat([self.embed(rows) for rows in x.split(batch_size)])

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        return_latents: bool = False,
    ):
        """``n`` grids ``(n, R, R, R)`` from the prior: Bernoulli draws, or the occupancy
        probabilities with ``mean=True``; with ``return_latents`` also the concatenated
        latents ``(n, G + m L)``."""
        check_n(n)
        p = next(self.parameters())
        z0 = torch.randn(n, self.global_dim, generator=generator, dtype=p.dtype, device=p.device)
        zs, prev = [z0], None
        for i in range(1, self.num_local + 1):
            loc, scale = self.prior(i, z0, prev)
            eps = torch.randn(loc.shape, generator=generator, dtype=p.dtype, device=p.device)
            prev = loc + scale * eps
            zs.append(prev)
        z = torch.cat(zs, -1)
        grids = self.grids(z, mean=mean, generator=generator)
        return (grids, z) if return_latents else grids

    @torch.no_grad()
    def grids(self, z: torch.Tensor, *, mean: bool = True, generator=None) -> torch.Tensor:
        """Decode concatenated latents ``(n, G + m L)`` to grids ``(n, R, R, R)``."""
        probs = torch.sigmoid(self.decode_logits(z))
        if not mean:
            probs = torch.bernoulli(probs, generator=generator)
        R = self.resolution
        return probs.reshape(-1, R, R, R)
