r"""Rezende et al. 2016 (supplement §A.6–A.10): the sequential volumetric model on Primitives
and MNIST3D — bounds against the number of steps and against non-sequential models, samples,
MCMC completion of the missing left half, class- and view-conditional generation.

Protocol (at this scale: ``resolution³`` canvases, pgm3d's generated data):

1. for each data set (:mod:`pgm3d.data.volumes`), ``n_train`` training and ``n_test`` test
   volumes; train :class:`~pgm3d.models.SequentialVolumeModel` for each ``T`` in ``steps`` and
   the baselines — the VSL (Liu et al. 2017, its architecture at 30³/32³) and a plain
   convolutional VAE (:class:`~pgm3d.models.VoxelVAE`) — each by the ELBO (KL weight 1, so the
   bounds compare) with Adam; report the test IWAE bound per volume (``iwae_samples``), the
   last training ELBO, the parameter count and the time per epoch;
2. **samples** of the largest-``T`` model beside training volumes (Figs. 2–3);
3. **completion** of the missing left half (§A.7, A.10) of ``completion_rows`` test volumes by
   pseudo-Gibbs (eq. 4's kernel) and Metropolis-within-Gibbs from the same start, one chain of
   ``completion_steps`` steps each: the error (share of missing voxels wrong in the chain's
   draw) per step, and the figure of the first 8 steps and the last (Figs. 4–6);
4. **class-conditional** generation (§A.8) on the first data set with classes: samples per
   class, and the test bound given the true class beside the unconditional one;
5. **view-conditional** generation (§A.9): trained on volumes with a silhouette from a random
   azimuth as the context; for test views, several samples, each seen from the view's angle
   (:math:`\hat x`) and from two other angles (:math:`r^1, r^2`); the silhouette IoU of
   :math:`\hat x` with the view against that of the unconditional model's samples, and the
   spread of the samples' unseen sides.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pyro
import torch

from pgm3d._log import stage
from pgm3d.data import open_data
from pgm3d.data.masks import half_volume_mask
from pgm3d.evaluation.geometry import occupancy_iou
from pgm3d.inference import complete, fit, log_likelihood
from pgm3d.models import VSL, SequentialVolumeModel, VoxelVAE
from pgm3d.models.spatial import orthographic_silhouette
from pgm3d.settings import Settings, check_run, option
from pgm3d.tasks.results import json_safe, markdown_table, write_results

__all__ = ["VolumesSettings", "run_volumes"]

DATASETS = ("primitives", "mnist3d", "necker-cube")
BASELINES = ("vsl", "conv-vae")


@dataclass
class VolumesSettings(Settings):
    """The settings of :func:`run_volumes`; :meth:`quick` is a smoke test of about a minute."""

    QUICK = {
        "datasets": ("primitives",),
        "n_train": 40,
        "n_test": 10,
        "steps": (1, 2),
        "epochs": 1,
        "iwae_samples": 4,
        "completion_rows": 2,
        "completion_steps": 10,
        "conditional_epochs": 1,
        "view_rows": 2,
        "view_samples": 2,
    }

    datasets: tuple[str, ...] = option(
        ("primitives", "mnist3d"), "volume data sets", many=True, choices=DATASETS
    )
    resolution: int = option(32, "canvas size per axis (32 lets the VSL, 30³/32³, run beside)")
    n_train: int = option(1000, "training volumes per data set")
    n_test: int = option(200, "test volumes per data set")
    steps: tuple[int, ...] = option((1, 4, 8), "numbers of steps T compared", many=True)
    latent_dim: int = option(8, "size of each step's latent")
    hidden: int = option(256, "size of the recurrent state")
    patch: int = option(8, "size per axis of each written and read patch")
    baselines: tuple[str, ...] = option(
        BASELINES, "non-sequential models beside", many=True, choices=BASELINES
    )
    conv_vae_channels: tuple[int, ...] = option(
        (32, 64), "the conv VAE's two convolutions' channels (3 6: about the sequential model's "
        "parameter count)", many=True,
    )  # fmt: skip
    epochs: int = option(50, "training epochs of each model")
    batch_size: int = option(50, "volumes per step")
    lr: float = option(1e-3, "Adam learning rate")
    iwae_samples: int = option(100, "K of the test IWAE bound")
    completion_rows: int = option(8, "test volumes completed")
    completion_steps: int = option(100, "MCMC steps of each completion chain")
    conditional: tuple[str, ...] = option(
        ("class", "view"), "conditional models trained", many=True, choices=("class", "view")
    )
    conditional_epochs: int = option(50, "training epochs of the conditional models")
    view_rows: int = option(4, "test views in the view-conditional figure")
    view_samples: int = option(3, "samples per test view")
    figure_rows: int = option(8, "volumes per row of the samples figure")

    def __post_init__(self):
        super().__post_init__()
        for name in ("resolution", "n_train", "n_test", "latent_dim", "hidden", "patch",
                     "epochs", "batch_size", "iwae_samples", "completion_rows",
                     "completion_steps", "conditional_epochs", "view_rows", "view_samples",
                     "figure_rows"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.steps or min(self.steps) < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.resolution % 4:
            raise ValueError(f"resolution must be a multiple of 4, got {self.resolution}")
        if "vsl" in self.baselines and self.resolution not in (30, 32):
            raise ValueError(
                f"the VSL runs at 30³ or 32³; with --resolution {self.resolution} leave it out "
                "(--baselines conv-vae)"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if len(self.conv_vae_channels) != 2 or min(self.conv_vae_channels) < 1:
            raise ValueError(
                f"conv_vae_channels must be two positive ints, got {self.conv_vae_channels}"
            )


def _spread(count: int, n: int) -> torch.Tensor:
    """``n`` indices spread evenly over ``count`` items: the data sets are ordered by class, so
    the first rows would all be spheres."""
    return torch.linspace(0, count - 1, min(n, count)).round().long()


def _rows(voxels: torch.Tensor, device) -> torch.Tensor:
    return voxels.reshape(voxels.shape[0], -1).float().to(device)


def _train(model, x, s: VolumesSettings, seed: int, epochs: int, context=None) -> dict:
    start = time.perf_counter()
    h = fit(model, x, "elbo", context=context, epochs=epochs, batch_size=s.batch_size, lr=s.lr,
            seed=seed, progress=False)  # fmt: skip
    seconds = time.perf_counter() - start
    return {"train_elbo": h.bound[-1], "seconds_per_epoch": seconds / epochs}


def _test_bound(model, x, s: VolumesSettings, seed: int, context=None) -> float:
    pyro.set_rng_seed(seed + 1)
    with torch.no_grad():
        return float(log_likelihood(model, x, num_samples=s.iwae_samples, context=context).mean())


def _sequential(s: VolumesSettings, T: int, **kw) -> SequentialVolumeModel:
    return SequentialVolumeModel(s.resolution, T, s.latent_dim, s.hidden, s.patch, **kw)


def _baseline(name: str, s: VolumesSettings):
    if name == "vsl":
        return VSL(s.resolution)
    return VoxelVAE(s.resolution, latent_dim=max(s.steps) * s.latent_dim,
                    channels=tuple(s.conv_vae_channels))  # fmt: skip


def run_volumes(
    settings: VolumesSettings | None = None,
    out: str | Path | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> dict:
    """Run the experiment; write its tables and figures into ``out``.

    :returns: the metrics dictionary also written to ``metrics.json``.
    """
    start = time.perf_counter()
    check_run(seed, device)
    s = settings or VolumesSettings()
    out = None if out is None else Path(out)
    bounds, completion, kept = {}, {}, {}
    for name in s.datasets:
        data = open_data(name, n_train=s.n_train, n_test=s.n_test, resolution=s.resolution,
                         seed=seed)  # fmt: skip
        x, xt = _rows(data.train.voxels, device), _rows(data.test.voxels, device)
        bounds[name] = {}
        models = {f"sequential T={T}": (lambda T=T: _sequential(s, T)) for T in s.steps}
        models |= {b: (lambda b=b: _baseline(b, s)) for b in s.baselines}
        for label, make in models.items():
            with stage(f"{name}: {label} ({s.epochs} epochs)"):
                torch.manual_seed(seed)
                model = make().to(device)
                row = _train(model, x, s, seed, s.epochs)
                row["test_iwae"] = _test_bound(model, xt, s, seed)
                row["parameters"] = sum(p.numel() for p in model.parameters())
                bounds[name][label] = row
                if label == f"sequential T={max(s.steps)}":
                    kept[name] = (model, data)
        model, _ = kept[name]
        with stage(f"{name}: completing the missing left half"):
            picked = _spread(len(xt), s.completion_rows).to(xt.device)
            completion[name], chains = _completion(model, xt[picked], s, seed)
        if out is not None:
            _samples_figure(out / f"samples_{name}.png", model, x, s, seed)
            _completion_figure(out / f"completion_{name}.png", chains, s)
    conditional = {}
    if "class" in s.conditional:
        conditional["class"] = _class_conditional(s, seed, device, out, bounds)
    if "view" in s.conditional:
        conditional["view"] = _view_conditional(s, seed, device, out, kept)
    metrics = {
        "experiment": "volumes",
        "seed": seed,
        "settings": s.as_dict(),
        "bounds": bounds,
        "completion": completion,
        "conditional": conditional,
        "findings": _findings(bounds, completion, conditional, s),
        "seconds": time.perf_counter() - start,
    }
    if out is not None:
        write_results(out, json_safe(metrics), _table(metrics, s))
        _completion_curves(out / "completion_error.png", completion)
    return metrics


def _completion(model, truth: torch.Tensor, s: VolumesSettings, seed: int):
    """One chain per method from the same start: the error per step on the missing half.

    :returns: ``(metrics, chains)``: per method the errors; for the figure, the first row's
        truth, mask and each method's draws.
    """
    mask = half_volume_mask(truth.shape, s.resolution, axis=0)  # x < 0 missing: the left half
    result, chains = {}, {"truth": truth[0].cpu(), "mask": mask[0].cpu()}
    for method in ("pseudo_gibbs", "mwg"):
        done = complete(model, truth, mask, method, chains=1, warmup=0, thin=1,
                        num_samples=s.completion_steps, seed=seed)  # fmt: skip
        draws = done.samples["x"][0]  # (steps, rows, D)
        wrong = (draws.round() != truth).float()[:, ~mask].reshape(len(draws), len(truth), -1)
        error = wrong.mean((-1, -2))  # share of missing voxels wrong, by step
        result[method] = {
            "error_by_step": error.tolist(),
            "first_step": float(error[0]),
            "last_step": float(error[-1]),
            "posterior_mean_error": float(((done.x > 0.5).float() != truth)[~mask].float().mean()),
        }
        if method == "mwg" and done.accept_rate is not None:
            result[method]["acceptance"] = float(done.accept_rate.mean())
        chains[method] = draws[:, 0].cpu()
    return result, chains


def _class_conditional(s, seed, device, out, bounds) -> dict:
    name = next((d for d in s.datasets if d != "necker-cube"), None)
    if name is None:
        return {}
    data = open_data(name, n_train=s.n_train, n_test=s.n_test, resolution=s.resolution, seed=seed)
    x, xt = _rows(data.train.voxels, device), _rows(data.test.voxels, device)
    classes = data.train.class_names
    T = max(s.steps)
    with stage(f"{name}: class-conditional T={T} ({s.conditional_epochs} epochs)"):
        torch.manual_seed(seed)
        model = _sequential(s, T, context="class", num_classes=len(classes)).to(device)
        row = _train(model, x, s, seed, s.conditional_epochs, {"c": data.train.labels})
        row["test_iwae"] = _test_bound(model, xt, s, seed, {"c": data.test.labels})
    row["unconditional_test_iwae"] = bounds[name][f"sequential T={T}"]["test_iwae"]
    row["data"] = name
    if out is not None:
        n = s.figure_rows
        c = torch.arange(len(classes)).repeat_interleave(n)
        g = torch.Generator(device=device).manual_seed(seed)
        grids = model.sample(len(c), c=c, mean=True, generator=g) > 0.5
        title = f"{name}: samples given each class (Fig. 7)"
        _voxel_grid(out / f"class_conditional_{name}.png", grids, len(classes), n, classes, title)
    return row


def _views(voxels: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    azimuth = torch.rand(len(voxels), generator=g) * 2 * math.pi
    return orthographic_silhouette(voxels.float(), azimuth), azimuth


def _view_conditional(s, seed, device, out, kept) -> dict:
    name = s.datasets[0]
    data = open_data(name, n_train=s.n_train, n_test=s.n_test, resolution=s.resolution, seed=seed)
    g = torch.Generator().manual_seed(seed + 7)
    views, _ = _views(data.train.voxels, g)
    test_views, azimuth = _views(data.test.voxels, g)
    x, xt = _rows(data.train.voxels, device), _rows(data.test.voxels, device)
    T = max(s.steps)
    with stage(f"{name}: view-conditional T={T} ({s.conditional_epochs} epochs)"):
        torch.manual_seed(seed)
        model = _sequential(s, T, context="view", view_size=s.resolution).to(device)
        row = _train(model, x, s, seed, s.conditional_epochs, {"c": views.to(device)})
        row["test_iwae"] = _test_bound(model, xt, s, seed, {"c": test_views.to(device)})
    k = s.view_samples
    picked = _spread(len(test_views), 50)
    rows = len(picked)
    test_views, azimuth = test_views[picked], azimuth[picked]
    truth = data.test.voxels[picked]
    gen = torch.Generator(device=device).manual_seed(seed)
    c = test_views[:rows].repeat(k, 1, 1).to(device)
    az = azimuth[:rows].repeat(k)
    cond = model.sample(rows * k, c=c, mean=True, generator=gen).cpu()
    plain = kept[name][0].sample(rows * k, mean=True, generator=gen).cpu()
    seen = orthographic_silhouette(cond, az)
    seen_plain = orthographic_silhouette(plain, az)
    other = orthographic_silhouette(cond, az + math.pi / 2)
    row |= {
        "data": name,
        "silhouette_iou": float(occupancy_iou(seen, c.cpu()).mean()),
        "unconditional_silhouette_iou": float(occupancy_iou(seen_plain, c.cpu()).mean()),
        # how much the samples of one view differ where the view does not see
        "unseen_side_spread": float(other.reshape(k, rows, -1).std(0).mean()),
        "seen_side_spread": float(seen.reshape(k, rows, -1).std(0).mean()),
        "volume_iou_with_truth": float(occupancy_iou(cond, truth.repeat(k, 1, 1, 1)).mean()),
        "unconditional_volume_iou_with_truth": float(
            occupancy_iou(plain, truth.repeat(k, 1, 1, 1)).mean()
        ),
    }
    if out is not None:
        _view_figure(out / f"view_conditional_{name}.png", c.cpu(), cond, az, s, rows)
    return row


def _findings(bounds, completion, conditional, s) -> dict:
    f = {}
    for name, rows in bounds.items():
        seq = [rows[f"sequential T={T}"]["test_iwae"] for T in sorted(s.steps)]
        if len(seq) > 1:
            f[f"{name}: more steps give a better test bound"] = all(
                b > a for a, b in itertools.pairwise(seq)
            )
        for b in s.baselines:
            f[f"{name}: the sequential model (T={max(s.steps)}) beats {b}"] = (
                seq[-1] > rows[b]["test_iwae"]
            )
    for name, c in completion.items():
        for method in ("pseudo_gibbs", "mwg"):
            f[f"{name}: {method} completion improves along the chain"] = (
                c[method]["last_step"] <= c[method]["first_step"]
            )
    if conditional.get("class"):
        c = conditional["class"]
        f["the class label raises the test bound"] = c["test_iwae"] > c["unconditional_test_iwae"]
    if conditional.get("view"):
        v = conditional["view"]
        f["samples given a view agree with it more than unconditional samples"] = (
            v["silhouette_iou"] > v["unconditional_silhouette_iou"]
        )
        # by a tenth at least: equal spreads (no ambiguity resolved either way) do not count
        f["samples given a view vary more on the unseen side than in the view"] = (
            v["unseen_side_spread"] > 1.1 * v["seen_side_spread"]
        )
    return f


def _table(m: dict, s: VolumesSettings) -> str:
    parts = [
        "# The sequential volumetric model (Rezende et al. 2016, supplement §A.6–A.10)\n\n",
        f"{s.resolution}³ canvases, {s.n_train} training and {s.n_test} test volumes per data "
        f"set; every model trained {s.epochs} epochs by the ELBO (KL weight 1), Adam {s.lr}, "
        f"batches of {s.batch_size}. Test bound: IWAE with K = {s.iwae_samples}, nats per "
        "volume (higher is better).\n\n",
    ]
    for name, rows in m["bounds"].items():
        parts += [
            f"## {name}\n\n",
            markdown_table(
                ("model", "test IWAE", "train ELBO", "parameters", "s / epoch"),
                [
                    (
                        label,
                        f"{r['test_iwae']:.1f}",
                        f"{r['train_elbo']:.1f}",
                        f"{r['parameters']:,}",
                        f"{r['seconds_per_epoch']:.2f}",
                    )
                    for label, r in rows.items()
                ],
            ),
            "\n",
        ]
    parts.append("## Completing the missing left half: share of missing voxels wrong\n\n")
    steps = sorted({1, 2, 4, 8, s.completion_steps} & set(range(1, s.completion_steps + 1)))
    rows = []
    for name, c in m["completion"].items():
        for method in ("pseudo_gibbs", "mwg"):
            e = c[method]["error_by_step"]
            rows.append((f"{name}, {method}", *(f"{e[k - 1]:.4f}" for k in steps),
                         f"{c[method]['posterior_mean_error']:.4f}"))  # fmt: skip
    parts += [
        markdown_table(("data, method", *(f"step {k}" for k in steps), "mean of the chain"), rows),
        "\n",
    ]
    cond = m["conditional"]
    if cond.get("class"):
        c = cond["class"]
        parts += [
            f"## Class-conditional ({c['data']})\n\n",
            f"test IWAE given the class {c['test_iwae']:.1f} vs unconditional "
            f"{c['unconditional_test_iwae']:.1f} nats per volume.\n\n",
        ]
    if cond.get("view"):
        v = cond["view"]
        parts += [
            f"## View-conditional ({v['data']})\n\n",
            markdown_table(
                ("", "given the view", "unconditional"),
                [
                    (
                        "silhouette IoU with the view",
                        f"{v['silhouette_iou']:.3f}",
                        f"{v['unconditional_silhouette_iou']:.3f}",
                    ),
                    (
                        "volume IoU with the truth",
                        f"{v['volume_iou_with_truth']:.3f}",
                        f"{v['unconditional_volume_iou_with_truth']:.3f}",
                    ),
                ],
            ),
            f"\nSpread of the samples of one view (std per pixel): {v['seen_side_spread']:.3f} "
            f"in the view, {v['unseen_side_spread']:.3f} seen from 90° away. Test IWAE given "
            f"the view {v['test_iwae']:.1f}.\n\n",
        ]
    parts += [
        "## The paper's findings on our data\n\n",
        "\n".join(f"- {k}: {'holds' if v else 'does not hold'}" for k, v in m["findings"].items()),
        "\n",
    ]
    return "".join(parts)


# -- figures ------------------------------------------------------------------------------------
def _voxel_grid(path, grids, nrows, ncols, row_titles, title) -> None:
    from pgm3d.viz import render_shapes

    titles = [f"{row_titles[i // ncols]}" if i % ncols == 0 else "" for i in range(len(grids))]
    render_shapes(grids.float(), path, kind="voxels", ncols=ncols, titles=titles, title=title)


def _samples_figure(path, model, x, s, seed) -> None:
    R, n = s.resolution, s.figure_rows
    g = torch.Generator(device=x.device).manual_seed(seed)
    samples = model.sample(n, mean=True, generator=g).cpu() > 0.5
    train = x[_spread(len(x), n).to(x.device)].cpu().reshape(n, R, R, R) > 0.5
    _voxel_grid(path, torch.cat([train, samples]), 2, n, ["training data", "samples"],
                f"training volumes and samples of T={model.steps} (Figs. 2-3)")  # fmt: skip


def _completion_figure(path, c: dict, s) -> None:
    """Truth, what is seen, then steps 1-8 and the last step of each method's chain."""
    R = s.resolution
    shown = [k for k in range(min(8, s.completion_steps))] + [s.completion_steps - 1]
    grids, titles = [], []
    for method in ("pseudo_gibbs", "mwg"):
        draws = c[method]
        row = [c["truth"], c["truth"] * c["mask"]] + [draws[k] for k in shown]
        grids += [g.reshape(R, R, R) > 0.5 for g in row]
        titles += [f"{method}: truth", "left half missing", *(f"step {k + 1}" for k in shown)]
    from pgm3d.viz import render_shapes

    title = "MCMC completion of the missing left half (Figs. 4-6)"
    render_shapes(torch.stack(grids).float(), path, kind="voxels", ncols=len(shown) + 2,
                  titles=titles, title=title)  # fmt: skip


def _completion_curves(path, completion: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, c in completion.items():
        for method, style in (("pseudo_gibbs", "-"), ("mwg", "--")):
            e = c[method]["error_by_step"]
            ax.plot(range(1, len(e) + 1), e, style, label=f"{name}, {method}")
    ax.set_xlabel("MCMC step")
    ax.set_ylabel("share of missing voxels wrong")
    ax.set_xscale("log")
    ax.legend(fontsize=7)
    ax.set_title("Completion error along the chain")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _view_figure(path, views, samples, azimuth, s, rows) -> None:
    """Per test view (a row): the view c, then per sample x̂ (from c's angle), r¹ and r²."""
    from pgm3d.viz import image_grid

    k, shown = s.view_samples, _spread(rows, s.view_rows)
    cols, titles = [views[shown]], ["view c"]
    for j in range(k):
        v = samples[j * rows + shown]
        a = azimuth[j * rows + shown]
        for label, shift in (("x̂", 0.0), ("r¹", math.pi / 2), ("r²", math.pi)):
            cols.append(orthographic_silhouette(v, a + shift))
            titles.append(f"sample {j + 1} {label}")
    image_grid(torch.stack(cols, 1), path, cmap="gray_r", col_titles=titles,
               title="Recovering 3D from a view (Figs. 8-10): samples seen from c's angle (x̂) "
               "and 90° / 180° away (r¹, r²)")  # fmt: skip
