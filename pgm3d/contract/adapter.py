"""The adapter every entry point uses: :class:`WrappedModel` presents any model/guide pair to
pgm3d's back ends one way, :class:`Bound` binds it to a batch's context, :func:`wrap` and
:func:`as_model` make one (the contract: :mod:`pgm3d.contract`)."""

from __future__ import annotations

import pyro
import pyro.poutine as poutine
import torch
from torch import nn

from pgm3d.contract.probe import probe
from pgm3d.contract.signature import POSITIONAL, Signature
from pgm3d.contract.structure import PGM3D, ContractError, Structure
from pgm3d.handlers import FixValues, MaskObserved

__all__ = ["Bound", "WrappedModel", "as_model", "wrap"]


def _owner(fn) -> nn.Module | None:
    owner = getattr(fn, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


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
        self.__dict__["_model_sig"] = Signature(model_fn, "model")
        self.__dict__["_guide_sig"] = Signature(guide, "guide")
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
        model = self._source if self._source is not None else self._model_sig.fn
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
            model = self._model_sig.resolve(s["data_arg"], key, strict=True)
            guide = self._guide_sig.resolve(model.data_arg, key, strict=False)
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
        sig = self._model_sig
        if data_arg is not None:
            rest = [
                n
                for n, p in sig.params.items()
                if p.kind in POSITIONAL and n not in (data_arg, "mask")
            ]
            if len(rest) == 1:
                return rest[0]
        raise ContractError(
            f"a single context tensor needs to know its argument in {sig.text}: pass the "
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
            self.__dict__["_structure"] = probe(self, x, mask, context or {})
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
