"""``fit``: train any model/guide pair with any registered objective."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyro
import pyro.util
import torch
from torch.utils.data import DataLoader

from pgm3d._progress import progress_bar
from pgm3d._validation import (
    as_data,
    check_device,
    check_float,
    check_int,
    check_mask,
    check_model_matches,
    check_observed_finite,
    check_rows_observed,
    check_seed,
    inputs_checked,
)
from pgm3d.data.batches import collate_rows, is_stream, unpack_batch
from pgm3d.inference.objectives import OBJECTIVES, Objective
from pgm3d.missing import missing_as_nan
from pgm3d.saving import read_checkpoint, write_checkpoint

__all__ = ["FitHistory", "TrainingError", "fit"]


class TrainingError(RuntimeError):
    """Training diverged (a non-finite loss); the last checkpoint is left as it was."""


@dataclass
class FitHistory:
    """What :func:`fit` did.

    :ivar bound: per epoch, the mean per-datapoint bound (ELBO or IWAE bound, at that epoch's
        KL weight) over the epoch's minibatches.
    :ivar kl_weight: per epoch, the KL weight at its last step.
    :ivar steps: optimiser steps taken.
    :ivar seconds: wall time.
    :ivar stopped_early: a callback asked to stop.
    :ivar rank: the process's global rank (0 unless trained across processes,
        :func:`pgm3d.lightning.fit_lightning`).
    """

    bound: list[float] = field(default_factory=list)
    kl_weight: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    rank: int = 0

    @property
    def loss(self) -> list[float]:
        """Per epoch, the negative mean bound (what was minimised)."""
        return [-b for b in self.bound]


def fit(
    model,
    data,
    objective: str | Objective = "elbo",
    *,
    mask: torch.Tensor | None = None,
    mask_sampler: Callable | None = None,
    fresh: Callable[[int], torch.Tensor] | None = None,
    context=None,
    context_noise: Callable | None = None,
    guide=None,
    num_particles: int = 1,
    kl_weight: float = 1.0,
    kl_warmup: int = 0,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    lr_decay: float = 1.0,
    parameters: Iterable[torch.Tensor] | None = None,
    device: str | torch.device | None = None,
    callbacks: Iterable[Callable] = (),
    seed: int = 0,
    progress: bool | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    trust: bool = False,
    config: dict | None = None,
) -> FitHistory:
    """Train a model/guide pair by stochastic optimisation of an objective.

    Each step draws a minibatch of ``batch_size`` rows (shuffled each epoch by a generator
    seeded with ``seed``) and their context, evaluates the objective with the minibatch scale
    ``N / B`` applied to the local terms outside the per-datapoint bounds (global latents count
    once), and takes an Adam step on every parameter the pair uses: its modules' parameters and
    its ``pyro.param`` sites (Pyro's param store), found by tracing it once first.

    The rows are checked once, whole (a stream's batch by batch as it comes), not at every
    step. Pyro's validation (distribution arguments, supports, site shapes) runs through
    epoch 0, which meets every row, and then stands down, as Pyro advises for mature models —
    the ELBO then takes its lean path (:meth:`~pgm3d.inference.elbo.ELBO.lean`). With
    ``fresh`` rows it stays on; a ``Dataset`` or ``DataLoader`` is taken to give the same
    values every epoch (one that augments its rows should be checked by its own code).

    :param model: any model :func:`~pgm3d.contract.as_model` accepts: a pgm3d model, an
        object with ``model`` and ``guide`` methods, or a ``(model, guide)`` pair of functions.
    :param data: ``(N, D)`` tensor or array (a memory-mapped ``.npy`` is read whole), or rows
        that need not fit in memory: a map-style ``Dataset`` (minibatches drawn in ``fit``'s
        own seeded order, so ``resume`` stays exact) or a ``DataLoader`` (its batches and order;
        no ``resume``), whose items carry their masks and context
        (:mod:`pgm3d.data.batches`).
    :param objective: a name in ``OBJECTIVES`` (``"elbo"``, ``"meanfield"``, ``"iwae"``,
        ``"dreg"``, ``"rws"``, ``"vimco"``) or a constructed :class:`~pgm3d.inference.Objective`.
    :param mask: optional bool ``(N, D)``, True = observed (default: NaN entries are missing).
    :param mask_sampler: draws a fresh mask for every minibatch, ``mask_sampler(shape,
        generator=g)`` (e.g. ``functools.partial(random_mask, p_missing=0.5)``), combined with
        ``mask``: training on incomplete data of a given missingness, for mask-aware guides.
        Its generator is seeded from ``seed`` and kept in checkpoints.
    :param fresh: new data every epoch: ``fresh(e)`` returns epoch ``e``'s rows, of the shape
        of ``data`` (which is epoch 0's), so no row is seen twice — the thesis's training on
        freshly drawn scenes (§5.4). It must be deterministic in ``e`` (a seeded generator), so
        a resumed run sees the same rows; complete rows only (no ``mask`` or ``context``).
    :param context: row-aligned conditioning inputs: an ``(N, ...)`` tensor or a dict of them
        by argument name, minibatched with the data.
    :param context_noise: noise injected into each minibatch's context before the step,
        ``context_noise(ctx, generator=g)`` returning a dict like ``ctx`` (e.g. the CVAE's
        input omission, :meth:`~pgm3d.models.CVAE.input_omission`): model and guide see the same
        noisy inputs. Its generator is seeded from ``seed`` and kept in checkpoints.
    :param guide: a guide to train instead of the model's own.
    :param int num_particles: samples of the guide per data point.
    :param float kl_weight: target KL weight :math:`\\alpha` (thesis eq. 3.5).
    :param int kl_warmup: steps over which the KL weight rises linearly from 0 to
        ``kl_weight`` (0 = no warm-up).
    :param float lr_decay: the learning rate is multiplied by this after every epoch
        (epoch ``e`` trains at ``lr * lr_decay**e``; 1 keeps it constant).
    :param parameters: what to optimise (default: every parameter of the model and guide);
        pass ``guide.parameters()`` to fit a guide to a fixed model.
    :param device: move the model, guide and data there first (default: leave them).
    :param callbacks: called as ``cb(epoch, history)`` after each epoch; a callback returning
        True stops training.
    :param int seed: seeds Pyro's and torch's global generators and the shuffling.
    :param progress: progress bar over epochs (``None``: only on a terminal).
    :param checkpoint: file to which the parameters, optimiser state, random number generator
        states, data order and history are written every ``checkpoint_every`` steps and at the
        end, atomically (write, then rename), so a run killed at any moment leaves the last
        checkpoint intact.
    :param int checkpoint_every: optimiser steps between checkpoints.
    :param bool resume: continue from ``checkpoint``; the run then ends with the same parameters,
        bit for bit, as one that was never interrupted. Its settings must match the
        checkpoint's, except ``epochs``, which may grow.
    :param bool trust: on ``resume``, also read a checkpoint pgm3d 0.1 wrote (a pickle, which
        can run code: only your own; see :mod:`pgm3d.saving`).
    :param dict config: stored in the checkpoint (e.g. the command line's effective config).
    :returns: a :class:`FitHistory`.
    :raises pgm3d.saving.CheckpointError: ``resume`` with a corrupt or foreign checkpoint
        (nothing is written then).
    """
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("num_particles", num_particles),
        ("checkpoint_every", checkpoint_every),
    ):
        check_int(value, name)
    check_int(kl_warmup, "kl_warmup", low=0)
    check_float(kl_weight, "kl_weight", low=0.0)
    check_float(lr, "lr", low=0.0, low_open=True)
    check_float(lr_decay, "lr_decay", low=0.0, high=1.0, low_open=True)
    check_seed(seed)
    if device is not None:
        check_device(device)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint file to resume from")
    if fresh is not None and (mask is not None or context is not None or not callable(fresh)):
        raise ValueError("fresh= takes a function of the epoch, for complete rows without context")
    if isinstance(objective, Objective):
        loss_fn = objective
    else:
        loss_fn = OBJECTIVES[objective](
            model, guide, num_particles=num_particles, kl_weight=kl_weight
        )
    pair = loss_fn.pair
    if device is not None:
        pair.to(device)
    if is_stream(data):
        if mask is not None or context is not None or fresh is not None:
            raise ValueError(
                "with a Dataset or DataLoader, give masks and context in its rows (fresh= "
                "takes tensors)"
            )
        if resume and isinstance(data, DataLoader):
            raise ValueError(
                "a DataLoader's order cannot be replayed, so a run on one cannot resume "
                "exactly: pass its Dataset (fit shuffles it, seeded) to resume"
            )
        source = _StreamRows(pair, data, device)
    else:
        source = _TensorRows(pair, data, mask, context, device)
    N = source.n
    B = min(batch_size, N) if source.batch_size is None else source.batch_size
    masks = torch.Generator().manual_seed(seed + 1)
    noise = torch.Generator().manual_seed(seed + 2)
    first_x, first_mask, first_ctx = source.first(B)
    if context_noise is not None and (not callable(context_noise) or not first_ctx):
        raise ValueError("context_noise= takes a function of the context, and needs a context")
    probe_mask = _batch_mask(first_mask, mask_sampler, first_x, torch.Generator().manual_seed(0))
    # trace once on the first rows: every check before the first step, and the param sites
    loss_fn.prepare(first_x, probe_mask, first_ctx)
    params = list(loss_fn.trainable_parameters() if parameters is None else parameters)
    if not params:
        raise ValueError("nothing to optimise: the model and guide have no parameters")
    # the multi-tensor update is several times faster on the CPU for models of many tensors
    optimizer = torch.optim.Adam(params, lr=lr, foreach=True)
    settings = {
        "objective": loss_fn.__class__.__name__,
        "num_particles": loss_fn.num_particles,
        "kl_weight": kl_weight,
        "kl_warmup": kl_warmup,
        "batch_size": B,
        "lr": lr,
        "seed": seed,
        "data_shape": [N, first_x.shape[1]],
    }
    if lr_decay != 1.0:  # only then, so checkpoints written before the option still resume
        settings["lr_decay"] = lr_decay
    if first_ctx:
        settings["context"] = sorted(first_ctx)
    if mask_sampler is not None:
        settings["mask_sampler"] = True
    if context_noise is not None:
        settings["context_noise"] = True
    if fresh is not None:
        settings["fresh"] = True
    pyro.set_rng_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    history = FitHistory()
    loop = {"epoch": 0, "position": 0, "order": None, "total": 0.0}
    if resume:
        history, loop = _restore(
            checkpoint,
            settings,
            pair,
            optimizer,
            shuffle,
            (masks, noise),
            source.device,
            trust=trust,
        )
    start = time.perf_counter() - history.seconds

    def save() -> None:
        if checkpoint is not None:
            history.seconds = time.perf_counter() - start
            write_checkpoint(
                checkpoint,
                # how to rebuild the model, when pgm3d can (pgm3d.load reads it back); the
                # parameters of any pair are in its state and its param-store tensors
                model=pair,
                state=pair.state_dict(),
                pyro_params={k: v.detach() for k, v in pair.param_store_tensors().items()},
                optimizer=optimizer.state_dict(),
                rng=pyro.util.get_rng_state(),
                cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
                shuffle=shuffle.get_state(),
                masks=masks.get_state() if mask_sampler is not None else None,
                context_rng=noise.get_state() if context_noise is not None else None,
                loop={**loop, "order": None if loop["order"] is None else loop["order"].cpu()},
                history=asdict(history),
                settings=settings,
                steps=history.steps,
                config=config,
            )

    bar = progress_bar(
        range(loop["epoch"], epochs),
        desc=f"fit ({loss_fn.__class__.__name__})",
        progress=progress,
        initial=loop["epoch"],
        total=epochs,
    )
    epoch0 = source.x if fresh is not None else None
    for epoch in bar:
        if fresh is not None:
            source.x = epoch0 if epoch == 0 else _fresh_rows(fresh, epoch, epoch0)
        if loop["order"] is None:
            loop.update(order=torch.randperm(N, generator=shuffle).to(source.device), total=0.0)
        alpha = kl_weight
        # the rows were checked (whole, or each batch of a stream as it comes), so no step
        # scans its batch again; Pyro's distribution and support checks run through epoch 0,
        # which meets every row, and then stand down where later epochs see the same values
        # (they cost about 10% of a small step, and the ELBO then takes its lean path). By
        # the epoch's number, not the first of this call: a resumed run computes exactly
        # what an uninterrupted one does
        pyro_checks = epoch == 0 or fresh is not None  # fresh rows: new values each epoch
        off = contextlib.nullcontext() if pyro_checks else pyro.validation_enabled(False)
        with inputs_checked(), off:
            for xb, mb, cb in source.epoch(loop["order"], loop["position"], B):
                alpha = (
                    kl_weight * min(1.0, (history.steps + 1) / kl_warmup)
                    if kl_warmup
                    else kl_weight
                )
                optimizer.zero_grad()
                loss = loss_fn(
                    xb,
                    _batch_mask(mb, mask_sampler, xb, masks),
                    context=_noisy(context_noise, cb, noise),
                    scale=N / len(xb),
                    kl_weight=alpha,
                )
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"the {loss_fn.__class__.__name__} loss became {loss.item()} at epoch "
                        f"{epoch}, step {history.steps}; try a smaller lr"
                    )
                loss.backward()
                optimizer.step()
                history.steps += 1
                loop["total"] += loss_fn.last_bound * len(xb)
                loop["position"] += len(xb)
                if history.steps % checkpoint_every == 0:
                    save()
        history.bound.append(loop["total"] / N)
        history.kl_weight.append(alpha)
        loop.update(epoch=epoch + 1, position=0, order=None, total=0.0)
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_decay ** (epoch + 1)
        bar.set_postfix(bound=f"{history.bound[-1]:.3f}")
        if any(cb(epoch, history) for cb in callbacks):
            history.stopped_early = True
            break
    save()
    history.seconds = time.perf_counter() - start
    if history.bound and math.isnan(history.bound[-1]):
        raise TrainingError("training produced a NaN bound")
    return history


def _fresh_rows(fresh, epoch: int, like: torch.Tensor) -> torch.Tensor:
    """Epoch ``epoch``'s rows from ``fresh``, checked against epoch 0's."""
    rows = torch.as_tensor(fresh(epoch)).to(device=like.device, dtype=like.dtype)
    if rows.shape != like.shape:
        raise ValueError(
            f"fresh({epoch}) returned shape {tuple(rows.shape)}, expected {tuple(like.shape)}"
        )
    check_observed_finite(rows, None, f"fresh({epoch})")
    return rows


class _TensorRows:
    """Rows held whole (a tensor or array, on the device): checked once, minibatched by index."""

    batch_size = None

    def __init__(self, pair, data, mask, context, device):
        x = as_data(data, "data", device=device)
        check_model_matches(pair, x, "data")
        mask = missing_as_nan(x, mask)
        if mask is not None:
            mask = check_mask(mask.to(x.device), x)
            if bool(mask.all()):
                mask = None  # nothing to marginalise: skip the masking handler on every step
        check_observed_finite(x, mask, "data")
        check_rows_observed(mask, "data")
        # the context is data: computed by a network with gradients (a classifier's layer),
        # it would tie every step to one graph ("backward through the graph a second time")
        ctx = {k: v.detach() for k, v in pair.context_of(context, x).items()}
        self.x, self.mask, self.ctx = x, mask, ctx
        self.n, self.device = x.shape[0], x.device

    def rows(self, idx):
        mask = None if self.mask is None else self.mask[idx]
        return self.x[idx], mask, _rows(self.ctx, idx)

    def first(self, B: int):
        return self.rows(slice(0, B))

    def epoch(self, order, start: int, B: int):
        for i in range(start, self.n, B):
            yield self.rows(order[i : i + B])


class _StreamRows:
    """Rows read from a ``Dataset`` (by index, in fit's own seeded order, so a run resumes
    exactly) or a ``DataLoader`` (its own batches and order), each batch checked as it comes
    and moved to the model's device and dtype."""

    def __init__(self, pair, data, device):
        self.pair = pair
        self.loader = data if isinstance(data, DataLoader) else None
        self.data = data.dataset if self.loader is not None else data
        self.n = len(self.data)
        if self.n == 0:
            raise ValueError("data: the data set has no rows")
        self.batch_size = None if self.loader is None else self.loader.batch_size
        ref = next(iter(pair.parameters()), None)
        self.device = torch.device(device) if device is not None else (
            ref.device if ref is not None else torch.device("cpu"))  # fmt: skip
        self.dtype = ref.dtype if ref is not None else torch.get_default_dtype()

    def _ready(self, batch):
        x, mask, context = unpack_batch(batch)
        x = x.to(self.device, self.dtype)
        mask = missing_as_nan(x, None if mask is None else mask.to(self.device))
        if mask is not None:
            mask = check_mask(mask, x)
            mask = None if bool(mask.all()) else mask
        check_observed_finite(x, mask, "a batch of the data")
        check_rows_observed(mask, "a batch of the data")
        if context is not None:
            context = ({k: v.to(self.device) for k, v in context.items()}
                       if isinstance(context, dict) else context.to(self.device))  # fmt: skip
        return x, mask, self.pair.context_of(context, x)

    def first(self, B: int):
        if self.loader is not None:
            return self._ready(next(iter(self.loader)))
        return self._ready(_fetch(self.data, list(range(min(B, self.n)))))

    def epoch(self, order, start: int, B: int):
        if self.loader is not None:
            for batch in self.loader:
                yield self._ready(batch)
            return
        for i in range(start, self.n, B):
            yield self._ready(_fetch(self.data, order[i : i + B].tolist()))


def _fetch(data, indices: list[int]) -> dict:
    """Rows ``indices`` of a ``Dataset`` as a batch: read at once where it can
    (``__getitems__``, as ``DataLoader`` does), else row by row."""
    if hasattr(data, "__getitems__"):
        return collate_rows(data.__getitems__(indices))
    return collate_rows([data[i] for i in indices])


def _batch_mask(given, sampler, x, generator):
    """A minibatch's mask: the data's, and a fresh draw of ``sampler`` if there is one."""
    if sampler is None:
        return given
    shape = x.shape
    drawn = sampler(shape, generator=generator)
    if not isinstance(drawn, torch.Tensor) or drawn.dtype != torch.bool or drawn.shape != shape:
        raise ValueError(f"mask_sampler must return a bool tensor of shape {tuple(shape)}")
    drawn = drawn.to(x.device)
    return drawn if given is None else given & drawn


def _noisy(noise, ctx, generator):
    """A minibatch's context through ``noise`` (when there is one), checked to keep its keys and
    shapes."""
    if noise is None:
        return ctx
    out = noise(ctx, generator=generator)
    if (
        not isinstance(out, dict)
        or set(out) != set(ctx)
        or any(not isinstance(out[k], torch.Tensor) or out[k].shape != ctx[k].shape for k in ctx)
    ):
        raise ValueError("context_noise must return a dict of tensors like the context it got")
    return out


def _rows(context: dict, rows) -> dict | None:
    return {k: v[rows] for k, v in context.items()} if context else None


def _restore(path, settings, pair, optimizer, shuffle, generators, device, trust=False):
    """Load a checkpoint written by :func:`fit` into the live objects; returns the history and
    the loop position."""
    # on the CPU: random states stay there, the rest is copied to the live tensors' devices
    record = read_checkpoint(path, trust=trust)
    differ = [
        f"{k}: {record['settings'].get(k)!r} in the checkpoint, {v!r} now"
        for k, v in settings.items()
        if record["settings"].get(k) != v
    ]
    if differ:
        raise ValueError(f"cannot resume from {path}: settings differ ({'; '.join(differ)})")
    if "state" in record:
        pair.load_state_dict(record["state"])
    else:  # a trusted 0.1 pickle from before pairs were wrapped: the model objects themselves
        pair.parts[0].load_state_dict(record["model"].state_dict())
        if record.get("guide") is not None:
            pair.parts[1].load_state_dict(record["guide"].state_dict())
    live = pair.param_store_tensors()
    for name, value in record.get("pyro_params", {}).items():
        if name not in live:
            raise ValueError(f"cannot resume from {path}: the pair has no pyro.param {name!r}")
        with torch.no_grad():
            live[name].copy_(value)
    optimizer.load_state_dict(record["optimizer"])
    pyro.util.set_rng_state(record["rng"])
    if record["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(record["cuda_rng"])
    shuffle.set_state(record["shuffle"])
    masks, noise = generators
    if record.get("masks") is not None:
        masks.set_state(record["masks"])
    if record.get("context_rng") is not None:
        noise.set_state(record["context_rng"])
    loop = dict(record["loop"])
    if loop["order"] is not None:
        loop["order"] = loop["order"].to(device)
    return FitHistory(**record["history"]), loop
