r"""The posterior families of the autoguides: heads that map features :math:`h` (the encoder's,
or a learned constant for a global latent) to a distribution over :math:`\mathbb{R}^n`.

Each head takes ``h`` of shape ``(..., H)`` and an optional linear ``skip`` term ``(..., n)``
added to the location, and returns a distribution with batch shape ``h.shape[:-1]`` and event
shape ``(n,)``:

- ``"diag"``: :math:`\mathcal{N}(\mu(h), \operatorname{diag}\sigma(h)^2)`;
- ``"lowrank"``: :math:`\mathcal{N}(\mu(h), F(h)F(h)^\top + \operatorname{diag} d(h))`, rank
  :math:`r` (default :math:`\lceil\sqrt n\,\rceil`);
- ``"full"``: :math:`\mathcal{N}(\mu(h), L(h)L(h)^\top)`, :math:`L` lower triangular;
- ``"flow"``: the diagonal Gaussian pushed through ``flows`` conditional autoregressive
  transforms that also read :math:`h` — inverse autoregressive flows (Kingma et al. 2016;
  Pyro's ``conditional_affine_autoregressive``) or rational-quadratic splines (Durkan et al.
  2019; ``conditional_spline_autoregressive``);
- ``"natural"`` (pgm3d's): a full-covariance Gaussian in natural parameters to which every
  *observed entry* adds a term, so its dependence on the pattern of missing entries is built
  in (:class:`NaturalHead`).

Scales start at ``init_scale`` (0.1, as Pyro's ``AutoNormal``).
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import pyro.distributions.transforms as T
import torch
from torch import nn
from torch.nn import functional as F

from pgm3d.contract import ContractError
from pgm3d.distributions import PrecisionMultivariateNormal
from pgm3d.registry import Registry

__all__ = [
    "FAMILIES",
    "BernoulliHead",
    "CategoricalHead",
    "DiagonalHead",
    "FlowHead",
    "FullHead",
    "LowRankHead",
    "NaturalHead",
]

#: the continuous posterior families, by the name ``AutoGuide(family=...)`` takes
FAMILIES: Registry = Registry("guide family")

_EPS = 1e-5


def _softplus_shift(scale: float) -> float:
    """``b`` with ``softplus(b) = scale``: the bias that starts a scale at ``scale``."""
    return math.log(math.expm1(scale))


class DiagonalHead(nn.Module):
    """Diagonal Gaussian: ``2n`` outputs, location and softplus scale."""

    def __init__(self, features: int, n: int, *, init_scale: float = 0.1, **_):
        super().__init__()
        self.n = n
        self.net = nn.Linear(features, 2 * n)
        self._shift = _softplus_shift(init_scale)

    def forward(self, h: torch.Tensor, skip: torch.Tensor | None = None):
        loc, raw = self.net(h).split(self.n, -1)
        loc = loc if skip is None else loc + skip
        return dist.Normal(loc, F.softplus(raw + self._shift) + _EPS).to_event(1)


class LowRankHead(nn.Module):
    """Gaussian with a low-rank-plus-diagonal covariance."""

    def __init__(self, features: int, n: int, *, rank: int | None = None, init_scale=0.1, **_):
        super().__init__()
        self.n, self.rank = n, rank or max(1, math.ceil(math.sqrt(n)))
        if self.rank < 1:
            raise ValueError(f"rank must be >= 1, got {self.rank}")
        self.net = nn.Linear(features, n * (2 + self.rank))
        self._shift = _softplus_shift(init_scale)
        with torch.no_grad():  # start near the diagonal family: small factors
            self.net.weight[2 * n :].mul_(0.1)
            self.net.bias[2 * n :].zero_()

    def forward(self, h: torch.Tensor, skip: torch.Tensor | None = None):
        out = self.net(h)
        n, r = self.n, self.rank
        loc, raw, factor = out[..., :n], out[..., n : 2 * n], out[..., 2 * n :]
        loc = loc if skip is None else loc + skip
        diag = (F.softplus(raw + self._shift) + _EPS) ** 2
        return dist.LowRankMultivariateNormal(loc, factor.unflatten(-1, (n, r)), diag)


class FullHead(nn.Module):
    """Gaussian with a full covariance: a lower-triangular scale per row."""

    def __init__(self, features: int, n: int, *, init_scale: float = 0.1, **_):
        super().__init__()
        self.n = n
        self.net = nn.Linear(features, n + n * (n + 1) // 2)
        self.register_buffer("rows", torch.tril_indices(n, n)[0], persistent=False)
        self.register_buffer("cols", torch.tril_indices(n, n)[1], persistent=False)
        self._shift = _softplus_shift(init_scale)
        with torch.no_grad():  # start diagonal: zero off-diagonal entries
            self.net.weight[n:].mul_(0.1)
            self.net.bias[n:].zero_()

    def forward(self, h: torch.Tensor, skip: torch.Tensor | None = None):
        out = self.net(h)
        n = self.n
        loc, entries = out[..., :n], out[..., n:]
        loc = loc if skip is None else loc + skip
        tril = entries.new_zeros(*entries.shape[:-1], n, n)
        tril[..., self.rows, self.cols] = entries
        diag = F.softplus(tril.diagonal(dim1=-2, dim2=-1) + self._shift) + _EPS
        tril = tril.tril(-1) + torch.diag_embed(diag)
        return dist.MultivariateNormal(loc, scale_tril=tril)


class FlowHead(nn.Module):
    """A diagonal Gaussian through conditional autoregressive flows that read ``h``."""

    def __init__(
        self,
        features: int,
        n: int,
        *,
        flows: int = 2,
        flow: str = "iaf",
        flow_hidden: int | None = None,
        init_scale: float = 0.1,
        **_,
    ):
        super().__init__()
        if flow not in ("iaf", "spline"):
            raise ValueError(f"flow must be 'iaf' or 'spline', got {flow!r}")
        if isinstance(flows, bool) or not isinstance(flows, int) or flows < 1:
            raise ValueError(f"flows must be an int >= 1, got {flows!r}")
        if flow == "iaf" and n < 2:
            raise ContractError(
                "an inverse autoregressive flow needs a latent of at least 2 dimensions; use "
                "flow='spline' (elementwise for 1) or the 'diag' family"
            )
        self.base = DiagonalHead(features, n, init_scale=init_scale)
        hidden = [flow_hidden or max(2 * n, 16)] * 2
        if flow == "iaf":
            make = lambda: T.conditional_affine_autoregressive(n, features, hidden)  # noqa: E731
        elif n == 1:
            make = lambda: T.conditional_spline(n, features, hidden_dims=hidden)  # noqa: E731
        else:
            make = lambda: T.conditional_spline_autoregressive(n, features, hidden)  # noqa: E731
        self.transforms = nn.ModuleList(make() for _ in range(flows))

    def forward(self, h: torch.Tensor, skip: torch.Tensor | None = None):
        base = self.base(h, skip)
        return dist.TransformedDistribution(base, [t.condition(h) for t in self.transforms])


class NaturalHead(nn.Module):
    r"""A Gaussian whose natural parameters are sums over the observed entries.

    .. math::
        \Lambda = \Lambda_0 + \sum_{d \in v} e^{\beta_d} u_d u_d^\top + C(h)C(h)^\top,
        \qquad
        \eta = \eta_0 + \sum_{d \in v} e^{\beta_d}(x_d - c_d)\, u_d + b(h),
        \qquad q = \mathcal{N}(\Lambda^{-1}\eta,\ \Lambda^{-1}).

    Each observed entry :math:`d` adds the natural parameters of a Gaussian observation of
    :math:`u_d^\top z` (noise variance :math:`e^{-\beta_d}`, offset :math:`c_d`) to those of
    :math:`\Lambda_0, \eta_0`, the way observed entries add up in a conjugate model
    (Johnson et al. 2016's structured recognition networks work in the same parameters). The
    exact posterior of factor analysis (:math:`u_d = w_d`, :math:`e^{\beta_d} = 1/\psi_d`,
    :math:`c_d = \mu_d`, :math:`\Lambda_0 = I`) is in the family for *every* pattern of
    missing entries, including patterns never seen in training (thesis ch. 4: FCA, SCA and
    the denoising encoder approximate exactly this dependence). The rank-``r`` term
    :math:`C(h)` and the shift :math:`b(h)` read the encoder's features: the nonlinear part,
    for models that are not linear-Gaussian. It needs the rows and the mask, so it reads
    them (``x``, ``mask``) besides ``h``.
    """

    def __init__(self, features: int, n: int, *, data_dim: int = 0, rank=None, init_scale=0.1,
                 **_):  # fmt: skip
        super().__init__()
        self.n, self.rank = n, rank or max(1, math.ceil(math.sqrt(n)))
        D = data_dim
        self.u = nn.Parameter(0.1 * torch.randn(D, n))
        self.beta = nn.Parameter(torch.zeros(D))
        self.offset = nn.Parameter(torch.zeros(D))
        # Lambda_0 = L0 L0^T, starting at I / init_scale^2 (the other families' initial scale)
        self.log_l0 = nn.Parameter(torch.full((n,), -math.log(init_scale)))
        self.l0_off = nn.Parameter(torch.zeros(n, n))
        self.eta0 = nn.Parameter(torch.zeros(n))
        self.net = nn.Linear(features, n * (1 + self.rank))
        with torch.no_grad():  # small: C C^T has zero gradient at C = 0
            self.net.weight.mul_(0.01)
            self.net.bias.zero_()

    def forward(self, h, skip=None, x=None, mask=None):
        n = self.n
        l0 = self.l0_off.tril(-1) + torch.diag_embed(self.log_l0.exp())
        precision = l0 @ l0.mT
        eta = self.eta0
        if x is not None:
            w = self.beta.exp() * (torch.ones_like(x) if mask is None else mask.to(x.dtype))
            precision = precision + (self.u.mT * w[..., None, :]) @ self.u  # sum_d w_d u_d u_d^T
            eta = eta + (w * (x - self.offset)) @ self.u
        out = self.net(h)
        b, factor = out[..., :n], out[..., n:].unflatten(-1, (n, self.rank))
        precision = precision + factor @ factor.mT
        eta = eta + b if skip is None else eta + b + skip
        eta, precision = torch.broadcast_tensors(eta[..., None], precision)
        tril = torch.linalg.cholesky(precision)
        loc = torch.cholesky_solve(eta[..., :1], tril)[..., 0]
        return PrecisionMultivariateNormal(loc, tril)


FAMILIES.register("diag")(DiagonalHead)
FAMILIES.register("lowrank")(LowRankHead)
FAMILIES.register("full")(FullHead)
FAMILIES.register("flow")(FlowHead)
FAMILIES.register("natural")(NaturalHead)


class CategoricalHead(nn.Module):
    """An amortised Categorical over ``categories`` values for each entry of ``shape``."""

    def __init__(self, features: int, shape: torch.Size, categories: int):
        super().__init__()
        self.shape, self.categories = torch.Size(shape), categories
        self.net = nn.Linear(features, self.shape.numel() * categories)

    def forward(self, h: torch.Tensor, skip=None):
        logits = self.net(h).unflatten(-1, (*self.shape, self.categories))
        return dist.Categorical(logits=logits).to_event(len(self.shape))


class BernoulliHead(nn.Module):
    """An amortised Bernoulli for each entry of ``shape``."""

    def __init__(self, features: int, shape: torch.Size):
        super().__init__()
        self.shape = torch.Size(shape)
        self.net = nn.Linear(features, max(1, self.shape.numel()))

    def forward(self, h: torch.Tensor, skip=None):
        logits = self.net(h).reshape(*h.shape[:-1], *self.shape)
        return dist.Bernoulli(logits=logits).to_event(len(self.shape))
