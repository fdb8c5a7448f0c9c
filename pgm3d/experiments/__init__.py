"""Reproductions of the papers' experiments; each is a function and a ``pgm3d experiment``."""

from pgm3d.experiments.autoguides import run_autoguides
from pgm3d.experiments.classify import run_classify
from pgm3d.experiments.missing_fa import run_missing_fa
from pgm3d.experiments.mvae import run_mvae
from pgm3d.experiments.shapes import run_shapes
from pgm3d.registry import Registry

EXPERIMENTS: Registry = Registry("experiment")
EXPERIMENTS.register("missing-fa")(run_missing_fa)
EXPERIMENTS.register("shapes")(run_shapes)
EXPERIMENTS.register("classify")(run_classify)
EXPERIMENTS.register("mvae")(run_mvae)
EXPERIMENTS.register("autoguides")(run_autoguides)

__all__ = [
    "EXPERIMENTS",
    "run_autoguides",
    "run_classify",
    "run_missing_fa",
    "run_mvae",
    "run_shapes",
]
