"""The two ArviZ calls pgm3d makes, written so that arviz 0.x and 1.x both work.

arviz 0.x: ``az.from_dict(posterior={...})`` and ``az.psislw(log_w)``; arviz 1.x (Python >= 3.12):
``az.from_dict({"posterior": {...}})`` and ``arviz_stats``'s array ``psislw``. ArviZ is imported
lazily, so importing pgm3d stays fast.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["from_posterior", "psislw"]


def _arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # 0.x announces the 1.x refactor
        import arviz

    return arviz


def _major(az) -> int:
    return int(az.__version__.split(".")[0])


def from_posterior(posterior: dict[str, np.ndarray]):
    """ArviZ data with one ``posterior`` group; arrays are ``(chain, draw, ...)``."""
    az = _arviz()
    if _major(az) >= 1:
        return az.from_dict({"posterior": posterior})
    return az.from_dict(posterior=posterior)


def psislw(log_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed log-weights and :math:`\\hat k` along the last axis of ``log_w``."""
    az = _arviz()
    if _major(az) >= 1:
        from arviz_stats.base import array_stats

        return array_stats.psislw(log_w, axis=-1)
    return az.psislw(log_w)
