"""``pgm3d bench``: training and completion throughput of one model on one device."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from pgm3d._progress import progress_bar
from pgm3d.data.datasets import DATA_HELP, DataSettings
from pgm3d.inference import OBJECTIVES, complete, fit
from pgm3d.inference.base import method_unit
from pgm3d.models import MODELS, build_model, model_rows, trained_by_sgd
from pgm3d.settings import check_run, option
from pgm3d.tasks._run import hide, method_kwargs, methods_for
from pgm3d.tasks.results import markdown_table, write_results

__all__ = ["BenchSettings", "run_bench"]

#: the sampler settings of the completion timings: short chains, a few proposals
_SMALL = {"chains": 1, "warmup": 10, "thin": 1, "num_samples": 10, "num_proposals": 100}


@dataclass
class BenchSettings(DataSettings):
    """The settings of :func:`run_bench`."""

    QUICK = {"steps": 10, "rows": 20}

    data: str = option("digits", DATA_HELP)
    model: str = option("vae", "the model, by registry name", choices=MODELS)
    latent_dim: int = option(8, "size of z")
    batch_size: int = option(100, "rows per training step")
    steps: int = option(50, "training steps timed")
    rows: int = option(100, "rows completed")
    num_particles: int = option(8, "samples per data point in training")


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _timed(device, fn):
    """``fn()`` and its seconds, the device synchronised before and after."""
    _sync(device)
    t = time.perf_counter()
    result = fn()
    _sync(device)
    return result, time.perf_counter() - t


def run_bench(
    settings: BenchSettings,
    out: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
) -> dict:
    """Throughput of training (steps/s per objective) and completion (rows/s per method) of one
    model on one device, each timed after a warm-up. Writes ``metrics.json`` and ``table.md``.

    :returns: the metrics, also in ``out/metrics.json``.
    """
    check_run(seed, device)
    s = settings
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    split = s.open(seed)
    torch.manual_seed(seed)
    model = build_model(s.model, split.train, latent_dim=s.latent_dim).to(device)
    x, mask = model_rows(model, split.train)
    rates = {}
    B = min(s.batch_size, x.shape[0])
    epochs = max(1, -(-s.steps * B // x.shape[0]))  # at least ``steps`` steps
    train = {"batch_size": B, "num_particles": s.num_particles, "progress": False}
    if trained_by_sgd(model):
        for name in progress_bar(OBJECTIVES.names(), desc="bench objectives", progress=progress):
            fit(model, x[:B], name, epochs=1, mask=mask[:B], **train)  # warm-up
            run = partial(fit, model, x, name, epochs=epochs, mask=mask, **train)
            history, seconds = _timed(device, run)
            key = f"train {name} (K={s.num_particles}, {B} rows per step)"
            rates[key] = history.steps / seconds
    test = split.test[: s.rows]
    xt, mt = model_rows(model, test)
    kept, _ = hide(model, split, test, xt, mt, seed=seed)  # parts of shapes, half of rows
    for method in progress_bar(
        methods_for(model, None), desc="bench completion", progress=progress
    ):
        opts = method_kwargs(method, _SMALL, seed, False)
        with torch.no_grad():
            complete(model, xt, kept, method, **opts)  # warm-up
            _, seconds = _timed(device, partial(complete, model, xt, kept, method, **opts))
        rates[f"complete {method} ({method_unit(method, opts)})"] = xt.shape[0] / seconds
    metrics = {
        "model": s.model,
        "data": s.data,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "throughput": rates,
    }
    table = markdown_table(
        ("what", "per second", "unit"),
        [(k, f"{v:.1f}", "steps" if k.startswith("train") else "rows") for k, v in rates.items()],
        title=f"Throughput of {s.model} on {s.data} ({device}, {torch.get_num_threads()} threads)",
    )
    write_results(out, metrics, table)
    return metrics
