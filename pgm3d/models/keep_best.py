"""Early stopping for the plain-PyTorch networks trained beside the Pyro models (the CVAE's
baseline, the inversion chapter's classifiers and MSE decoders)."""

from __future__ import annotations

import math

from torch import nn

__all__ = ["KeepBest"]


class KeepBest:
    """Keep a network's weights at its best validation score and say when ``patience``
    scores in a row have not beaten it.

    :param net: the network whose ``state_dict`` is kept.
    :param int patience: scores without improvement before :meth:`update` says stop.
    :param bool higher_is_better: accuracy (True) or a loss (False).
    """

    def __init__(self, net: nn.Module, patience: int, *, higher_is_better: bool = False):
        self.net, self.patience, self.sign = net, patience, 1.0 if higher_is_better else -1.0
        self.best = -math.inf
        self.state = None
        self.waited = 0

    def update(self, score: float) -> bool:
        """Record a validation score; True when training should stop."""
        if self.sign * score > self.best:
            self.best, self.waited = self.sign * score, 0
            self.state = {k: v.clone() for k, v in self.net.state_dict().items()}
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore(self) -> nn.Module:
        """Load the best weights seen (nothing if none was scored); returns the network."""
        if self.state is not None:
            self.net.load_state_dict(self.state)
        return self.net
