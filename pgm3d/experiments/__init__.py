"""Reproductions of the papers' experiments; each is a function and a ``pgm3d experiment``."""

from pgm3d.experiments.missing_fa import run_missing_fa
from pgm3d.registry import Registry

EXPERIMENTS: Registry = Registry("experiment")
EXPERIMENTS.register("missing-fa")(run_missing_fa)

__all__ = ["EXPERIMENTS", "run_missing_fa"]
