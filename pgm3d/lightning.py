"""Training on more than one device through `Lightning <https://lightning.ai>`_ (DDP and the
rest of its strategies), with pgm3d's objectives as the loss.

pgm3d does not run processes or reduce gradients itself: :class:`ObjectiveModule` is a
``LightningModule`` whose ``training_step`` is any registered objective on a minibatch (the
same ``N / B`` scale, KL warm-up and Adam as :func:`pgm3d.inference.fit`), and
:class:`RowsDataModule` serves rows, their masks and their context from tensors, NumPy arrays
(memory-mapped ``.npy`` included) or any map-style ``Dataset``. Under ``strategy="ddp"`` each
process sees its share of every epoch (Lightning's ``DistributedSampler``) and DDP averages the
gradients, so ``P`` processes at batch ``B`` take the steps one process takes at batch ``P·B``.

Needs the ``lightning`` extra: ``pip install "pgm3d[lightning]"``.

Example (two CPU processes; the script is run again in each, as Lightning's ``ddp`` does)::

    from lightning import Trainer
    from pgm3d.lightning import ObjectiveModule, RowsDataModule

    module = ObjectiveModule(model, "elbo", lr=1e-3)
    data = RowsDataModule(x, batch_size=64)
    Trainer(strategy="ddp", accelerator="cpu", devices=2, max_epochs=10).fit(module, data)
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

try:
    import lightning as L
except ImportError as e:  # pragma: no cover - the extra is installed in development
    raise ImportError(
        "pgm3d.lightning needs Lightning: pip install 'pgm3d[lightning]' (or lightning>=2.2)"
    ) from e

from pgm3d._validation import check_float, check_int, check_seed
from pgm3d.data.batches import Rows, collate_rows
from pgm3d.inference.objectives import OBJECTIVES, Objective

__all__ = [
    "History",
    "ObjectiveModule",
    "Rows",
    "RowsDataModule",
    "SaveModel",
    "collate_rows",
    "fit_lightning",
    "release_process_group",
]


class RowsDataModule(L.LightningDataModule):
    """A ``LightningDataModule`` over pgm3d rows: a shuffled training loader (seeded) and,
    optionally, a validation loader.

    :param data: ``(N, D)`` tensor or array, or a map-style ``Dataset`` whose items are
        :class:`Rows`-like dicts.
    :param mask: bool ``(N, D)``, True = observed (tensor/array data only).
    :param context: row-aligned conditioning inputs (tensor/array data only).
    :param int batch_size: rows per step *per process*.
    :param validation: optional held-out rows (same kinds as ``data``).
    :param int num_workers: loader worker processes.
    :param bool shuffle: shuffle the training rows each epoch (off: in order; under DDP
        process ``r`` of ``P`` then takes rows ``r, r + P, ...``, so a step of ``P`` processes
        at batch ``B`` covers the rows of one process's step at batch ``P·B``; when ``N`` is
        not a multiple of ``P·B`` the last step differs, as ``DistributedSampler`` evens out
        the processes by repeating rows).
    :param int seed: seeds the shuffling.
    """

    def __init__(
        self,
        data,
        mask=None,
        context=None,
        *,
        batch_size: int = 128,
        validation=None,
        num_workers: int = 0,
        shuffle: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        check_int(batch_size, "batch_size")
        check_int(num_workers, "num_workers", low=0)
        check_seed(seed)
        self.train_rows = _as_rows(data, mask, context)
        self.val_rows = None if validation is None else _as_rows(validation, None, None)
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.shuffle = bool(shuffle)
        if validation is None:  # Lightning then runs no validation loop (and says nothing)
            self.val_dataloader = None

    @property
    def num_rows(self) -> int:
        """``N``, the number of training rows (the minibatch scale is ``N / B``)."""
        return len(self.train_rows)

    def example(self, rows: int | None = None) -> dict:
        """The first ``rows`` (default: a batch) training rows as one batch."""
        n = min(rows or self.batch_size, self.num_rows)
        return collate_rows([self.train_rows[i] for i in range(n)])

    def _loader(self, rows, shuffle: bool) -> DataLoader:
        trainer = self.trainer
        sampler = None
        if trainer is not None and trainer.world_size > 1:
            # ours, not the one Lightning would put in (which always shuffles the training
            # rows, with its own seed): shuffling and its seed stay the settings given here
            sampler = DistributedSampler(
                rows,
                num_replicas=trainer.world_size,
                rank=trainer.global_rank,
                shuffle=shuffle,
                seed=self.seed,
            )
        return DataLoader(
            rows,
            batch_size=self.batch_size,
            shuffle=shuffle if sampler is None else None,
            sampler=sampler,
            collate_fn=collate_rows,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed) if shuffle else None,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_rows, shuffle=self.shuffle)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_rows, shuffle=False)


def _as_rows(data, mask, context) -> Dataset:
    if isinstance(data, Dataset) and not isinstance(data, torch.Tensor):
        if mask is not None or context is not None:
            raise ValueError("give a Dataset's masks and context in its items, not beside it")
        return data
    if isinstance(data, str | Path):
        raise TypeError(
            "give the rows, not a path: np.load(path, mmap_mode='r') reads a .npy lazily"
        )
    return Rows(data, mask, context)


class ObjectiveModule(L.LightningModule):
    """A ``LightningModule`` that trains a model/guide pair with a pgm3d objective.

    ``training_step`` returns the objective's loss on the batch with the minibatch scale
    ``N / B`` (``N`` the rows of the whole data set, ``B`` this process's batch) and the KL
    weight of the warm-up; Adam (multi-tensor) over every parameter the pair uses, its learning
    rate multiplied by ``lr_decay`` after each epoch — the settings and update of
    :func:`pgm3d.inference.fit`. The logged ``bound`` is the mean per-datapoint bound.

    Parameters a pair keeps in Pyro's param store (``pyro.param`` sites rather than module
    parameters) are not DDP's to synchronise; this module broadcasts them from rank 0 before
    training and averages their gradients over the processes after each backward pass.

    :param model: any model :func:`~pgm3d.contract.as_model` accepts.
    :param objective: a name in :data:`~pgm3d.inference.OBJECTIVES` or an
        :class:`~pgm3d.inference.Objective`.
    :param guide: a guide to use instead of the model's own.
    :param int num_particles: samples of the guide per data point (IWAE's ``K``).
    :param float kl_weight: target KL weight :math:`\\alpha` (thesis eq. 3.5).
    :param int kl_warmup: optimiser steps over which :math:`\\alpha` rises linearly from 0.
    :param float lr: Adam's learning rate.
    :param float lr_decay: per-epoch factor on the learning rate.
    :param int num_rows: ``N`` for the minibatch scale (default: the datamodule's
        ``num_rows``, else the length of the training loader's dataset).
    :param dict example: a batch (``{"x", "mask", "context"}``) to trace the pair on before
        training (default: the datamodule's first rows).
    :param int seed: the Pyro/torch seed of each process is ``seed + rank``, so processes draw
        different guide samples.
    """

    def __init__(
        self,
        model,
        objective: str | Objective = "elbo",
        *,
        guide=None,
        num_particles: int = 1,
        kl_weight: float = 1.0,
        kl_warmup: int = 0,
        lr: float = 1e-3,
        lr_decay: float = 1.0,
        num_rows: int | None = None,
        example: dict | None = None,
        seed: int = 0,
    ):
        super().__init__()
        check_int(kl_warmup, "kl_warmup", low=0)
        check_float(lr, "lr", low=0.0, low_open=True)
        check_float(lr_decay, "lr_decay", low=0.0, high=1.0, low_open=True)
        check_float(kl_weight, "kl_weight", low=0.0)
        check_seed(seed)
        if num_rows is not None:
            check_int(num_rows, "num_rows")
        if isinstance(objective, Objective):
            self.objective = objective
        elif objective in OBJECTIVES:
            self.objective = OBJECTIVES[objective](
                model, guide, num_particles=num_particles, kl_weight=kl_weight
            )
        else:
            raise ValueError(f"unknown objective {objective!r}; one of {list(OBJECTIVES)}")
        self.kl_weight, self.kl_warmup = kl_weight, kl_warmup
        self.lr, self.lr_decay, self.seed = lr, lr_decay, seed
        self.num_rows, self._example = num_rows, example
        self._store: dict[str, torch.Tensor] = {}

    @property
    def pair(self):
        """The model/guide pair being trained (:class:`~pgm3d.contract.WrappedModel`)."""
        return self.objective.pair

    @property
    def model(self):
        """The model given (unwrapped): what :func:`pgm3d.save` writes."""
        return self.objective.pgm3d_model

    # ------------------------------------------------------------------ set-up
    def _prepare(self) -> None:
        """Trace the pair once on a batch, on the module's device (Lightning has moved it there
        by the time it asks for the optimiser), to know every parameter it uses."""
        batch = self._example
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if batch is None and datamodule is not None and hasattr(datamodule, "example"):
            batch = datamodule.example()
        if batch is None:
            raise ValueError(
                "ObjectiveModule traces the pair on a batch before training: train with a "
                "RowsDataModule, or give example={'x': rows} to the module"
            )
        if self.num_rows is None:
            self.num_rows = getattr(datamodule, "num_rows", None)
        x = batch["x"].to(self.device)
        mask = batch.get("mask")
        self.objective.prepare(
            x,
            None if mask is None else mask.to(self.device),
            _to(batch.get("context"), self.device),
        )
        self._store = self.pair.param_store_tensors()

    def on_train_start(self) -> None:
        if self.num_rows is None:  # the loaders exist by now
            self.num_rows = len(self.trainer.train_dataloader.dataset)
        world = self.trainer.world_size
        if world > 1:
            # DDP broadcast the modules' parameters; the param store's are ours to align
            for value in self._store.values():
                with torch.no_grad():
                    value.copy_(self.trainer.strategy.broadcast(value.detach(), src=0))
        import pyro

        pyro.set_rng_seed(self.seed + self.global_rank)

    def configure_optimizers(self):
        self._prepare()
        params = self.objective.trainable_parameters()
        if not params:
            raise ValueError("nothing to optimise: the model and guide have no parameters")
        optimizer = torch.optim.Adam(params, lr=self.lr, foreach=True)
        if self.lr_decay == 1.0:
            return optimizer
        decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.lr_decay)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": decay, "interval": "epoch"}}

    # ------------------------------------------------------------------ training
    def kl_weight_at(self, step: int) -> float:
        """:math:`\\alpha` at optimiser step ``step`` (from 0): the linear warm-up of
        :func:`pgm3d.inference.fit`."""
        if not self.kl_warmup:
            return self.kl_weight
        return self.kl_weight * min(1.0, (step + 1) / self.kl_warmup)

    def current_kl_weight(self) -> float:
        """:math:`\\alpha` at the next step."""
        return self.kl_weight_at(self.global_step)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x = batch["x"]
        loss = self.objective(
            x,
            batch.get("mask"),
            context=batch.get("context"),
            scale=self.num_rows / len(x),
            kl_weight=self.current_kl_weight(),
        )
        if not torch.isfinite(loss):
            from pgm3d.inference.training import TrainingError

            raise TrainingError(
                f"the {type(self.objective).__name__} loss became {loss.item()} at step "
                f"{self.global_step}; try a smaller lr"
            )
        self.log(
            "bound",
            self.objective.last_bound,
            on_step=False,
            on_epoch=True,
            batch_size=len(x),
            sync_dist=True,
        )
        self.log("kl_weight", self.current_kl_weight(), on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        x = batch["x"]
        self.objective(x, batch.get("mask"), context=batch.get("context"), scale=1.0)
        self.log(
            "val_bound", self.objective.last_bound, on_epoch=True, batch_size=len(x), sync_dist=True
        )

    def on_after_backward(self) -> None:
        if self.trainer.world_size > 1:
            for value in self._store.values():
                if value.grad is not None:
                    value.grad = self.trainer.strategy.reduce(value.grad, reduce_op="mean")


def _to(context, device):
    return None if context is None else {k: v.to(device) for k, v in context.items()}


class SaveModel(L.Callback):
    """Write the model with :func:`pgm3d.save` (a safetensors file :func:`pgm3d.load` reads,
    never a pickle) at the end of every ``every`` epochs and of training, from rank 0 only.

    :param path: the file.
    :param int every: epochs between writes.
    :param dict info: facts stored beside it (e.g. the command line's configuration).
    """

    def __init__(self, path: str | Path, every: int = 1, info: dict | None = None):
        check_int(every, "every")
        self.path, self.every, self.info = Path(path), every, info

    def _save(self, trainer, module: ObjectiveModule) -> None:
        if trainer.is_global_zero:
            from pgm3d.saving import save

            save(module.model, self.path, self.info)

    def on_train_epoch_end(self, trainer, module) -> None:
        if (trainer.current_epoch + 1) % self.every == 0:
            self._save(trainer, module)

    def on_train_end(self, trainer, module) -> None:
        self._save(trainer, module)


class History(L.Callback):
    """A :class:`~pgm3d.inference.FitHistory` of a Lightning run (the epoch-mean ``bound``,
    synchronised over the processes, the KL weight, steps and seconds), passed after each epoch
    to pgm3d's ``cb(epoch, history)`` callbacks (:mod:`pgm3d.inference.logs`, early stopping)
    on rank 0; a callback returning True stops training on every rank.

    :param callbacks: pgm3d callbacks.
    """

    def __init__(self, callbacks=()):
        from pgm3d.inference.training import FitHistory

        self.history = FitHistory()
        self.callbacks = list(callbacks)
        self._start = 0.0

    def on_train_start(self, trainer, module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        h = self.history
        value = trainer.callback_metrics.get("bound")
        h.bound.append(math.nan if value is None else float(value))
        h.kl_weight.append(float(module.kl_weight_at(trainer.global_step - 1)))
        h.steps, h.seconds = trainer.global_step, time.perf_counter() - self._start
        stop = False
        if trainer.is_global_zero:
            stop = any(cb(trainer.current_epoch, h) for cb in self.callbacks)
        if trainer.strategy.reduce_boolean_decision(stop, all=False):
            h.stopped_early = trainer.should_stop = True


def release_process_group() -> None:
    """Wait for every process, then take down the process group Lightning started.

    Lightning leaves it up after ``Trainer.fit``; gloo's worker threads then meet the
    interpreter's exit still running, which can abort a finished process ("terminate called
    without an active exception", exit -6). Nothing after training needs the group: rank 0
    evaluates and writes alone. A no-op in a single process.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def fit_lightning(
    model,
    data,
    objective: str | Objective = "elbo",
    *,
    mask=None,
    context=None,
    guide=None,
    num_particles: int = 1,
    kl_weight: float = 1.0,
    kl_warmup: int = 0,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    lr_decay: float = 1.0,
    strategy: str = "ddp",
    devices: int = 2,
    accelerator: str = "cpu",
    num_nodes: int = 1,
    callbacks=(),
    save_to: str | Path | None = None,
    info: dict | None = None,
    shuffle: bool = True,
    seed: int = 0,
    progress: bool | None = None,
    **trainer_options,
):
    """:func:`pgm3d.inference.fit` on a Lightning ``Trainer``: the same objective, scale, KL
    warm-up and optimiser, across ``devices × num_nodes`` processes of ``strategy``.

    ``batch_size`` is the rows of one optimiser step over all processes (each process takes
    ``batch_size / (devices · num_nodes)``), so a run keeps its meaning on any number of them.

    :param model: any model :func:`~pgm3d.contract.as_model` accepts.
    :param data: rows (tensor, array, memory-mapped ``.npy``) or a ``Dataset`` of
        :class:`Rows` items.
    :param str strategy: a Lightning strategy: ``"ddp"`` (this script is started again in each
        further process; under ``torchrun`` the processes exist already), ``"ddp_spawn"``,
        ``"auto"``, ...; DDP is told to allow parameters a step does not use (models often hold
        some, e.g. a Gaussian noise scale under a Bernoulli likelihood).
    :param int devices: devices (processes) per node.
    :param str accelerator: ``"cpu"``, ``"gpu"``, ``"auto"``.
    :param callbacks: pgm3d ``cb(epoch, history)`` callbacks, run on rank 0.
    :param save_to: write the model there with :func:`pgm3d.save` after each epoch and at the
        end (rank 0).
    :param dict info: stored beside the saved model.
    :param bool shuffle: shuffle the rows each epoch (seeded; see :class:`RowsDataModule`).
    :param trainer_options: further ``Trainer`` arguments (``precision``, ``logger``, ...).
    :returns: the :class:`~pgm3d.inference.FitHistory` (the same on every process).
    """
    check_int(epochs, "epochs")
    check_int(batch_size, "batch_size")
    check_int(devices, "devices")
    check_int(num_nodes, "num_nodes")
    processes = devices * num_nodes
    if batch_size % processes:
        raise ValueError(
            f"batch_size {batch_size} does not split over {processes} processes; give a "
            f"multiple of {processes}"
        )
    module = ObjectiveModule(
        model,
        objective,
        guide=guide,
        num_particles=num_particles,
        kl_weight=kl_weight,
        kl_warmup=kl_warmup,
        lr=lr,
        lr_decay=lr_decay,
        seed=seed,
    )
    rows = RowsDataModule(data, mask, context, batch_size=batch_size // processes,
                          shuffle=shuffle, seed=seed)  # fmt: skip
    history = History(callbacks)
    extra = [history] + ([SaveModel(save_to, info=info)] if save_to is not None else [])
    from pgm3d._progress import show_progress

    options = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "enable_progress_bar": show_progress(progress),
        **trainer_options,
    }
    options["callbacks"] = [*options.get("callbacks", []), *extra]
    if strategy in ("ddp", "ddp_spawn"):
        # a model may hold parameters a run does not use (a Gaussian noise scale under a
        # Bernoulli likelihood, a guide's branch for labelled rows): DDP must not wait for them
        strategy = f"{strategy}_find_unused_parameters_true"
    trainer = L.Trainer(
        strategy=strategy,
        devices=devices,
        num_nodes=num_nodes,
        accelerator=accelerator,
        max_epochs=epochs,
        **options,
    )
    with warnings.catch_warnings():
        # the module can validate; a run given no validation rows simply does not
        warnings.filterwarnings("ignore", ".*`validation_step` but have no `val_dataloader`")
        trainer.fit(module, rows)
    release_process_group()
    history.history.rank = trainer.global_rank
    return history.history
