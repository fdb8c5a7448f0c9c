r"""The autoguide: an amortised, mask-aware guide built from the model alone.

On its first call :class:`AutoGuide` traces the model (latents from the prior) to find its
latent sites, and builds

- for the **local** latents (inside the data plate): an encoder of the filled data and the
  mask, :math:`h = f([x \odot m,\ m,\ c,\ \theta])` (with context :math:`c` and the plate-free
  global latents :math:`\theta`), and one head per site giving :math:`q(z \mid x_v, c, \theta)`
  from :math:`h` in the chosen family (:mod:`pgm3d.autoguide.heads`); the location also gets
  a linear term of the encoder's input, so a posterior mean linear in the data (factor analysis,
  fully observed) is in the family. Sites are independent given :math:`h`;
- for the **global** latents (outside it): a non-amortised :math:`q(\theta)` — the same family
  from a learned constant for a site in no plate, a diagonal Gaussian (Pyro's ``AutoNormal``
  form) for a site inside other plates.

Continuous sites with a constrained support are sampled in the unconstrained space and mapped
through ``biject_to(support)``; discrete local sites get an amortised Categorical or Bernoulli
(for RWS and the score-function ELBO). ``aware=False`` drops the mask from the encoder's input:
it then reads the filled data as if complete, the autoguide counterpart of the full-data
encoder behind FCA (thesis ch. 4), so the value of seeing the mask is one argument away.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions.transforms import ReshapeTransform
from pyro.distributions.util import broadcast_shape
from torch import nn
from torch.distributions import biject_to, constraints
from torch.distributions.transforms import ComposeTransform

from pgm3d.autoguide.encoders import Encoder
from pgm3d.autoguide.heads import FAMILIES, BernoulliHead, CategoricalHead
from pgm3d.contract import ContractError, WrappedModel, wrap
from pgm3d.contract.probe import read_model

__all__ = ["AutoGuide", "auto"]

_GLOBAL_FEATURES = 8  # width of the learned constant a plate-free global site's head reads


def _no_guide(x, mask=None, **context):
    """Stands in for a guide while the autoguide reads its model."""


@dataclass
class _Site:
    """What the autoguide needs of one latent site of the model."""

    name: str
    local: bool
    kind: str  # "continuous", "categorical" or "bernoulli"
    event_shape: torch.Size
    value_shape: torch.Size  # the prior draw's shape (a global site's: plates and event)
    unconstrained: torch.Size  # event shape in the unconstrained space
    transform: object | None  # unconstrained -> support; None for the reals
    categories: int = 0
    frames: tuple = ()  # the vectorised plates of a global site

    @property
    def n(self) -> int:
        return max(1, self.unconstrained.numel())

    @property
    def feeds_encoder(self) -> bool:
        return not self.local and not self.frames and self.kind == "continuous"


def _read_site(name: str, site: dict, plate: str) -> _Site:
    fn = site["fn"]
    frames = tuple(f for f in site["cond_indep_stack"] if f.vectorized)
    local = any(f.name == plate for f in frames)
    others = [f.name for f in frames if f.name != plate]
    if local and others:
        raise ContractError(
            f"the autoguide reads local latents inside the data plate only; site {name!r} also "
            f"lies in {others}: write that part of the guide by hand"
        )
    support, event = fn.support, fn.event_shape
    common = dict(name=name, local=local, event_shape=event, frames=() if local else frames)
    common["value_shape"] = site["value"].shape
    if support.is_discrete:
        if isinstance(support, constraints.integer_interval) and support.lower_bound == 0:
            k = int(support.upper_bound) + 1
            return _Site(**common, kind="categorical", unconstrained=event, transform=None,
                         categories=k)  # fmt: skip
        if support is constraints.boolean or isinstance(support, type(constraints.boolean)):
            return _Site(**common, kind="bernoulli", unconstrained=event, transform=None)
        raise ContractError(
            f"site {name!r} has the discrete support {support}; the autoguide amortises "
            "Categorical and Bernoulli latents only"
        )
    transform = biject_to(support)
    base = getattr(transform, "base_transform", transform)
    identity = isinstance(base, ComposeTransform) and not base.parts  # the reals
    unconstrained = event if identity else torch.Size(transform.inverse_shape(event))
    return _Site(**common, kind="continuous", unconstrained=unconstrained,
                 transform=None if identity else transform)  # fmt: skip


class AutoGuide(nn.Module):
    """An amortised, mask-aware guide for ``model`` (see the module docstring).

    A guide like any other: ``fit(model, data, guide=AutoGuide(model))``, or
    :func:`auto` for the pair. Its networks are built on its first call, from the model traced
    on that call's data.

    :param model: any model :func:`~pgm3d.contract.as_model` accepts (its own guide, if it has
        one, is not used), or a model function.
    :param str family: ``"diag"``, ``"lowrank"``, ``"full"`` or ``"flow"``
        (:data:`~pgm3d.autoguide.FAMILIES`).
    :param bool aware: read the mask (default); ``False`` reads the filled data as if
        complete.
    :param hidden: the encoder MLP's hidden widths (the last is the feature width).
    :param shape: ``(C, H, W)`` or ``(C, R, R, R)`` of a row, for a convolutional trunk
        (default: a pgm3d model's :attr:`~pgm3d.models.base.Model.row_shape`).
    :param bool skip: add a linear term of the encoder's input to each location.
    :param float init_scale: initial posterior scale.
    :param family_options: for ``"lowrank"`` ``rank``; for ``"flow"`` ``flows`` (2), ``flow``
        (``"iaf"`` or ``"spline"``), ``flow_hidden``.
    :param wrap_options: ``obs``, ``data_arg``, ``context``, ``plate``, ``fill``, as
        :func:`pgm3d.wrap` takes them.
    """

    def __init__(
        self,
        model,
        family: str = "diag",
        *,
        aware: bool = True,
        hidden=(256, 256),
        shape=None,
        skip: bool = True,
        init_scale: float = 0.1,
        rank: int | None = None,
        flows: int = 2,
        flow: str = "iaf",
        flow_hidden: int | None = None,
        **wrap_options,
    ):
        super().__init__()
        FAMILIES[family]  # an unknown family is refused with the valid ones
        if not init_scale > 0:
            raise ValueError(f"init_scale must be positive, got {init_scale}")
        if isinstance(model, WrappedModel):
            source = model.source if model.source is not None else model._model_sig.fn
            wrap_options = {**model.settings, **wrap_options}
            model = source
        self.__dict__["_pair"] = WrappedModel(model, _no_guide, **wrap_options)
        self.family, self.aware, self.skip = family, aware, skip
        self._wrap_options = dict(wrap_options)
        self.built: dict | None = None  # what _setup found: rebuilds the networks on load
        # a pgm3d model says what its rows are flattenings of: images and grids get a conv trunk
        own = self._pair.source
        self.hidden = tuple(hidden)
        self.shape = shape if shape is not None else getattr(own, "row_shape", None)
        self.options = {
            "init_scale": init_scale,
            "rank": rank,
            "flows": flows,
            "flow": flow,
            "flow_hidden": flow_hidden,
        }
        self.sites: list[_Site] | None = None

    # ------------------------------------------------------------------------------ setup
    def options_record(self) -> dict:
        """The constructor's options as plain values (a model file stores them)."""
        return {
            "family": self.family,
            "aware": self.aware,
            "hidden": list(self.hidden),
            "shape": None if self.shape is None else list(self.shape),
            "skip": self.skip,
            **self.options,
            **self._wrap_options,
        }

    def build(self, built: dict) -> None:
        """Build the networks as a first call on data of this width (and context of these row
        shapes) would: what :func:`pgm3d.load` does before loading their tensors."""
        dtype = getattr(torch, built.get("dtype", "float32"))
        x = torch.zeros(2, built["data_dim"], dtype=dtype)
        context = {k: torch.zeros(2, *shape, dtype=dtype) for k, shape in built["context"].items()}
        self._setup(x, None, context)

    def _setup(self, x: torch.Tensor, mask, context: dict) -> None:
        self.built = {
            "data_dim": x.shape[-1],
            "context": {k: list(v.shape[1:]) for k, v in context.items()},
            "dtype": str(x.dtype).removeprefix("torch."),
        }
        sites, plate, plate_dim = read_model(self._pair, x, mask, context)
        self.plate, self.plate_dim = plate, plate_dim
        self.sites = [_read_site(n, s, plate) for n, s in sites.items() if not s["is_observed"]]
        if not self.sites:
            raise ContractError("the model has no latent sites for the autoguide to infer")
        D = x.shape[-1]
        extra = sum(v[0].numel() if v.dim() else 1 for v in context.values())
        extra += sum(s.event_shape.numel() for s in self.sites if s.feeds_encoder)
        rows = 2 * D if self.aware else D
        self.encoder = Encoder(rows, extra, self.hidden, self.shape)
        H = self.encoder.features
        heads, skips, globals_ = {}, {}, {}
        for s in self.sites:
            if s.local:
                heads[s.name] = self._head(s, H, D)
                if self.skip and s.kind == "continuous":
                    skips[s.name] = nn.Linear(rows + extra, s.n)
            elif s.frames:  # a global site inside other plates: elementwise Gaussian
                globals_[s.name] = _PlatedNormal(s, self.options["init_scale"])
            else:
                globals_[s.name] = _Constant(self._head(s, _GLOBAL_FEATURES, 0))
        self.heads, self.skips = nn.ModuleDict(heads), nn.ModuleDict(skips)
        self.global_heads = nn.ModuleDict(globals_)
        self.to(dtype=x.dtype, device=x.device)

    def _head(self, s: _Site, features: int, data_dim: int) -> nn.Module:
        if s.kind == "categorical":
            return CategoricalHead(features, s.event_shape, s.categories)
        if s.kind == "bernoulli":
            return BernoulliHead(features, s.event_shape)
        return FAMILIES[self.family](features, s.n, data_dim=data_dim, **self.options)

    # ------------------------------------------------------------------------------ guide
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, **context):
        if self.sites is None:
            self._setup(x, mask, context)
        values = {}
        for s in self.sites:
            if not s.local:
                with _plates(s.frames):
                    values[s.name] = pyro.sample(s.name, self._site_dist(s, None))
        rows, extra = self._inputs(x, mask, context, values)
        h = self.encoder(rows, extra)
        inputs = rows if extra is None else torch.cat([rows, extra], -1)
        with pyro.plate(self.plate, x.shape[0], dim=self.plate_dim):
            for s in self.sites:
                if s.local:
                    skip = self.skips[s.name](inputs) if s.name in self.skips else None
                    values[s.name] = pyro.sample(s.name, self._site_dist(s, h, skip, x, mask))
        return values

    def _inputs(self, x, mask, context, values):
        """The encoder's row input ``[x * m, m]`` (or ``x``) and the rest, broadcast together."""
        if self.aware:
            m = torch.ones_like(x) if mask is None else mask.to(x.dtype)
            rows = torch.cat([x * m, m], -1)
        else:
            rows = x
        parts = [v.reshape(v.shape[0], -1).to(x.dtype) for v in context.values()]
        for s in self.sites:
            if s.feeds_encoder:
                v = values[s.name]
                parts.append(v.reshape(*v.shape[: v.dim() - len(s.event_shape)], -1))
        if not parts:
            return rows, None
        lead = torch.Size(broadcast_shape(rows.shape[:-1], *(p.shape[:-1] for p in parts)))
        rows = rows.expand(*lead, rows.shape[-1])
        extra = torch.cat([p.expand(*lead, p.shape[-1]) for p in parts], -1)
        return rows, extra

    def _site_dist(self, s: _Site, h, skip=None, x=None, mask=None):
        if s.local and self.family == "natural" and s.kind == "continuous":
            fn = self.heads[s.name](h, skip, x, mask if self.aware else None)
        elif s.local:
            fn = self.heads[s.name](h, skip)
        else:
            fn = self.global_heads[s.name]()
        if s.kind != "continuous":
            return fn
        if s.frames:
            return fn  # _PlatedNormal maps to the support itself
        transforms = []
        if s.unconstrained != torch.Size([s.n]):
            transforms.append(ReshapeTransform(torch.Size([s.n]), s.unconstrained))
        if s.transform is not None:
            transforms.append(s.transform)
        return dist.TransformedDistribution(fn, transforms) if transforms else fn


class _Constant(nn.Module):
    """A head of a global site reading a learned constant: ``q(theta)`` not amortised."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.h = nn.Parameter(torch.zeros(_GLOBAL_FEATURES))
        self.head = head

    def forward(self):
        return self.head(self.h)


class _PlatedNormal(nn.Module):
    """An elementwise Gaussian (in the unconstrained space) for a global site inside plates,
    one location and scale per element of its value."""

    def __init__(self, s: _Site, init_scale: float):
        super().__init__()
        event = len(s.event_shape)
        batch = s.value_shape[: len(s.value_shape) - event]
        self.shape = torch.Size([*batch, *s.unconstrained])
        self.event_dim = len(s.unconstrained)
        self.transform = s.transform
        self.loc = nn.Parameter(torch.zeros(self.shape))
        self.raw_scale = nn.Parameter(torch.full(self.shape, math.log(math.expm1(init_scale))))

    def forward(self):
        scale = nn.functional.softplus(self.raw_scale) + 1e-5
        fn = dist.Normal(self.loc, scale).to_event(self.event_dim)
        return fn if self.transform is None else dist.TransformedDistribution(fn, self.transform)


def _plates(frames) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    for f in frames:
        stack.enter_context(pyro.plate(f.name, f.size, dim=f.dim))
    return stack


def auto(model, family: str = "diag", **options) -> WrappedModel:
    """``model`` with an :class:`AutoGuide` as its guide: write only the model.

    >>> pair = pgm3d.auto(vae.model, "flow")          # doctest: +SKIP
    >>> fit(pair, train, "iwae"); complete(pair, x, mask, "mwg")

    :param model: any model :func:`~pgm3d.contract.as_model` accepts, or a model function.
    :param options: :class:`AutoGuide`'s (``wrap``'s among them).
    """
    wrap_keys = ("obs", "data_arg", "context", "plate", "fill", "vectorize")
    wrap_options = {k: options.pop(k) for k in wrap_keys if k in options}
    guide = AutoGuide(model, family, **options, **{
        k: v for k, v in wrap_options.items() if k != "vectorize"
    })  # fmt: skip
    if isinstance(model, WrappedModel):
        return WrappedModel(
            model.source if model.source is not None else model._model_sig.fn,
            guide,
            **{**model.settings, **wrap_options},
        )
    return wrap(model, guide, **wrap_options)
