"""Inference back ends, one per file, found by name through ``COMPLETION_METHODS``.

>>> from pgm3d.inference import complete
>>> result = complete(model, x, mask, method="sca")   # doctest: +SKIP
"""

from pgm3d.inference import exact, fca, mean, sca  # noqa: F401  (register the methods)
from pgm3d.inference.base import COMPLETION_METHODS, Completion, complete
from pgm3d.inference.denoising import DenoisingEncoder

__all__ = ["COMPLETION_METHODS", "Completion", "DenoisingEncoder", "complete"]
