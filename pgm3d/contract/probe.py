"""Trace a model/guide pair once and read its :class:`~pgm3d.contract.Structure`: the observed
site, the data plate, local and global latents, what the guide can do, and whether particles
broadcast as an outer plate; every break of the contract is raised here, before any work."""

from __future__ import annotations

from dataclasses import replace

import pyro
import pyro.poutine as poutine
import torch
from pyro.poutine.util import prune_subsample_sites

from pgm3d.contract.structure import PARTICLES, ContractError, Structure
from pgm3d.handlers import NotPerEntry, is_deterministic, mask_per_entry

__all__ = ["probe", "read_model"]


def _sites(trace) -> dict:
    return {
        n: s for n, s in trace.nodes.items() if s["type"] == "sample" and not is_deterministic(s)
    }


def _traced(role: str, pair, fn, *args):
    try:
        return prune_subsample_sites(poutine.trace(fn).get_trace(*args))
    except ContractError:
        raise
    except Exception as e:
        sig = pair._model_sig if role == "model" else pair._guide_sig
        e.add_note(f"(pgm3d traced {pair.name}'s {sig.text} to read its structure)")
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


def _observed_site(pair, model_sites: dict, x, mask) -> tuple[str, bool]:
    """The observed site that holds the data, and whether it holds it entry for entry."""
    named = pair._settings["obs"]
    observed = [n for n, site in model_sites.items() if site["is_observed"]]
    holding = [n for n in observed if _holds(pair, model_sites[n]["value"], x, mask)]
    if named is not None:
        if named not in observed:
            raise ContractError(
                f"the model has no observed site {named!r} (obs=); its observed sites are "
                f"{observed}"
            )
        return named, named in holding
    if len(observed) == 1:
        return observed[0], observed[0] in holding
    if len(holding) == 1:  # of several observed sites, the one that is the data itself
        return holding[0], True
    if not observed:
        raise ContractError(
            f"the model has no observed sample site: nothing in {pair._model_sig.text} is "
            "pyro.sample(..., obs=...) of the data it was given (is the data argument the "
            f"right one? sites: {sorted(model_sites)})"
        )
    raise ContractError(
        f"the model has several observed sites {observed}"
        + (f", and {holding} all hold the data" if holding else ", none of them the data")
        + "; name the one that observes the data with obs= (pgm3d.wrap(model, obs=...))"
    )


def _latents(model_sites: dict, guide_sites: dict, plate: str) -> dict:
    """Local and global latents, the layout of each local one, and checks that the guide
    samples exactly the model's latents, local where the model's are local."""
    latents = [n for n, site in model_sites.items() if not site["is_observed"]]
    missing = sorted(n for n in latents if n not in guide_sites)
    if missing:
        raise ContractError(f"the guide does not sample the model's latent site(s) {missing}")
    extra = sorted(n for n in guide_sites if n not in model_sites)
    if extra:
        raise ContractError(f"the guide samples site(s) {extra} that the model does not have")
    for site in (*model_sites.values(), *guide_sites.values()):
        if any(not f.vectorized and f.name == plate for f in site["cond_indep_stack"]):
            raise ContractError(
                f"the data plate {plate!r} is iterated sequentially; pgm3d needs it "
                "vectorised (with pyro.plate(...): rather than for i in pyro.plate(...))"
            )
    found = {"local_latents": [], "global_latents": [], "latent_dims": {}, "other_plates": {}}
    for n in latents:
        in_model, in_guide = _in(model_sites[n], plate), _in(guide_sites[n], plate)
        if in_model != in_guide:
            where = "inside" if in_model else "outside"
            raise ContractError(
                f"latent site {n!r} is {where} the data plate {plate!r} in the model but not in "
                "the guide; a local latent (one per row) must be local in both"
            )
        if not in_model:
            found["global_latents"].append(n)
            continue
        found["local_latents"].append(n)
        stack = guide_sites[n]["cond_indep_stack"]
        frame = next(f for f in stack if f.name == plate)
        found["latent_dims"][n] = (guide_sites[n]["fn"].event_dim, frame.dim)
        others = tuple(f.name for f in stack if f.vectorized and f.name != plate)
        if others:
            found["other_plates"][n] = others
    return {k: tuple(v) if isinstance(v, list) else v for k, v in found.items()}


def _guide_families(guide_sites: dict) -> dict:
    """Guide sites that cannot be reparameterised, and those with a discrete support."""
    discrete, not_reparam = {}, {}
    for n, site in guide_sites.items():
        fn = site["fn"]
        if not fn.has_rsample:
            not_reparam[n] = _family(fn)
        try:
            if fn.support.is_discrete:
                discrete[n] = _family(fn)
        except NotImplementedError:  # a support of no registered kind: not discrete
            pass
    return {"discrete": discrete, "not_reparam": not_reparam}


def _nesting(*traces) -> int:
    frames = [
        f
        for tr in traces
        for site in _sites(tr).values()
        for f in site["cond_indep_stack"]
        if f.vectorized
    ]
    return max([0] + [-f.dim for f in frames])


def probe(pair, x, mask, context) -> Structure:
    """Trace ``pair``'s guide and its model replayed against it on ``(x, mask)`` with
    ``context`` (nothing recorded, no random numbers consumed), check them against the
    contract and return their :class:`~pgm3d.contract.Structure`.

    :raises ContractError: at the first break of the contract, naming the site or argument.
    """
    bound = pair.bind(context)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), poutine.block():
        guide_tr = _traced("guide", pair, bound.guide, x, mask)
        model_tr = _traced(
            "model", pair, poutine.replay(bound.unmasked_model, trace=guide_tr), x, mask
        )
    model_sites, guide_sites = _sites(model_tr), _sites(guide_tr)
    obs, holds = _observed_site(pair, model_sites, x, mask)
    plate = _data_plate(model_sites[obs], pair._settings["plate"], x.shape[0], obs)
    params = (n for tr in (guide_tr, model_tr) for n, s in tr.nodes.items() if s["type"] == "param")
    value = model_sites[obs]["value"]
    try:
        mask_per_entry(model_sites[obs]["fn"], torch.ones_like(x, dtype=torch.bool), value, obs)
        coupled = None
    except NotPerEntry as e:
        coupled = str(e)
    structure = Structure(
        obs=obs,
        plate=plate,
        nesting=_nesting(model_tr, guide_tr),
        params=tuple(dict.fromkeys(params)),
        obs_row_shape=tuple(value.shape[1:]) if value.dim() else (),
        holds_data=holds,
        coupled=coupled,
        data_dim=x.shape[-1],
        **_latents(model_sites, guide_sites, plate),
        **_guide_families(guide_sites),
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


def read_model(pair, x, mask=None, context=None) -> tuple[dict, str, int]:
    """Trace the model alone, its latents drawn from the prior (nothing recorded, no random
    numbers consumed): what an automatic guide is built from.

    :returns: ``(sites, plate, plate_dim)``: the model's sample sites by name
        (``pyro.deterministic`` left out), the data plate's name and its ``dim``.
    :raises ContractError: as :func:`probe` for the observed site and the data plate.
    """
    bound = pair.bind(context or {})
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), poutine.block():
        trace = _traced("model", pair, bound.unmasked_model, x, mask)
    sites = _sites(trace)
    obs, _ = _observed_site(pair, sites, x, mask)
    plate = _data_plate(sites[obs], pair._settings["plate"], x.shape[0], obs)
    frame = next(f for f in sites[obs]["cond_indep_stack"] if f.name == plate)
    return sites, plate, frame.dim
