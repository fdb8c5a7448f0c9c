"""``pgm3d sample``: draw samples from a saved model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgm3d.data.images import DATASETS as IMAGE_DATASETS
from pgm3d.settings import check_run, option
from pgm3d.tasks._run import SavedRunSettings, label, load_run
from pgm3d.tasks.results import write_results

__all__ = ["SampleSettings", "run_sample"]


@dataclass
class SampleSettings(SavedRunSettings):
    """The settings of :func:`run_sample`."""

    num: int = option(16, "samples", short="n")
    noise: bool = option(False, "add observation noise (default: decoder means)")


def run_sample(
    settings: SampleSettings,
    out: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
) -> dict:
    """Draw ``settings.num`` samples from a saved model: decoder means, or with
    ``settings.noise`` draws with observation noise. Writes ``samples.npz``, ``samples.png``
    (shape, voxel, scene and image data) and ``metrics.json``.

    :returns: the metrics, also in ``out/metrics.json``.
    """
    check_run(seed, device)
    s = settings
    model, info = load_run(s.run, device, s.trust_file)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n, mean = s.num, not s.noise
    g = torch.Generator(device=device).manual_seed(seed)
    shapes = None
    with torch.no_grad():
        if model.data_kind == "shapes":  # points, normals and which points exist, for the figure
            shapes = model.sample_shapes(n, generator=g, mean=mean)
            rows = shapes["rows"]
        else:  # rows, grids for voxel models; pixel probabilities or draws for scenes
            rows = model.sample(n, generator=g, mean=mean)
    image_shape = None
    if info.get("data") in IMAGE_DATASETS:
        image_shape = IMAGE_DATASETS.info(info["data"]).get("image_shape")
    from pgm3d.viz.runs import samples_figure  # matplotlib: only when drawing

    samples_figure(
        out / "samples.png", model, rows, shapes=shapes, image_shape=image_shape, title=label(model)
    )
    np.savez_compressed(out / "samples.npz", x=rows.reshape(n, -1).cpu().numpy())
    metrics = {"model": label(model), "samples": n, "mean": mean, "seed": seed}
    write_results(out, metrics, None)
    return metrics
