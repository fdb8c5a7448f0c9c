"""What the tasks on a saved model share: reading the model and the data it was fitted on,
hiding entries for completion, picking back ends and their options, and naming the model."""

from __future__ import annotations

from dataclasses import dataclass, fields, make_dataclass
from pathlib import Path

import torch

from pgm3d.config import CONFIG_FILE, read_config
from pgm3d.contract import WrappedModel
from pgm3d.data.datasets import DataSettings, DataSplit
from pgm3d.data.masks import hide_for_completion
from pgm3d.inference.base import default_methods, method_options
from pgm3d.saving import load
from pgm3d.settings import Settings, option

__all__ = [
    "RunDataSettings",
    "SavedRunSettings",
    "hide",
    "label",
    "load_run",
    "method_kwargs",
    "methods_for",
    "run_data",
    "scored_mean",
]


def _from_run(f):
    meta = f.metadata
    return f.name, f.type, option(None, meta["help"], kind=meta["kind"], shown="the run's")


#: :class:`~pgm3d.data.datasets.DataSettings` with every default "the run's": a task on a saved
#: model reads the data it was fitted on, and the settings given here replace single entries
RunDataSettings = make_dataclass(
    "RunDataSettings", [_from_run(f) for f in fields(DataSettings)], bases=(Settings,)
)
RunDataSettings.__doc__ = (
    "Where a task on a saved model takes its data from: the settings of the run that fitted it, "
    "with those given here in their place."
)
RunDataSettings.__module__ = __name__


@dataclass
class SavedRunSettings(Settings):
    """Which saved model a task reads, and whether an old pickled file may be read."""

    run: Path | None = option(
        None, "a model file or a `pgm3d fit` folder", kind=Path, required=True
    )
    trust_file: bool = option(
        False,
        "also read a model file written by pgm3d 0.1, a pickle: reading it can run any code it "
        "holds, so only for files you made or trust",
    )


def load_run(run: str | Path, device, trust: bool = False) -> tuple[object, dict]:
    """A saved model (a model file or a ``pgm3d fit`` folder) and the configuration it was
    fitted with (its file's, else the folder's ``config.toml``; empty when neither says)."""
    model, info = load(run, device=device, with_info=True, trust=trust)
    run = Path(run)
    saved = run / CONFIG_FILE if run.is_dir() else run.parent / CONFIG_FILE
    if not info and saved.is_file():
        info = read_config(saved)
    return model, info or {}


def run_data(info: dict, given) -> DataSettings:
    """The data settings a run was fitted with (``info``), each replaced by the one the
    settings ``given`` hold where that is not None."""
    names = [f.name for f in fields(DataSettings)]
    fitted = {k: v for k, v in info.items() if k in names}
    ours = {k: getattr(given, k) for k in names if getattr(given, k) is not None}
    return DataSettings.full(**{**fitted, **ours})


def label(model) -> str:
    """The model's class name (the wrapped model's, for a model with an autoguide)."""
    return model.name if isinstance(model, WrappedModel) else type(model).__name__


def scored_mean(ll: torch.Tensor) -> dict:
    """The mean test log-likelihood over the rows that have one (rows with no observed entry
    are NaN, not scored) and, when there are such rows, how many."""
    unscored = int(ll.isnan().sum())
    out = {"test_log_likelihood_nats_per_dim": float(ll.nanmean())}
    return {**out, "rows_not_scored": unscored} if unscored else out


def hide(model, split: DataSplit, test, x, mask, *, drop=None, p_missing=None, seed: int = 0):
    """The mask with entries hidden for completion, and the hidden (scored) entries
    (:func:`~pgm3d.data.masks.hide_for_completion`, seeded from ``seed``)."""
    return hide_for_completion(
        test,
        x,
        mask,
        drop=drop,
        p_missing=p_missing,
        image_shape=split.image_shape,
        part_of_entry=getattr(model, "part_of_entry", None),
        point_dim=getattr(model, "point_dim", None),
        generator=torch.Generator().manual_seed(seed * 1000 + 7),
    )


def methods_for(model, given) -> list[str]:
    """The methods given (the settings checked them against the registry), or those that run
    by default for ``model``."""
    return list(given) if given else default_methods(model)


def method_kwargs(method: str, settings, seed: int, progress) -> dict:
    """The settings a method takes (its keyword arguments: ``chains``, ``num_proposals`` ...),
    with the run's seed."""
    given = settings.as_dict() if isinstance(settings, Settings) else dict(settings)
    given.update(seed=seed, progress=progress)
    allowed = method_options(method)
    return {k: v for k, v in given.items() if k in allowed and k != "context"}
