"""pgm3d: deep latent-variable models of 3D shapes and images on Pyro and PyTorch.

Layers, in the direction data flows: :mod:`pgm3d.data` -> :mod:`pgm3d.models` ->
:mod:`pgm3d.inference` -> :mod:`pgm3d.evaluation` -> :mod:`pgm3d.experiments` / the
``pgm3d`` command.
"""

from pgm3d._log import logger as _logger  # noqa: F401  (its NullHandler, before any module logs)
from pgm3d.autoguide import AutoGuide, auto
from pgm3d.contract import ContractError, WrappedModel, wrap
from pgm3d.inference import COMPLETION_METHODS, Completion, DenoisingEncoder, complete
from pgm3d.models import MODELS, PPCA, FactorAnalysis
from pgm3d.saving import load, save

__version__ = "0.1.0"

__all__ = [
    "COMPLETION_METHODS",
    "MODELS",
    "PPCA",
    "AutoGuide",
    "Completion",
    "ContractError",
    "DenoisingEncoder",
    "FactorAnalysis",
    "WrappedModel",
    "__version__",
    "auto",
    "complete",
    "load",
    "save",
    "wrap",
]
