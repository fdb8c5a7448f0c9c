"""Early stopping on a validation set, as a :func:`~pgm3d.inference.fit` callback (the thesis's
quantitative ShapeVAE experiments, Nash & Williams 2017 §3.5.1: "training was halted based on
performance on a validation set")."""

from __future__ import annotations

import copy
import math

import pyro.util
import torch

from pgm3d.contract import as_model

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Score the model on validation rows after every ``every`` epochs by the importance-
    weighted bound :math:`\\hat{\\mathcal L}_K` (:func:`~pgm3d.inference.log_likelihood`, the
    plain ELBO at ``K = 1``) of the observed entries, keep the parameters of the best score,
    and ask :func:`fit` to stop after ``patience`` evaluations without an improvement larger
    than ``min_delta`` nats per row. Call :meth:`restore` after :func:`fit` to load the best
    parameters.

    Every evaluation draws its samples from the same ``seed`` (common random numbers, so two
    epochs' scores differ by the parameters, not the draws) and restores torch's and Pyro's
    random states afterwards, so a run with early stopping follows the same training path as
    one without until it stops, and a resumed run stays bit-identical.

    :param model: the model being fitted (a pgm3d model or anything
        :func:`~pgm3d.contract.as_model` accepts).
    :param x: ``(V, D)`` validation rows. :param mask: their observation mask (or NaNs in ``x``).
    :param int patience: evaluations without improvement before stopping.
    :param int every: epochs between evaluations.
    :param int num_samples: ``K`` of the bound.
    :param float min_delta: the improvement that counts, in nats per row.
    :param context: the validation rows' conditioning inputs, if the model takes any.
    :param guide: the proposal of the bound, instead of the model's guide (e.g. a CVAE's prior
        network when training the GSNN, whose recognition network is never trained).
    :param int seed: the evaluations' seed.
    :param bool stop: stop training (default); with False the callback only keeps the best
        parameters while training runs its full length -- the thesis's protocol, which takes
        samples from the fully trained model and scores the early-stopped one.

    :ivar list scores: ``(epoch, mean bound)`` per evaluation. :ivar int best_epoch: the
        epoch of the kept parameters (1-based, as :class:`~pgm3d.inference.CSVLog` counts).
    """

    def __init__(
        self, model, x, mask=None, *, patience: int = 10, every: int = 1, num_samples: int = 10,
        min_delta: float = 0.0, context=None, guide=None, seed: int = 0, stop: bool = True,
    ):  # fmt: skip
        for name, value in (("patience", patience), ("every", every), ("num_samples", num_samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.model, self.pair = model, as_model(model)
        self.x, self.mask, self.context = x, mask, context
        self.patience, self.every, self.num_samples, self.min_delta = (
            patience, every, num_samples, min_delta,
        )  # fmt: skip
        self.seed, self.stop, self.guide = seed, stop, guide
        self.scores: list[tuple[int, float]] = []
        self.best = -math.inf
        self.best_epoch = 0
        self.best_state = None
        self._waited = 0

    def score(self) -> float:
        """The mean validation bound of the current parameters, nats per row."""
        from pgm3d.inference.likelihood import log_likelihood

        state = pyro.util.get_rng_state()
        modules = [m for m in (self.model, self.pair) if isinstance(m, torch.nn.Module)]
        modes = [m.training for m in modules]
        try:
            for m in modules:
                m.eval()
            pyro.set_rng_seed(self.seed)
            with torch.no_grad():
                ll = log_likelihood(
                    self.model, self.x, self.mask, context=self.context,
                    num_samples=self.num_samples, guide=self.guide,
                )  # fmt: skip
        finally:
            for m, mode in zip(modules, modes, strict=True):
                m.train(mode)
            pyro.util.set_rng_state(state)
        return float(ll.nanmean())

    def __call__(self, epoch: int, history) -> bool:
        if (epoch + 1) % self.every:
            return False
        value = self.score()
        self.scores.append((epoch + 1, value))
        if value > self.best + self.min_delta:
            self.best, self.best_epoch, self._waited = value, epoch + 1, 0
            store = pyro.get_param_store()
            self.best_state = (
                copy.deepcopy(self.pair.state_dict()),
                {k: store[k].unconstrained().detach().clone() for k in store.keys()},
            )
            return False
        self._waited += 1
        return self.stop and self._waited >= self.patience

    def restore(self):
        """Load the best parameters seen into the model (nothing if none was scored); returns
        the model."""
        if self.best_state is not None:
            state, params = self.best_state
            self.pair.load_state_dict(state)
            store = pyro.get_param_store()
            with torch.no_grad():
                for k, value in params.items():
                    if k in store:  # pyro.param sites, e.g. of a user's function-style guide
                        store[k].unconstrained().copy_(value)
        return self.model
