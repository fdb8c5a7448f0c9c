r"""The sequential volumetric generative model of Rezende et al. 2016 ("Unsupervised learning of
3D structure from images", supplement §A.2–A.3), a DRAW-like model of voxel grids.

Generative model, :math:`T` steps from the state :math:`s_0 = 0` and an empty canvas:

.. math::
    z_t \sim \mathcal{N}(0, I), \qquad
    s_t = f_s(s_{t-1}, z_t, e(c)), \qquad
    v_t = v_{t-1} + \mathrm{VST}\big(f_w(s_t), A_w(s_t)\big)^{-1}, \qquad
    x \sim \prod_v \mathrm{Bernoulli}\big(\sigma(b + v_T)_v\big),

with :math:`f_s` an LSTM cell, :math:`f_w` a linear map from the state to a ``patch³`` volume
written into the ``R³`` canvas through a volumetric spatial transformer at the affine map
:math:`A_w(s_t)` (:mod:`pgm3d.models.spatial`; the separable kernels of §A.3 by default),
:math:`b` a learned background and :math:`e(c)` the embedded context — nothing, a class label or
a 2D view of the volume. Posterior, eqs. 1–2, autoregressive in the :math:`z_t`:

.. math::
    r_t = f_r\big(\mathrm{VST}(x, A_r(s_{t-1}))\big), \qquad
    q(z_t \mid z_{<t}, x, c) = \mathcal{N}\big(\mu(r_t, s_{t-1}, e(c)),
        \sigma(r_t, s_{t-1}, e(c))^2\big),

the read :math:`f_r` built like the write (a glimpse at an affine map from the state, then one
layer), and the states :math:`s_t` computed by **the same** transition module :math:`f_s` as in
the model (``self.transition``, one module, so the guide's states are the model's by
construction). Loss eq. 3 is the negative ELBO, so every pgm3d objective trains it (``elbo``,
``iwae``, ``dreg``, ``vimco``...), :func:`~pgm3d.inference.log_likelihood` bounds it and
:func:`~pgm3d.inference.complete` completes it (pseudo-Gibbs is §A.10's kernel, eq. 4).

At this scale, named: the canvas is 16³–32³ (the paper's Primitives and MNIST3D were 30³ or
more); the context is embedded once and fed to every step (the paper reads it with attention
each step); the write is linear (DRAW's), the state transition an LSTM cell on vectors.

Rows are flattened grids ``(B, R³)`` of 0/1; a missing voxel (``mask`` False) is read as empty
by the guide and left out of the likelihood.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule
from torch import nn

from pgm3d._validation import check_inputs
from pgm3d.contract import ContractError
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n, grid_rows
from pgm3d.models.spatial import AffineHead, invert_theta, separable_transform, spatial_transform

__all__ = ["SequentialVolumeModel"]

_CONTEXTS = (None, "class", "view")


def _flat(t: torch.Tensor, lead: torch.Size) -> torch.Tensor:
    """``t`` broadcast to leading dims ``lead`` and flattened to ``(prod(lead), *event)``."""
    return t.expand(*lead, t.shape[-1]).reshape(-1, t.shape[-1])


class _ViewEncoder(nn.Module):
    """A 2D view ``(B, V, V)`` to a context vector: two strided convolutions and a layer."""

    def __init__(self, size: int, out: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.fc = nn.Linear(32 * (size // 4) ** 2, out)

    def forward(self, view: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(self.conv(view.unsqueeze(1)).flatten(1)))


class SequentialVolumeModel(Model, PyroModule):
    """Rezende et al.'s sequential model of ``resolution³`` voxel grids.

    ``model(x, mask=None, c=None)`` observes the site ``"x"`` (``(B, R³)`` rows of 0/1) in the
    plate ``"data"``, with latent sites ``"z1"`` … ``"zT"``.

    :param int resolution: ``R``, the canvas's size per axis.
    :param int steps: ``T``, the number of latents and writes.
    :param int latent_dim: size of each :math:`z_t`.
    :param int hidden: size of the recurrent state.
    :param int patch: size per axis of each written (and read) patch.
    :param str context: ``None``, ``"class"`` (``c`` holds ``(B,)`` class indices) or
        ``"view"`` (``c`` holds ``(B, V, V)`` images).
    :param int num_classes: classes, for ``context="class"``.
    :param int view_size: ``V`` (a multiple of 4), for ``context="view"``.
    :param str transform: ``"separable"``: axis-aligned maps through §A.3's separable kernels;
        ``"affine"``: any affine map (rotations too) through ``affine_grid``/``grid_sample``.
    """

    pgm3d_contract = {"obs": "x", "plate": "data", "data_arg": "x", "context": ("c",)}
    data_kind = "voxels"

    def __init__(
        self,
        resolution: int = 16,
        steps: int = 4,
        latent_dim: int = 8,
        hidden: int = 128,
        patch: int = 8,
        *,
        context: str | None = None,
        num_classes: int = 0,
        view_size: int = 16,
        transform: str = "separable",
    ):
        super().__init__()
        for name, v in (("resolution", resolution), ("steps", steps), ("latent_dim", latent_dim),
                        ("hidden", hidden), ("patch", patch)):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if context not in _CONTEXTS:
            raise ValueError(f"context must be None, 'class' or 'view', got {context!r}")
        if context == "class" and num_classes < 2:
            raise ValueError(f"context='class' needs num_classes >= 2, got {num_classes}")
        if context == "view" and (view_size < 4 or view_size % 4):
            raise ValueError(f"view_size must be a multiple of 4, got {view_size}")
        if transform not in ("separable", "affine"):
            raise ValueError(f"transform must be 'separable' or 'affine', got {transform!r}")
        self.resolution, self.data_dim = resolution, resolution**3
        self.steps, self.latent_dim, self.hidden, self.patch = steps, latent_dim, hidden, patch
        self.context, self.num_classes, self.view_size = context, num_classes, view_size
        self.transform = transform
        E = 0 if context is None else 32
        self.context_dim = E
        if context == "class":
            self.embed_context = nn.Embedding(num_classes, E)
        elif context == "view":
            self.embed_context = _ViewEncoder(view_size, E)
        full = transform == "affine"
        # the state transition f_s, shared by the model and the guide (eqs. 1-2)
        self.transition = nn.LSTMCell(latent_dim + E, hidden)
        # write: f_w (a linear patch) at A_w(s_t); the canvas starts at a learned background
        self.write_patch = nn.Linear(hidden, patch**3)
        self.write_where = AffineHead(hidden, 3, full=full, init_scale=1.0)
        self.background = nn.Parameter(torch.full((1,), -2.0))
        # read: f_r, a glimpse at A_r(s_{t-1}) and one layer; then q(z_t | r_t, s_{t-1}, c)
        self.read_where = AffineHead(hidden, 3, full=full, init_scale=1.0)
        self.read_features = nn.Sequential(nn.Linear(patch**3, hidden), nn.ReLU())
        self.posterior = nn.Linear(2 * hidden + E, 2 * latent_dim)

    @property
    def latent_sites(self) -> list[str]:
        """``["z1", ..., "zT"]``."""
        return [f"z{t + 1}" for t in range(self.steps)]

    @property
    def row_shape(self) -> tuple[int, ...]:
        """A row is a flattened occupancy grid of this shape."""
        return (1, self.resolution, self.resolution, self.resolution)

    @classmethod
    def from_data(cls, data, *, latent_dim=None, hidden=None, **_) -> SequentialVolumeModel:
        """Sized for a VoxelSet's resolution: 4 steps of ``latent_dim`` (8), a state of
        ``hidden`` (128) units."""
        return cls(data.resolution, latent_dim=latent_dim or 8, hidden=hidden or 128)

    # -- networks ------------------------------------------------------------------------------
    def _embed(self, c, batch: int) -> torch.Tensor | None:
        if self.context is None:
            if c is not None:
                raise ValueError("this model has no context (context=None): pass no c")
            return None
        if c is None:
            raise ContractError(
                f"this model is conditioned on a {self.context}: pass context={{'c': c}} (fit, "
                "log_likelihood, complete) or c=... (model, sample)"
            )
        c = torch.as_tensor(c)
        if self.context == "class":
            if c.shape != (batch,):
                raise ValueError(f"c must hold {batch} class indices, got shape {tuple(c.shape)}")
            labels = c.long()
            if bool(((labels < 0) | (labels >= self.num_classes) | (labels != c)).any()):
                raise ValueError(f"c must hold class indices in 0..{self.num_classes - 1}")
            return self.embed_context(labels.to(self.background.device))
        V = self.view_size
        if c.shape != (batch, V, V):
            raise ValueError(f"c must be ({batch}, {V}, {V}) views, got {tuple(c.shape)}")
        return self.embed_context(c.to(self.background))

    def step(self, state, z: torch.Tensor, e: torch.Tensor | None):
        """:math:`s_t = f_s(s_{t-1}, z_t, e)` for any leading dims (particles, rows).

        :param state: ``(h, cell)``, each ``(*lead, hidden)`` (broadcastable to ``z``'s).
        """
        h, cell = state
        lead = torch.broadcast_shapes(z.shape[:-1], h.shape[:-1])
        inp = z if e is None else torch.cat([z, e.expand(*z.shape[:-1], e.shape[-1])], -1)
        h, cell = self.transition(_flat(inp, lead), (_flat(h, lead), _flat(cell, lead)))
        return h.reshape(*lead, -1), cell.reshape(*lead, -1)

    def _move(self, volume: torch.Tensor, head: AffineHead, s: torch.Tensor, size, *, inverse):
        """Read (or write, ``inverse``) ``volume (N, 1, ...)`` through the map ``head(s)``."""
        theta = head(s)
        if inverse:
            theta = invert_theta(theta)
        if self.transform == "affine":
            return spatial_transform(volume, theta, size)
        scale = theta[..., :-1].diagonal(dim1=-2, dim2=-1)
        return separable_transform(volume, scale, theta[..., -1], size)

    def write(self, h: torch.Tensor) -> torch.Tensor:
        """The canvas increment ``(*lead, R³)`` of states ``h (*lead, hidden)``."""
        lead, P, R = h.shape[:-1], self.patch, self.resolution
        s = h.reshape(-1, h.shape[-1])
        patch = self.write_patch(s).reshape(-1, 1, P, P, P)
        return self._move(patch, self.write_where, s, R, inverse=True).reshape(*lead, R**3)

    def read(self, grid: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """:math:`r_t = f_r(x, s_{t-1})`: features ``(*lead, hidden)`` of the glimpse of
        ``grid (B, 1, ...)`` (:meth:`reading_grid`) at the map of states
        ``h (*lead, hidden)``, lead ending in ``B``."""
        lead, P = h.shape[:-1], self.patch
        s = h.reshape(-1, h.shape[-1])
        grids = grid.expand(*lead, *grid.shape[1:]).reshape(-1, *grid.shape[1:])
        glimpse = self._move(grids, self.read_where, s, P, inverse=False)
        return self.read_features(glimpse.flatten(1)).reshape(*lead, -1)

    def reading_grid(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """What the guide reads: the rows as grids ``(B, 1, R, R, R)``, missing voxels empty."""
        R = self.resolution
        return clean_missing(x, mask).reshape(-1, 1, R, R, R)

    def observation(self, canvas: torch.Tensor):
        """:math:`p(x \\mid v_T)` of canvas logits ``(*lead, R³)``: Bernoulli voxels."""
        return dist.Bernoulli(logits=canvas, validate_args=False)

    def _start(self, x: torch.Tensor):
        zero = x.new_zeros(x.shape[0], self.hidden)
        return zero, zero

    # -- Pyro ----------------------------------------------------------------------------------
    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None, c=None):
        check_inputs(self, x, mask)
        e = self._embed(c, x.shape[0])
        zero = x.new_zeros(self.latent_dim)
        state, canvas = self._start(x), 0.0
        with pyro.plate("data", x.shape[0]):
            for name in self.latent_sites:
                z = pyro.sample(name, dist.Normal(zero, torch.ones_like(zero)).to_event(1))
                state = self.step(state, z, e)
                canvas = canvas + self.write(state[0])
            px = self.observation(self.background + canvas)
            if mask is not None:
                px = px.mask(mask)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None, c=None):
        e = self._embed(c, x.shape[0])
        grid = self.reading_grid(x, mask)
        state = self._start(x)
        with pyro.plate("data", x.shape[0]):
            for name in self.latent_sites:
                h = state[0]
                r = self.read(grid, h)
                parts = [r, h.expand_as(r)] + ([] if e is None else [e.expand(*r.shape[:-1], -1)])
                loc, log_scale = self.posterior(torch.cat(parts, -1)).chunk(2, -1)
                scale = F.softplus(log_scale) + 1e-4
                z = pyro.sample(name, dist.Normal(loc, scale).to_event(1))
                state = self.step(state, z, e)

    # -- uses ----------------------------------------------------------------------------------
    @torch.no_grad()
    def canvas_logits(self, z: torch.Tensor, c=None) -> torch.Tensor:
        """Voxel logits ``(n, R³)`` of latents ``z (n, T, latent_dim)``."""
        e = self._embed(c, z.shape[0])
        state, canvas = self._start(z[:, 0]), 0.0
        for t in range(self.steps):
            state = self.step(state, z[:, t], e)
            canvas = canvas + self.write(state[0])
        return self.background + canvas

    @torch.no_grad()
    def sample(self, n: int, *, c=None, generator=None, mean: bool = False,
               return_latents: bool = False):  # fmt: skip
        """``n`` grids ``(n, R, R, R)`` from the prior (given ``c`` of ``n`` rows when
        conditional): Bernoulli draws, or occupancy probabilities with ``mean=True``; with
        ``return_latents`` also the latents ``(n, T, latent_dim)``."""
        check_n(n)
        ref = self.background
        z = torch.randn(n, self.steps, self.latent_dim, generator=generator, dtype=ref.dtype,
                        device=ref.device)  # fmt: skip
        probs = torch.sigmoid(self.canvas_logits(z, c))
        if not mean:
            probs = torch.bernoulli(probs, generator=generator)
        R = self.resolution
        grids = probs.reshape(n, R, R, R)
        return (grids, z) if return_latents else grids

    #: flatten ``(N, R, R, R)`` grids to ``(N, R³)`` rows of 0/1
    rows = staticmethod(grid_rows)
