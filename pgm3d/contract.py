r"""The model contract: what pgm3d accepts as a model, and the one adapter every entry point uses.

A *model* is what a Pyro user writes, unchanged:

1. a pgm3d model (:class:`pgm3d.models.Model`);
2. any object with ``model`` and ``guide`` methods — a ``PyroModule``, or an ``nn.Module``
   with ``pyro.module(...)`` calls inside, as Pyro's examples write them;
3. a ``(model, guide)`` pair of plain functions whose parameters live in Pyro's param store.

Every entry point (:func:`~pgm3d.inference.fit`, :func:`~pgm3d.inference.log_likelihood`,
:func:`~pgm3d.inference.complete`, :func:`~pgm3d.evaluation.evaluate_posteriors`, the
diagnostics) passes what it is given through :func:`as_model`, which returns a
:class:`WrappedModel`; :func:`wrap` builds one explicitly when the defaults below need help.

How a pair is read (by tracing it once, before any expensive work):

- **the data argument** is the model's first positional parameter that is not ``mask`` and
  not a context name, or the one named by ``data_arg=``; the guide gets the data under the
  same name if it has it, else as its first positional parameter;
- **the observed site** is the model's one observed ``pyro.sample(..., obs=...)`` site
  (``pyro.deterministic`` sites do not count), or the one named by ``obs=``; any other
  observed sites are scored too but never masked or imputed;
- **the data plate** is the vectorised ``pyro.plate`` around the observed site named
  ``"data"``, else the one whose size is the number of rows, or the one named by ``plate=``.
  Latent sites inside it are *local* (one per row); sites outside it are *global*;
- **context**: row-aligned tensors passed to the model and guide besides the data (a tensor,
  or a dict of named tensors, given to each entry point as ``context=``), minibatched with
  the data and never scored or imputed. A dict's keys are argument names; a single tensor
  goes to the name given by ``wrap(context=...)``, or to the one argument left besides the
  data when ``data_arg=`` names the data;
- **missing data** is the library's job: where ``mask`` is False, the data handed to the
  model and guide is filled (``fill``, zero by default — no NaN ever reaches user code), and
  the observed site's log-density is masked per entry by an effect handler
  (:class:`~pgm3d.handlers.MaskObserved`), so a model that never heard of masks marginalises
  the missing entries exactly. A model or guide with a ``mask`` parameter also receives the
  mask (to condition on the pattern);
- **parameters** are whatever the pair creates: the parameters of the modules it belongs to
  and every ``pyro.param`` site (Pyro's param store), trained together;
- **particles** are a vectorised plate outside the model, or — for models that cannot
  broadcast over one (Pyro's CVAE indexes with a batch-shaped mask) — copies of the batch
  laid out as extra rows (:attr:`Structure.layout`). The probe decides; ``vectorize=`` forces.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pyro
import pyro.poutine as poutine
import torch
from pyro.poutine.util import prune_subsample_sites
from torch import nn

from pgm3d.handlers import FixValues, MaskObserved, NotPerEntry, is_deterministic, mask_per_entry

__all__ = [
    "PARTICLES",
    "Bound",
    "ContractError",
    "Structure",
    "WrappedModel",
    "as_model",
    "wrap",
]

PARTICLES = "particles"
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class ContractError(ValueError):
    """A model, guide, context or mask that breaks the model contract, raised before any
    training or sampling starts; the message names the site or argument and what to do."""


@dataclass(frozen=True)
class Structure:
    """What tracing a model/guide pair once found.

    :ivar str obs: the observed site that holds the data.
    :ivar str plate: the data plate (one entry per row).
    :ivar str layout: ``"vectorized"`` (particles are an outer plate) or ``"rows"``
        (particles are copies of the batch along the data plate).
    :ivar int nesting: deepest plate nesting of model and guide (``max_plate_nesting``).
    :ivar local_latents: latent sites inside the data plate, in model order.
    :ivar global_latents: latent sites outside it.
    :ivar latent_dims: local latent name -> ``(event_dim, dim of the data plate)``.
    :ivar other_plates: local latent name -> the other vectorised plates it lies in.
    :ivar discrete: guide sites with a discrete support -> their distribution's class name.
    :ivar not_reparam: guide sites without a reparameterised sampler -> class name.
    :ivar params: names of the ``pyro.param`` sites the pair uses.
    :ivar obs_row_shape: the observed value's shape per row.
    :ivar bool holds_data: the observed site holds the data entry for entry (so completed
        values can be written into it).
    :ivar coupled: why the observed site's entries cannot be masked one by one (``None``
        when they can).
    :ivar int data_dim: columns of the data the pair was traced with.
    """

    obs: str = "x"
    plate: str = "data"
    layout: str = "vectorized"
    nesting: int = 1
    local_latents: tuple[str, ...] = ()
    global_latents: tuple[str, ...] = ()
    latent_dims: dict = field(default_factory=dict)
    other_plates: dict = field(default_factory=dict)
    discrete: dict = field(default_factory=dict)
    not_reparam: dict = field(default_factory=dict)
    params: tuple[str, ...] = ()
    obs_row_shape: tuple[int, ...] = ()
    holds_data: bool = True
    coupled: str | None = None
    data_dim: int | None = None

    def refuse_coupled(self, mask) -> None:
        """Raise if ``mask`` hides entries of a site that cannot be masked per entry."""
        if self.coupled is not None and mask is not None and not bool(mask.all()):
            raise ContractError(self.coupled)

    def refuse_other_plates(self, what: str) -> None:
        """Raise if a local latent lies in plates besides the data plate (``what`` needs one
        latent vector per row and site)."""
        if self.other_plates:
            where = "; ".join(f"{n!r} in {', '.join(p)}" for n, p in self.other_plates.items())
            raise ContractError(
                f"{what} take one latent vector per row, but the model's latent sites also "
                f"lie in other plates ({where})"
            )

    def refuse_unless_holds_data(self, what: str) -> None:
        """Raise if the observed site is not the data entry for entry."""
        if not self.holds_data:
            raise ContractError(
                f"{what} writes completed values into the observed site {self.obs!r}, which "
                f"does not hold the data entry for entry (per row it holds "
                f"{self.obs_row_shape}, computed from the data); observe the data argument "
                "itself to complete it"
            )


#: the structure of a pgm3d model, assumed where no probe ran (direct calls of the internals)
PGM3D = Structure()


# ------------------------------------------------------------------------------ signatures
class _Caller:
    """How to call one user function: which parameter takes the data, the mask, the context."""

    def __init__(self, fn: Callable, role: str):
        self.fn, self.role = fn, role
        target = fn.forward if isinstance(fn, nn.Module) else fn
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            raise ContractError(f"cannot read the signature of the {role} {fn!r}") from None
        self.text = f"{role}{sig}"
        params = sig.parameters.values()
        self.params = {p.name: p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        self.var_kw = any(p.kind == p.VAR_KEYWORD for p in params)

    def accepts(self, name: str) -> bool:
        return name in self.params or self.var_kw

    def resolve(self, data_arg: str | None, context: tuple[str, ...], strict: bool) -> _Call:
        """Decide the call. ``strict`` (the model): ``data_arg`` and every context name must
        be arguments; otherwise (the guide) the data goes to ``data_arg`` if it is an
        argument, else to the first positional one, and context it does not take is left out.
        """
        if data_arg is None or data_arg not in self.params:
            free = [
                n
                for n, p in self.params.items()
                if p.kind in _POSITIONAL and n != "mask" and n not in context
            ]
            if data_arg is not None and strict:
                if not self.var_kw:
                    raise ContractError(f"{self.text} has no argument {data_arg!r} (data_arg)")
            elif free:
                data_arg = free[0]
            elif data_arg is None or not self.var_kw:
                raise ContractError(
                    f"{self.text} has no argument for the data: pgm3d passes the data as "
                    "the first positional argument that is not 'mask' or a context name, "
                    "or as the one named by data_arg="
                )
        if data_arg in context:
            raise ContractError(f"{data_arg!r} is both the data argument and a context name")
        passed = []
        for name in context:
            if self.accepts(name):
                passed.append(name)
            elif strict:
                raise ContractError(
                    f"{self.text} has no argument {name!r} for the context of that name"
                )
        mask = "mask" in self.params and data_arg != "mask"
        given = {data_arg, *passed, *(["mask"] if mask else [])}
        missing = [n for n, p in self.params.items() if p.default is p.empty and n not in given]
        if missing:
            raise ContractError(
                f"{self.text} needs argument(s) {missing}, which pgm3d does not fill: pass "
                f"them as context (context={{{missing[0]!r}: tensor}}, one row per data row) "
                "or give them defaults"
            )
        positional = tuple(n for n, p in self.params.items() if p.kind == p.POSITIONAL_ONLY)
        return _Call(self.fn, data_arg, mask, tuple(passed), positional)


@dataclass(frozen=True)
class _Call:
    fn: Callable
    data_arg: str
    mask: bool
    context: tuple[str, ...]
    positional: tuple[str, ...]

    def __call__(self, x, mask, context: dict):
        values = {self.data_arg: x, **{n: context[n] for n in self.context}}
        if self.mask:
            values["mask"] = mask
        args = [values.pop(n) for n in self.positional if n in values]
        return self.fn(*args, **values)


def _owner(fn) -> nn.Module | None:
    owner = getattr(fn, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


# ------------------------------------------------------------------------------ the adapter
class WrappedModel(nn.Module):
    """Any model/guide pair, presented to pgm3d's back ends one way (see the module docstring).

    Its :meth:`model` and :meth:`guide` take ``(x, mask=None, context=None)``: they fill the
    missing entries, call the user's functions with the data, mask and context under the
    names they take, and mask the observed site per entry. Attributes it does not define are
    looked up on the wrapped object (``exact_posterior``, ``decode``, ...), so closed-form
    back ends see the model they know.

    :param model: an object with ``model`` and ``guide`` methods, or a model function.
    :param guide: the guide (required with a model function; replaces ``model.guide``).
    :param str obs: name of the observed site that holds the data (default: the only one).
    :param str data_arg: name of the argument that carries the data (default: the first
        positional one that is not ``mask`` or a context name).
    :param context: name(s) of the context argument(s), so a single context tensor knows
        where to go.
    :param str plate: name of the data plate (default: ``"data"`` or the plate of the rows).
    :param fill: value put where entries are missing before user code sees the data: a
        number or a ``(D,)`` tensor (for example the observed column means).
    :param vectorize: ``True``/``False`` forces particles as an outer plate / as extra rows;
        ``None`` (default) lets the first trace decide.
    """

    def __init__(
        self,
        model,
        guide=None,
        *,
        obs: str | None = None,
        data_arg: str | None = None,
        context: str | tuple[str, ...] | None = None,
        plate: str | None = None,
        fill: float | torch.Tensor = 0.0,
        vectorize: bool | None = None,
    ):
        super().__init__()
        source = model if callable(getattr(model, "model", None)) else None
        if source is None:
            if isinstance(model, nn.Module) or not callable(model):
                raise ContractError(
                    f"{type(model).__name__} has no model(...) method; give an object with "
                    "model and guide methods, a (model, guide) pair of functions, or a pgm3d "
                    "model"
                )
            model_fn = model
        else:
            model_fn = model.model
            if guide is None:
                guide = getattr(model, "guide", None)
                if not callable(guide):
                    raise ContractError(
                        f"{type(model).__name__} has no guide(...) method; pass guide=..."
                    )
        if guide is None:
            raise ContractError("a model function needs its guide: pass (model, guide)")
        if not callable(guide):
            raise ContractError(f"the guide must be callable, got {type(guide).__name__}")
        if vectorize not in (None, True, False):
            raise ContractError(f"vectorize must be None, True or False, got {vectorize!r}")
        if isinstance(context, str):
            context = (context,)
        defaults = getattr(source, "pgm3d_contract", None) or {}
        self.__dict__["_source"] = source
        # register the modules the functions belong to, so .to(), .parameters() and
        # state_dict() reach them
        self.parts = nn.ModuleList()
        for part in (source, _owner(model_fn), guide, _owner(guide)):
            if isinstance(part, nn.Module) and all(part is not p for p in self.parts):
                self.parts.append(part)
        self.__dict__["_settings"] = dict(
            obs=obs or defaults.get("obs"),
            data_arg=data_arg or defaults.get("data_arg"),
            context=tuple(context or defaults.get("context", ())),
            plate=plate or defaults.get("plate"),
            fill=fill,
            vectorize=vectorize,
        )
        self.__dict__["_model_caller"] = _Caller(model_fn, "model")
        self.__dict__["_guide_caller"] = _Caller(guide, "guide")
        self.__dict__["_calls"] = {}
        self.__dict__["_structure"] = None
        self.name = (
            type(source).__name__
            if source is not None
            else getattr(model_fn, "__name__", type(model_fn).__name__)
        )

    # -------------------------------------------------------------------- plumbing
    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            source = self.__dict__.get("_source")
            if source is None or name.startswith("__"):
                raise
            return getattr(source, name)

    @property
    def source(self):
        """The wrapped object (``None`` for a pair of functions)."""
        return self._source

    @property
    def settings(self) -> dict:
        return dict(self._settings)

    def with_guide(self, guide) -> WrappedModel:
        """The same model with another guide (its structure traced anew)."""
        model = self._source if self._source is not None else self._model_caller.fn
        s = self._settings
        pair = WrappedModel(model, guide, **s)
        return pair

    @property
    def data_dim(self) -> int | None:
        given = getattr(self._source, "data_dim", None)
        if given is not None:
            return given
        return None if self._structure is None else self._structure.data_dim

    def _resolve(self, names: tuple[str, ...]):
        key = tuple(sorted(names))
        if key not in self._calls:
            s = self._settings
            model = self._model_caller.resolve(s["data_arg"], key, strict=True)
            guide = self._guide_caller.resolve(model.data_arg, key, strict=False)
            self._calls[key] = (model, guide)
        return self._calls[key]

    def _fill(self, x: torch.Tensor, mask) -> torch.Tensor:
        if mask is None:
            return x
        fill = self._settings["fill"]
        fill = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
        # torch.where, not arithmetic: a NaN under the mask must not survive as 0 * NaN
        return torch.where(mask, x, fill)

    def _run(self, role, x, mask=None, context=None, fixed=None, masked=True):
        context = context or {}
        model_call, guide_call = self._resolve(tuple(context))
        call = model_call if role == "model" else guide_call
        x_in = self._fill(x, mask)

        def run(x_in, mask, context):
            return call(x_in, mask, context)

        fn = run
        obs = self._structure.obs if self._structure is not None else self._settings["obs"]
        if role == "model" and masked and mask is not None and obs is not None:
            fn = MaskObserved(obs, mask)(fn)
        if fixed:
            fn = FixValues(fixed)(fn)
        return fn(x_in, mask, context)

    def model(self, x, mask=None, context=None):
        """Run the user's model on ``x`` (missing entries filled, observed site masked)."""
        return self._run("model", x, mask, context)

    def guide(self, x, mask=None, context=None):
        """Run the user's guide on ``x`` (missing entries filled)."""
        return self._run("guide", x, mask, context)

    # -------------------------------------------------------------------- context
    def context_of(self, context, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Check ``context`` (a tensor, a dict of named tensors, or ``None``) against the
        ``(B, D)`` data ``x`` and return it as a dict."""
        if context is None:
            return {}
        if isinstance(context, torch.Tensor):
            context = {self._context_name(): context}
        if not isinstance(context, dict):
            raise ContractError(
                f"context must be a tensor or a dict of named tensors, got {type(context).__name__}"
            )
        out = {}
        for name, value in context.items():
            if not isinstance(name, str):
                raise ContractError(f"context names must be strings, got {name!r}")
            if not isinstance(value, torch.Tensor):
                raise ContractError(
                    f"context {name!r} must be a torch.Tensor, got {type(value).__name__}"
                )
            if value.dim() == 0 or value.shape[0] != x.shape[0]:
                raise ContractError(
                    f"context {name!r} has {value.shape[0] if value.dim() else 0} rows but the "
                    f"data has {x.shape[0]}; context is row-aligned with the data"
                )
            if value.device != x.device:
                raise ContractError(
                    f"context {name!r} is on {value.device}, the data on {x.device}"
                )
            if value.is_floating_point() or value.is_complex():
                bad = ~torch.isfinite(value)
                if bool(bad.any()):
                    row = int(bad.reshape(value.shape[0], -1).any(-1).nonzero()[0])
                    raise ContractError(
                        f"context {name!r} has a NaN or infinite value in row {row}; context "
                        "is never imputed, so fix or drop that row"
                    )
            out[name] = value
        self._resolve(tuple(out))  # a wrong signature fails here, before any work
        return out

    def _context_name(self) -> str:
        named = self._settings["context"]
        if len(named) == 1:
            return named[0]
        data_arg = self._settings["data_arg"]
        caller = self._model_caller
        if data_arg is not None:
            rest = [
                n
                for n, p in caller.params.items()
                if p.kind in _POSITIONAL and n not in (data_arg, "mask")
            ]
            if len(rest) == 1:
                return rest[0]
        raise ContractError(
            f"a single context tensor needs to know its argument in {caller.text}: pass the "
            "context as a dict ({'name': tensor}), or name the data argument "
            "(pgm3d.wrap(model, data_arg=...)) or the context (pgm3d.wrap(model, context=...))"
        )

    def bind(self, context: dict | None = None, fixed: dict | None = None) -> Bound:
        """The model and guide as functions of ``(x, mask)`` with ``context`` (already checked
        by :meth:`context_of`) and optionally some latent sites held at ``fixed`` values."""
        return Bound(self, context or {}, fixed)

    # -------------------------------------------------------------------- the probe
    def structure(self, x: torch.Tensor, mask=None, context=None) -> Structure:
        """Trace the pair once on ``x`` (with no random numbers consumed and nothing
        recorded), check it against the contract and return what was found; cached."""
        if self._structure is None:
            self.__dict__["_structure"] = _probe(self, x, mask, context or {})
        return self._structure

    def check(self, x, mask=None, context=None) -> Structure:
        """:meth:`structure`, plus the checks that depend on this call's mask."""
        s = self.structure(x, mask, context)
        s.refuse_coupled(mask)
        if self.data_dim is not None and x.shape[-1] != self.data_dim:
            raise ContractError(
                f"the data have {x.shape[-1]} columns but the model was traced with {self.data_dim}"
            )
        return s

    # -------------------------------------------------------------------- parameters
    def trainable_parameters(self) -> list[torch.Tensor]:
        """The modules' parameters and the unconstrained tensors of every ``pyro.param``
        site the pair used when traced (call :meth:`structure` first)."""
        seen, out = set(), []
        for p in self.parameters():
            if id(p) not in seen and p.requires_grad:
                seen.add(id(p))
                out.append(p)
        for t in self.param_store_tensors().values():
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
        return out

    def param_store_tensors(self) -> dict[str, torch.Tensor]:
        """Unconstrained tensors of the pair's ``pyro.param`` sites, by name; those that are a
        module's own parameters (``pyro.module``) are left out."""
        if self._structure is None:
            return {}
        own = {id(p) for p in self.parameters()}
        store = pyro.get_param_store()
        out = {}
        for name in self._structure.params:
            if name in store:
                t = store[name].unconstrained()
                if id(t) not in own:
                    out[name] = t
        return out

    # -------------------------------------------------------------------- sampling
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        return_latents: bool = False,
        context=None,
        data_dim: int | None = None,
    ):
        """``n`` rows from the model: the wrapped pgm3d model's own ``sample``, or a forward
        simulation of the user's model (``poutine.uncondition``) with ``mean=True`` giving
        the observed site's mean at the simulated latents.

        For a user's model Pyro draws from torch's global generator; a ``generator`` seeds it
        for the draw (the global state is restored afterwards).

        :param context: the model's conditioning inputs, ``n`` rows.
        :param int data_dim: the width of a row, for a user's model that has not seen data yet.
        """
        own = getattr(self._source, "sample", None)
        if callable(own) and getattr(self._source, "pgm3d_contract", None):
            return own(n, generator=generator, mean=mean, return_latents=return_latents)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        D = self.data_dim or data_dim
        if D is None:
            raise ContractError(
                f"{self.name} has not seen data, so the width of its rows is unknown; pass "
                "data_dim= (or fit it, or run an entry point on data, first)"
            )
        ref = next(iter(self.trainable_parameters()), None)
        kw = {"dtype": ref.dtype, "device": ref.device} if ref is not None else {}
        x = torch.zeros(n, D, **kw)
        ctx = self.context_of(context, x)
        self.structure(x, None, ctx)
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            if generator is not None:
                seed = torch.randint(2**62, (1,), generator=generator, device=generator.device)
                torch.manual_seed(int(seed))
            trace = poutine.trace(poutine.uncondition(self.bind(ctx).model)).get_trace(x)
        site = trace.nodes[self._structure.obs]
        value = site["fn"].mean if mean else site["value"]
        rows = value.reshape(n, -1).detach()
        if not return_latents:
            return rows
        latents = {
            name: trace.nodes[name]["value"].detach()
            for name in (*self._structure.local_latents, *self._structure.global_latents)
        }
        if len(latents) == 1:
            latents = next(iter(latents.values()))
        return rows, latents

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class Bound:
    """A :class:`WrappedModel` bound to its context (and optionally some fixed latents):
    ``bound.model(x, mask)`` and ``bound.guide(x, mask)`` are what the back ends trace.

    Called with ``k * B`` rows (``k`` copies of the ``B`` context rows, as chains and
    particles laid out as rows make), the context is tiled ``k`` times to match.
    """

    def __init__(self, pair: WrappedModel, context: dict, fixed: dict | None):
        self.pair, self.context, self.fixed = pair, context, fixed
        self.rows = next(iter(context.values())).shape[0] if context else None
        self._tiled: dict[int, dict] = {}

    @property
    def structure(self) -> Structure:
        return self.pair._structure or PGM3D

    def context_for(self, n: int) -> dict:
        if self.rows is None or n == self.rows:
            return self.context
        if n % self.rows:
            raise ContractError(f"{n} data rows do not match the context's {self.rows} rows")
        k = n // self.rows
        if k not in self._tiled:
            self._tiled[k] = {
                name: v.repeat(k, *([1] * (v.dim() - 1))) for name, v in self.context.items()
            }
        return self._tiled[k]

    def model(self, x, mask=None):
        return self.pair._run("model", x, mask, self.context_for(x.shape[0]), self.fixed)

    def guide(self, x, mask=None):
        return self.pair._run("guide", x, mask, self.context_for(x.shape[0]), self.fixed)

    def unmasked_model(self, x, mask=None):
        return self.pair._run(
            "model", x, mask, self.context_for(x.shape[0]), self.fixed, masked=False
        )

    def with_fixed(self, fixed: dict | None) -> Bound:
        return Bound(self.pair, self.context, fixed)


def wrap(
    model,
    guide=None,
    *,
    obs: str | None = None,
    data_arg: str | None = None,
    context: str | tuple[str, ...] | None = None,
    plate: str | None = None,
    fill: float | torch.Tensor = 0.0,
    vectorize: bool | None = None,
) -> WrappedModel:
    """Adapt a model written the way Pyro's examples write them for every pgm3d entry point.

    Needed only when the defaults (module docstring) need help; the entry points call
    :func:`as_model` on whatever they are given.

    >>> vae = pgm3d.wrap(VAE())                          # doctest: +SKIP
    >>> cvae = pgm3d.wrap(CVAE(...), data_arg="ys")      # context xs, data ys
    >>> pair = pgm3d.wrap(model_fn, guide_fn, obs="obs")  # plain functions, param store

    :returns: a :class:`WrappedModel`.
    """
    return WrappedModel(
        model,
        guide,
        obs=obs,
        data_arg=data_arg,
        context=context,
        plate=plate,
        fill=fill,
        vectorize=vectorize,
    )


def as_model(model, guide=None) -> WrappedModel:
    """What every entry point calls on the model it is given: a :class:`WrappedModel` as it is
    (or with ``guide`` in place of its own), a ``(model, guide)`` tuple of functions, or any
    object with ``model`` and ``guide`` methods (pgm3d's models included)."""
    if isinstance(model, WrappedModel):
        return model if guide is None else model.with_guide(guide)
    if isinstance(model, tuple):
        if len(model) != 2 or guide is not None:
            raise ContractError(
                "a model given as a tuple must be (model, guide), with no separate guide="
            )
        return WrappedModel(*model)
    return WrappedModel(model, guide)


# ------------------------------------------------------------------------------ the probe
def _sites(trace) -> dict:
    return {
        n: s for n, s in trace.nodes.items() if s["type"] == "sample" and not is_deterministic(s)
    }


def _traced(role: str, pair: WrappedModel, fn, *args):
    try:
        return prune_subsample_sites(poutine.trace(fn).get_trace(*args))
    except ContractError:
        raise
    except Exception as e:
        caller = pair._model_caller if role == "model" else pair._guide_caller
        e.add_note(f"(pgm3d traced {pair.name}'s {caller.text} to read its structure)")
        raise


def _data_plate(site: dict, name: str | None, rows: int, obs: str) -> str:
    frames = [f for f in site["cond_indep_stack"] if f.vectorized]
    names = [f.name for f in frames]
    if name is not None:
        if name not in names:
            raise ContractError(
                f"the observed site {obs!r} is not inside the plate {name!r} (plate=); its "
                f"vectorised plates are {names}"
            )
        frame = frames[names.index(name)]
    elif "data" in names:
        frame = frames[names.index("data")]
    else:
        # a plate declared without a size (pyro.plate("data")) takes the batch's
        sized = [f for f in frames if f.size in (rows, None, -1)]
        if len(sized) != 1:
            raise ContractError(
                f"cannot tell the data plate of the observed site {obs!r}: "
                + (
                    f"none of its vectorised plates {names} has the {rows} rows of the data; "
                    f"put it inside pyro.plate(name, x.shape[0])"
                    if not sized
                    else f"plates {[f.name for f in sized]} all have {rows} entries; name the "
                    "data plate with plate="
                )
            )
        frame = sized[0]
    full = getattr(frame, "full_size", None)
    if full not in (None, -1, frame.size):
        raise ContractError(
            f"the data plate {frame.name!r} subsamples {frame.size} of {full} rows itself and "
            "scales them; pgm3d minibatches and scales for you: declare it as "
            f"pyro.plate({frame.name!r}, x.shape[0])"
        )
    if frame.size not in (rows, None, -1):
        raise ContractError(
            f"the data plate {frame.name!r} has size {frame.size} but pgm3d passed {rows} rows; "
            f"declare it as pyro.plate({frame.name!r}, x.shape[0]) (pgm3d minibatches for you)"
        )
    return frame.name


def _family(fn) -> str:
    """The distribution's own class name, under Independent and Masked wrappers."""
    while hasattr(fn, "base_dist") and type(fn).__name__ in (
        "Independent",
        "MaskedDistribution",
        "ExpandedDistribution",
    ):
        fn = fn.base_dist
    return type(fn).__name__


def _holds(pair, value, x, mask) -> bool:
    """Whether an observed value is the (filled) data entry for entry, on observed entries."""
    B, D = x.shape
    if not torch.is_tensor(value) or value.dim() == 0 or value.shape[0] != B:
        return False
    if value[0].numel() != D:
        return False
    seen = torch.ones_like(x, dtype=torch.bool) if mask is None else mask
    flat = value.reshape(B, D).to(x.dtype)
    return bool(torch.equal(flat[seen], pair._fill(x, mask)[seen]))


def _in(site: dict, plate: str) -> bool:
    return any(f.name == plate for f in site["cond_indep_stack"])


def _probe(pair: WrappedModel, x, mask, context) -> Structure:
    s = pair._settings
    B = x.shape[0]
    bound = pair.bind(context)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), poutine.block():
        guide_tr = _traced("guide", pair, bound.guide, x, mask)
        model_tr = _traced(
            "model", pair, poutine.replay(bound.unmasked_model, trace=guide_tr), x, mask
        )
    model_sites, guide_sites = _sites(model_tr), _sites(guide_tr)
    observed = [n for n, site in model_sites.items() if site["is_observed"]]
    holding = [n for n in observed if _holds(pair, model_sites[n]["value"], x, mask)]
    if s["obs"] is not None:
        if s["obs"] not in observed:
            raise ContractError(
                f"the model has no observed site {s['obs']!r} (obs=); its observed sites are "
                f"{observed}"
            )
        obs = s["obs"]
    elif len(observed) == 1:
        obs = observed[0]
    elif len(holding) == 1:  # the one observed site that is the data itself
        obs = holding[0]
    elif not observed:
        raise ContractError(
            f"the model has no observed sample site: nothing in {pair._model_caller.text} is "
            "pyro.sample(..., obs=...) of the data it was given (is the data argument the "
            f"right one? sites: {sorted(model_sites)})"
        )
    else:
        raise ContractError(
            f"the model has several observed sites {observed}"
            + (f", and {holding} all hold the data" if holding else ", none of them the data")
            + "; name the one that observes the data with obs= (pgm3d.wrap(model, obs=...))"
        )
    plate = _data_plate(model_sites[obs], s["plate"], B, obs)
    latents = [n for n, site in model_sites.items() if not site["is_observed"]]
    missing = sorted(n for n in latents if n not in guide_sites)
    if missing:
        raise ContractError(f"the guide does not sample the model's latent site(s) {missing}")
    extra = sorted(n for n in guide_sites if n not in model_sites)
    if extra:
        raise ContractError(f"the guide samples site(s) {extra} that the model does not have")
    local, global_, dims, others = [], [], {}, {}
    for n in latents:
        in_model, in_guide = _in(model_sites[n], plate), _in(guide_sites[n], plate)
        if in_model != in_guide:
            where = "inside" if in_model else "outside"
            raise ContractError(
                f"latent site {n!r} is {where} the data plate {plate!r} in the model but not in "
                "the guide; a local latent (one per row) must be local in both"
            )
        if not in_model:
            global_.append(n)
            continue
        local.append(n)
        site = guide_sites[n]
        frame = next(f for f in site["cond_indep_stack"] if f.name == plate)
        dims[n] = (site["fn"].event_dim, frame.dim)
        plates = tuple(f.name for f in site["cond_indep_stack"] if f.vectorized and f.name != plate)
        if plates:
            others[n] = plates
    for site in (*model_sites.values(), *guide_sites.values()):
        for f in site["cond_indep_stack"]:
            if not f.vectorized and f.name == plate:
                raise ContractError(
                    f"the data plate {plate!r} is iterated sequentially; pgm3d needs it "
                    "vectorised (with pyro.plate(...): rather than for i in pyro.plate(...))"
                )
    nesting = max(
        [0]
        + [
            -f.dim
            for tr in (model_tr, guide_tr)
            for site in _sites(tr).values()
            for f in site["cond_indep_stack"]
            if f.vectorized
        ]
    )
    discrete, not_reparam = {}, {}
    for n, site in guide_sites.items():
        fn = site["fn"]
        kind = _family(fn)
        if not fn.has_rsample:
            not_reparam[n] = kind
        try:
            if fn.support.is_discrete:
                discrete[n] = kind
        except NotImplementedError:
            pass
    params = tuple(
        dict.fromkeys(
            n
            for tr in (guide_tr, model_tr)
            for n, site in tr.nodes.items()
            if site["type"] == "param"
        )
    )
    value = model_sites[obs]["value"]
    D = x.shape[-1]
    coupled = None
    try:
        mask_per_entry(model_sites[obs]["fn"], torch.ones_like(x, dtype=torch.bool), value, obs)
    except NotPerEntry as e:
        coupled = str(e)
    structure = Structure(
        obs=obs,
        plate=plate,
        nesting=nesting,
        local_latents=tuple(local),
        global_latents=tuple(global_),
        latent_dims=dims,
        other_plates=others,
        discrete=discrete,
        not_reparam=not_reparam,
        params=params,
        obs_row_shape=tuple(value.shape[1:]) if value.dim() else (),
        holds_data=obs in holding,
        coupled=coupled,
        data_dim=D,
    )
    structure.refuse_coupled(mask)
    # on all the rows, not a few: a guide may hold one distribution per row of this batch
    return replace(structure, layout=_layout(pair, bound, structure, x, mask))


def _layout(pair, bound, structure, x, mask) -> str:
    """``"vectorized"`` if the pair runs correctly under an outer plate of 2 particles."""
    forced = pair._settings["vectorize"]
    if forced is False:
        return "rows"
    B, depth = x.shape[0], structure.nesting + 1
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), poutine.block():
            particles = pyro.plate(PARTICLES, 2, dim=-depth)
            guide_tr = prune_subsample_sites(
                poutine.trace(particles(bound.guide)).get_trace(x, mask)
            )
            model_tr = prune_subsample_sites(
                poutine.trace(poutine.replay(particles(bound.model), trace=guide_tr)).get_trace(
                    x, mask
                )
            )
            for tr in (guide_tr, model_tr):
                tr.compute_log_prob()
                for name, site in _sites(tr).items():
                    lp = site["log_prob"]
                    if not torch.is_tensor(lp) or not _in(site, structure.plate):
                        continue
                    lp = lp.reshape((1,) * (depth - lp.dim()) + lp.shape)
                    frame = next(f for f in site["cond_indep_stack"] if f.name == structure.plate)
                    if (
                        lp.dim() != depth
                        or lp.shape[0] not in (1, 2)
                        or lp.shape[depth + frame.dim] not in (1, B)
                    ):
                        raise ValueError(
                            f"site {name!r} has log-density shape {tuple(site['log_prob'].shape)}"
                            f" under 2 particles and {B} rows"
                        )
    except Exception as e:
        if forced:
            raise ContractError(
                f"{pair.name} does not run vectorised over an outer plate of particles "
                f"(vectorize=True): {e}"
            ) from e
        return "rows"
    return "vectorized"
