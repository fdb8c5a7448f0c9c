"""Inference back ends, one per file, found by name through ``COMPLETION_METHODS``.

>>> from pgm3d.inference import complete
>>> result = complete(model, x, mask, method="sca")   # doctest: +SKIP
"""

# importing the back ends registers them
from pgm3d.inference import (  # noqa: F401
    exact,
    fca,
    hmc,
    importance,
    mean,
    mwg,
    nuts,
    pattern_mean,
    pseudo_gibbs,
    sca,
    vaeac,
)
from pgm3d.inference.adversarial import GANHistory, d_should_update, fit_gan
from pgm3d.inference.base import COMPLETION_METHODS, Completion, complete
from pgm3d.inference.denoising import DenoisingEncoder
from pgm3d.inference.early_stopping import EarlyStopping
from pgm3d.inference.elbo import ELBO, MeanFieldELBO
from pgm3d.inference.graph import check_guide, model_graph
from pgm3d.inference.hybrid import HybridObjective
from pgm3d.inference.iwae import IWAE, DReG
from pgm3d.inference.likelihood import log_likelihood
from pgm3d.inference.logs import CSVLog, EpochSummary, TensorBoardLog
from pgm3d.inference.objectives import OBJECTIVES, Objective
from pgm3d.inference.rws import RWS
from pgm3d.inference.samples import SampleCompletion
from pgm3d.inference.training import FitHistory, TrainingError, fit
from pgm3d.inference.vimco import VIMCO

__all__ = [
    "COMPLETION_METHODS",
    "ELBO",
    "IWAE",
    "OBJECTIVES",
    "RWS",
    "VIMCO",
    "CSVLog",
    "Completion",
    "DReG",
    "DenoisingEncoder",
    "EarlyStopping",
    "EpochSummary",
    "FitHistory",
    "GANHistory",
    "HybridObjective",
    "MeanFieldELBO",
    "Objective",
    "SampleCompletion",
    "TensorBoardLog",
    "TrainingError",
    "check_guide",
    "complete",
    "d_should_update",
    "fit",
    "fit_gan",
    "log_likelihood",
    "model_graph",
]
