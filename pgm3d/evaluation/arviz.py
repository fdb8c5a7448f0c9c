"""The ArviZ calls pgm3d makes, written so that arviz 0.x and 1.x both work.

arviz 0.x: ``az.from_dict(posterior={...}, ...)``, ``az.psislw``, ``az.rhat``/``az.ess``; arviz 1.x
(Python >= 3.12): ``az.from_dict({"posterior": {...}})`` and the array functions of
``arviz_stats``. ArviZ is imported lazily, so importing pgm3d stays fast.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["from_groups", "from_posterior", "psislw", "rhat_ess"]


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


def from_groups(groups: dict[str, dict[str, np.ndarray]], dims: dict[str, dict]):
    """ArviZ data with several groups (``posterior``, ``sample_stats``, ``log_likelihood``,
    ``observed_data`` ...); arrays of every group but ``observed_data`` are ``(chain, draw,
    ...)``. ``dims[group][variable]`` names the dimensions after those: per group, since one
    name (``x``) is the ``(row, entry)`` data in one group and a ``(row,)`` log-likelihood in
    another. Empty groups are left out.

    :returns: arviz 0.x ``InferenceData`` or a 1.x ``DataTree``.
    """
    az = _arviz()
    parts = {g: v for g, v in groups.items() if v}
    if _major(az) >= 1:
        import xarray as xr

        trees = {g: az.from_dict({g: v}, dims=dims.get(g)) for g, v in parts.items()}
        return xr.DataTree.from_dict({g: t[g].to_dataset() for g, t in trees.items()})
    datas = {g: az.from_dict(**{g: v}, dims=dims.get(g)) for g, v in parts.items()}
    return az.InferenceData(**{g: getattr(d, g) for g, d in datas.items()})


def psislw(log_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed log-weights and :math:`\\hat k` along the last axis of ``log_w``."""
    az = _arviz()
    if _major(az) >= 1:
        from arviz_stats.base import array_stats

        return array_stats.psislw(log_w, axis=-1)
    return az.psislw(log_w)


def rhat_ess(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat and bulk ESS (Vehtari et al. 2021) of ``(chain, draw, ...)``
    samples, each shaped like one draw (the reference for :mod:`pgm3d.evaluation.convergence`, which
    pgm3d uses: ArviZ loops over variables). A chain that never moves has no within-chain variance:
    its R-hat is inf or NaN, which is the answer, so numpy's warning about it is silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _rhat_ess(samples)


def _rhat_ess(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    az = _arviz()
    if _major(az) >= 1:
        from arviz_stats.base import array_stats

        moved = np.moveaxis(samples, (0, 1), (-2, -1))
        rhat = array_stats.rhat(moved, chain_axis=-2, draw_axis=-1)
        ess = array_stats.ess(moved, chain_axis=-2, draw_axis=-1)
        return np.asarray(rhat), np.asarray(ess)
    data = az.convert_to_dataset({"v": samples})
    return az.rhat(data)["v"].values, az.ess(data)["v"].values
