"""The ``complete`` entry point, its result type, and the registry of completion methods.

A completion method is any callable ``method(model, x, mask, **options) -> Completion``.
Registered methods are chosen by name (``complete(model, x, mask, method="sca")``); fitted
ones, such as a :class:`~pgm3d.inference.DenoisingEncoder`, are passed as objects. Methods
never reach into a model's layers: the closed forms use a linear-Gaussian model's public
interface (``exact_posterior``, ``full_precision``, ``project``, ``decode``, ``mu``), the
samplers only the model/guide pair, through :mod:`pgm3d.contract` — so they complete any model
whose observed site holds the data, with the masking and filling done by the library.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import pyro.distributions as dist
import torch
from torch.distributions import Distribution

from pgm3d._validation import as_data, check_data, check_inputs
from pgm3d.contract import WrappedModel, as_model
from pgm3d.data.batches import is_stream, row_batches
from pgm3d.missing import fill_where_missing, missing_as_nan
from pgm3d.registry import Registry

__all__ = [
    "COMPLETION_METHODS",
    "Completion",
    "complete",
    "default_methods",
    "fill_missing",
    "method_options",
    "method_unit",
    "require",
]

#: completion methods by name. Each is registered with what the command line, ``bench`` and
#: the report need to know of it: ``kind`` (``"closed form"``, ``"sampler"``,
#: ``"importance"``), ``unit`` (what one completion costs, a format string over its options),
#: ``needs_exact`` (only for models with an exact posterior), ``by_default`` (False: run
#: only when asked for by name) and ``any_model`` (True: it applies to every model, so it runs
#: by default beside the model's own list). Its options and their defaults are its keyword arguments
#: (:func:`method_options`).
COMPLETION_METHODS: Registry = Registry("completion method")


def method_options(method: str) -> dict:
    """The options of a completion method and their defaults (its keyword arguments after
    ``model, x, mask``; ``inspect.Parameter.empty`` where there is none)."""
    params = list(inspect.signature(COMPLETION_METHODS[method]).parameters.values())[3:]
    return {p.name: p.default for p in params if p.kind is not p.VAR_KEYWORD}


def method_unit(method: str, options: dict | None = None) -> str:
    """What one completion by ``method`` costs, in words, with ``options`` over its defaults
    (``"10 warm-up + 25 draws"``): the unit of ``pgm3d bench``'s rows per second."""
    values = {**method_options(method), **(options or {})}
    return COMPLETION_METHODS.info(method).get("unit", "").format(**values)


def default_methods(model) -> list[str]:
    """The completion methods that apply to ``model`` and run when none are named: its own
    list, then the methods registered with ``any_model=True``."""
    from pgm3d.models.base import completion_methods

    own = list(completion_methods(model))
    general = [m for m in COMPLETION_METHODS if COMPLETION_METHODS.info(m).get("any_model")]
    return [
        m
        for m in dict.fromkeys(own + general)
        if m in COMPLETION_METHODS and COMPLETION_METHODS.info(m).get("by_default", True)
    ]


@dataclass
class Completion:
    """What a completion method returns.

    :ivar z: the (approximate) posterior over latents; batch shape ``(B,)``, event ``(K,)``
        (``None`` for a model with no latent variable, e.g. the per-pattern Gaussian).
    :ivar x: ``(B, D)`` data with missing entries filled by the posterior predictive mean and
        observed entries untouched.
    :ivar mask: ``(B, D)`` bool, ``True`` = observed.
    :ivar method: the method's name.
    """

    z: Distribution | None
    x: torch.Tensor
    mask: torch.Tensor
    method: str


def join_completions(parts: list[Completion]) -> Completion:
    """One completion of the rows of several, in order (a completion streamed over batches).

    Rows are concatenated: ``x``, ``mask`` and per-row diagnostics along their row dimension,
    sampler draws ``(chain, draw, row, ...)`` along the third, and the posterior over ``z``
    (Gaussian, precision-Gaussian or empirical) along its batch dimension.
    """
    if not parts:
        raise ValueError("nothing to join: no batches")
    first = parts[0]
    if len(parts) == 1:
        return first
    if any(type(p) is not type(first) for p in parts):
        raise TypeError("cannot join completions of different kinds")
    joined = {}
    for f in fields(first):
        values = [getattr(p, f.name) for p in parts]
        if f.name == "z":
            joined["z"] = _join_z(values)
        elif f.name == "samples":
            joined["samples"] = {k: torch.cat([v[k] for v in values], 2) for k in values[0]}
        elif all(v is None for v in values):
            joined[f.name] = None
        elif isinstance(values[0], torch.Tensor):
            joined[f.name] = torch.cat(values, 0)
        elif isinstance(values[0], tuple):  # notes: each said once
            joined[f.name] = tuple(dict.fromkeys(n for v in values for n in v))
        else:
            joined[f.name] = values[0]
    return type(first)(**joined)


def _join_z(values: list):
    """The posteriors of several batches of rows as one, batch dimension 0."""
    from pgm3d.distributions import PrecisionMultivariateNormal

    first = values[0]
    if first is None:
        return None
    loc = torch.cat([v.mean if isinstance(v, dist.Empirical) else v.loc for v in values], 0)
    if isinstance(first, dist.Empirical):
        samples = torch.cat([v._samples for v in values], 0)
        return dist.Empirical(samples, torch.cat([v._log_weights for v in values], 0))
    if isinstance(first, PrecisionMultivariateNormal):
        tril = torch.cat([v.precision_tril for v in values], 0)
        return PrecisionMultivariateNormal(loc, tril, validate_args=False)
    if isinstance(first, torch.distributions.MultivariateNormal):
        tril = torch.cat([v.scale_tril for v in values], 0)
        return dist.MultivariateNormal(loc, scale_tril=tril, validate_args=False)
    raise TypeError(
        f"cannot join posteriors of type {type(first).__name__} over batches; complete the "
        "rows as one tensor"
    )


def fill_missing(model, x: torch.Tensor, mask: torch.Tensor, z_loc: torch.Tensor) -> torch.Tensor:
    r"""Fill missing entries with the decoder mean at the latent mean.

    For a linear-Gaussian model :math:`\mathbb{E}[x_m \mid x_v] = W_m\,\mathbb{E}[z] + \mu_m`
    exactly, which is what this computes; observed entries are returned unchanged.
    """
    return fill_where_missing(x, mask, model.decode(z_loc).mean)


def require(model, method: str, *attrs: str) -> None:
    """Raise a clear error if ``model`` lacks an interface ``method`` needs."""
    missing = [a for a in attrs if not hasattr(model, a)]
    if missing:
        name = model.name if isinstance(model, WrappedModel) else type(model).__name__
        raise ValueError(
            f"completion method {method!r} needs a linear-Gaussian model providing "
            f"{', '.join(attrs)}; {name} lacks {', '.join(missing)}"
        )


def is_pair(model) -> bool:
    """Whether ``model`` is something the contract reads as a model/guide pair."""
    return isinstance(model, WrappedModel | tuple) or callable(getattr(model, "model", None))


def complete(
    model,
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    method: str | Callable = "exact",
    *,
    context=None,
    **options,
) -> Completion:
    """Infer the latents of partially observed rows and fill in their missing entries.

    :param model: any model :func:`~pgm3d.contract.as_model` accepts (the samplers work on
        every one whose observed site holds the data), or a linear-Gaussian model for the
        closed forms.
    :param x: ``(B, D)`` data (tensor or array); entries where ``mask`` is False are ignored
        (they may be NaN). Or a ``Dataset``/``DataLoader`` of rows
        (:mod:`pgm3d.data.batches`): completed batch by batch and joined
        (:func:`join_completions`); a sampler's draws then depend on the batches.
    :param mask: bool ``(B, D)``, ``True`` = observed; ``None``: the NaN entries of ``x``
        are the missing ones (none if it has none).
    :param method: a registered name (see ``COMPLETION_METHODS.names()``): the closed forms
        ``"exact"``, ``"fca"``, ``"sca"``, ``"mean"`` of linear-Gaussian models, or the
        samplers ``"pseudo_gibbs"``, ``"mwg"``, ``"importance"``, ``"nuts"`` of any model; or
        a fitted method object such as a :class:`~pgm3d.inference.DenoisingEncoder`.
    :param context: row-aligned conditioning inputs for the samplers (a tensor or a dict of
        named tensors), never imputed.
    :param options: the method's options, e.g. ``chains=4, warmup=100, thin=10,
        num_samples=25`` for the samplers.
    :returns: a :class:`Completion` (a :class:`~pgm3d.inference.samples.SampleCompletion`
        for the samplers) on ``x``'s device and dtype.
    """
    if is_stream(x):
        if mask is not None or context is not None:
            raise ValueError("with a Dataset or DataLoader, give masks and context in its rows")
        parts = [complete(model, bx, bm, method, context=bc, **options)
                 for bx, bm, bc in row_batches(x)]  # fmt: skip
        return join_completions(parts)
    if isinstance(x, np.ndarray):
        x = as_data(x, "x")
    check_data(x, "x")
    mask = missing_as_nan(x, mask)  # NaN means missing
    if mask is None:
        mask = torch.ones_like(x, dtype=torch.bool)
    if isinstance(method, str):
        fn, name = COMPLETION_METHODS[method], method
    elif callable(method):
        fn, name = method, getattr(method, "name", type(method).__name__)
    else:
        raise ValueError(f"method must be a name or a callable, got {type(method).__name__}")
    target = as_model(model, options.get("guide")) if is_pair(model) else model
    check_inputs(target, x, mask)
    if context is not None:
        if "context" not in inspect.signature(fn).parameters:
            raise ValueError(f"completion method {name!r} takes no context")
        options["context"] = context
    try:
        inspect.signature(fn).bind(target, x, mask, **options)
    except TypeError as e:
        raise ValueError(f"completion method {name!r} does not take these options: {e}") from None
    _warn_empty_rows(mask)
    return fn(target, x, mask, **options)


def _warn_empty_rows(mask: torch.Tensor) -> None:
    """A row with nothing observed is filled from what the model believes of every row (its
    prior, or its predictive mean): allowed, but rarely what a user meant."""
    empty = (~mask.reshape(mask.shape[0], -1).any(-1)).nonzero().flatten()
    if len(empty):
        rows = ", ".join(str(int(r) + 1) for r in empty[:10]) + (", ..." if len(empty) > 10 else "")
        warnings.warn(
            f"{len(empty)} row(s) of {mask.shape[0]} have no observed entry (rows {rows}, counted "
            "from 1): they are filled from the model alone, not from anything observed",
            UserWarning,
            stacklevel=3,
        )
