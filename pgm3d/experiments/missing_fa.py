"""Thesis ch. 4, Tables 4.1 and 4.2: imputing missing pixels with PPCA and five inference methods.

Protocol (Williams, Nash & Nazábal 2018; thesis §4.4):

1. rescale pixels to ``[-1, 1]``, shuffle, split 80/20 into train and test;
2. fit PPCA on the training set with the components that explain 90% of the variance;
3. mask the images: each pixel missing independently with probability 0.5 ("random"), or one
   image quarter missing ("quarters");
4. fill the missing pixels with mean imputation, FCA, SCA, the denoising encoder (DE, trained
   on masks of the pattern under test), DE* (trained on random masks, tested on quarters) and
   the exact posterior; report MSE x 10^2 on the missing pixels, mean ± standard error over
   images, on train and test;
5. repeat on data drawn from the fitted PPCA (Table 4.1), where the model is correct by
   construction and exact inference is Bayes-optimal; a PPCA with the same number of
   components is refitted to the generated training set, as for the real data.
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pgm3d.data.images import DATASETS as IMAGE_DATASETS
from pgm3d.data.images import load_dataset, train_test_split
from pgm3d.data.masks import quarter_mask, random_mask
from pgm3d.evaluation import imputation_mse
from pgm3d.inference import DenoisingEncoder, complete
from pgm3d.models import PPCA
from pgm3d.settings import Settings, check_run, option
from pgm3d.tasks.results import json_safe, write_results

__all__ = [
    "PATTERNS",
    "THESIS_FREY_TEST",
    "THESIS_FREY_TRAIN",
    "THESIS_GENERATED",
    "MissingFASettings",
    "run_missing_fa",
]

PATTERNS = ("random", "quarters")
#: Table 4.2 of the thesis, Frey faces test set, MSE x 10^2
THESIS_FREY_TEST = {
    "random": {"mean": 4.62, "fca": 1.95, "sca": 1.09, "de": 1.15, "exact": 0.72},
    "quarters": {"mean": 4.49, "fca": 2.71, "sca": 2.45, "de": 1.22, "de*": 1.89, "exact": 1.37},
}
#: Table 4.2, training set (the DE's row: its training error, see ``train_de`` below)
THESIS_FREY_TRAIN = {
    "random": {"mean": 4.64, "fca": 1.93, "sca": 1.04, "de": 0.72, "exact": 0.66},
    "quarters": {"mean": 4.60, "fca": 2.76, "sca": 2.48, "de": 0.73, "de*": 1.87, "exact": 1.25},
}
#: Table 4.1 of the thesis: 400 test cases generated from the PPCA fitted to Frey faces
THESIS_GENERATED = {
    "random": {"mean": 4.53, "fca": 1.87, "sca": 0.98, "de": 1.03, "de*": 1.03, "exact": 0.59},
    "quarters": {"mean": 4.46, "fca": 2.57, "sca": 2.27, "de": 1.00, "de*": 1.69, "exact": 0.70},
}
METHOD_ORDER = ("mean", "fca", "sca", "de", "de*", "de+", "exact")
LABELS = {
    "mean": "Mean",
    "fca": "FCA",
    "sca": "SCA",
    "de": "DE",
    "de*": "DE*",
    "de+": "DE+",
    "exact": "Exact",
}


def _samplers(image_shape, p_missing):
    return {
        "random": functools.partial(random_mask, p_missing=p_missing),
        "quarters": functools.partial(quarter_mask, image_shape=image_shape),
    }


def _evaluate_source(
    model, train, test, patterns, samplers, *, masks_per_row, plus_masks, seed, progress
):
    """MSE x 100 of every method on train and test, for each pattern."""
    out, examples = {}, {}
    for k, pattern in enumerate(patterns):
        # separate streams: the test masks do not depend on how the DE was trained
        g = torch.Generator().manual_seed(seed + 101 * (k + 1))
        g_de = torch.Generator().manual_seed(seed + 101 * (k + 1) + 7)
        methods = {"mean": "mean", "fca": "fca", "sca": "sca"}
        fit = functools.partial(
            DenoisingEncoder.fit, model, train, masks_per_row=masks_per_row, progress=progress
        )
        methods["de"] = fit(samplers[pattern], generator=g_de)
        if pattern == "quarters":
            methods["de*"] = fit(samplers["random"], generator=g_de, name="de*")
        if plus_masks:
            methods["de+"] = fit(
                samplers[pattern], generator=g_de, masks_per_row=plus_masks, name="de+"
            )
        methods["exact"] = "exact"
        out[pattern] = {}
        splits = [("train", train, None), ("test", test, None)]
        # the second reading of the DE's training error: the masked copies it was fitted to
        splits.append(("train_de", train, methods["de"].training_mask))
        for split, x, given in splits:
            mask = samplers[pattern](x.shape, generator=g).to(x.device) if given is None else given
            rows = {}
            for name, method in methods.items():
                with torch.no_grad():
                    filled = complete(model, x, mask, method).x
                err = imputation_mse(x, filled, mask)
                rows[name] = {"mse": 100 * err.mean, "se": 100 * err.stderr}
                if split == "test":
                    examples.setdefault(pattern, {"mask": mask[:6], "x": x[:6]})[name] = filled[:6]
            out[pattern][split] = rows
    return out, examples


def _fmt(cell) -> str:
    if cell is None:
        return "—"
    return f"{cell['mse']:.2f} ± {cell['se']:.2f}"


def _markdown(results, patterns, title, *, test=None, train=None, splits=None) -> str:
    """A table shaped as the thesis's: per pattern our train (fresh masks), train under the
    DE's own training masks, test, then the thesis's numbers where given."""
    splits = splits or ("train", "train_de", "test")
    names = {"train": "train", "train_de": "train (DE's masks)", "test": "test"}
    cols = [(p, sp) for p in patterns for sp in splits]
    ref = [(p, "train", train) for p in patterns if train] + [
        (p, "test", test) for p in patterns if test
    ]
    head = ["Method", *(f"{p} {names[sp]}" for p, sp in cols)]
    head += [f"{p} {sp} (thesis)" for p, sp, _ in ref]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in METHOD_ORDER:
        if not any(m in results[p]["test"] for p in patterns):
            continue
        cells = [_fmt(results[p][sp].get(m)) for p, sp in cols]
        cells += [f"{r[p][m]:.2f}" if m in r.get(p, {}) else "—" for p, _, r in ref]
        lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _orderings(results, patterns) -> dict[str, bool]:
    """Each adjacent pair of the thesis's test-set ranking (Table 4.2), checked on ``results``.

    Random masks: exact < SCA < DE < FCA < mean; quarters: DE < exact < DE* < SCA < FCA < mean.
    """
    checks = {}
    for p in patterns:
        test = results[p]["test"]
        ranking = sorted(THESIS_FREY_TEST[p], key=THESIS_FREY_TEST[p].get)
        for a, b in itertools.pairwise(ranking):
            checks[f"{p}: {a} < {b}"] = test[a]["mse"] < test[b]["mse"]
    return checks


def _reveal(model, x: torch.Tensor, image_shape, steps: int = 8) -> dict:
    r"""The thesis's Fig. 4.2 for one image: the exact posterior predictive mean and standard
    deviation of every pixel when the first ``r`` image rows are observed, for ``steps``
    values of ``r`` from none to all (observed pixels: their value, s.d. 0).

    .. math:: p(x_m \mid x_v) = \mathcal{N}\big(W_m m_v + \mu_m,\;
        W_m P_v^{-1} W_m^\top + \Psi_m\big)
    """
    H, W = image_shape
    revealed = sorted({round(H * k / (steps - 1)) for k in range(steps)})
    rows = torch.arange(H * W, device=x.device) // W
    masks = torch.stack([rows < r for r in revealed])
    xs = x.expand(len(revealed), -1)
    with torch.no_grad():
        post = model.exact_posterior(xs, masks)
        mean = post.mean @ model.W.mT + model.mu
        var = ((model.W @ post.covariance_matrix) * model.W).sum(-1) + model.psi
    means = torch.where(masks, xs, mean)
    stds = torch.where(masks, torch.zeros_like(var), var.sqrt())
    return {"means": means.cpu(), "stds": stds.cpu(), "revealed": revealed}


def _one_seed(x, patterns, samplers, seed, explained_variance, test_fraction, generated, **common):
    """Real-data and generated-data results for one seed (split, masks, DE masks, samples).

    Generated data (Table 4.1): ``generated="thesis"`` draws 1,600 DE-training and 400 test
    cases from the PPCA fitted to the images and scores them under that same model, as the
    thesis does; ``"refit"`` draws as many cases as there are images, splits them like the
    images and refits a PPCA to the generated training cases.
    """
    train, test = train_test_split(x, test_fraction, generator=torch.Generator().manual_seed(seed))
    model = PPCA.fit(train, explained_variance=explained_variance)
    real, examples = _evaluate_source(model, train, test, patterns, samplers, seed=seed, **common)
    gen = torch.Generator(x.device).manual_seed(seed)
    with torch.no_grad():
        if generated == "thesis":
            drawn = model.sample(2000, generator=gen)
            gtrain, gtest, gmodel = drawn[:1600], drawn[1600:], model
        else:
            drawn = model.sample(x.shape[0], generator=gen)
            gtrain, gtest = drawn[: train.shape[0]], drawn[train.shape[0] :]
            gmodel = PPCA.fit(gtrain, latent_dim=model.latent_dim)
    synth, _ = _evaluate_source(gmodel, gtrain, gtest, patterns, samplers, seed=seed, **common)
    lam = torch.linalg.svdvals(train - train.mean(0)).pow(2)
    info = {
        "n_train": train.shape[0],
        "n_test": test.shape[0],
        "latent_dim": model.latent_dim,
        "explained_variance": float(lam[: model.latent_dim].sum() / lam.sum()),
        "generated": {"protocol": generated, "train": gtrain.shape[0], "test": gtest.shape[0]},
    }
    examples["reveal"] = _reveal(model, test[0], samplers["quarters"].keywords["image_shape"])
    return real, synth, examples, info


def _aggregate(runs):
    """Mean over seeds; with several seeds the error is the standard error across seeds."""
    if len(runs) == 1:
        return runs[0]
    out = {}
    for p, splits in runs[0].items():
        out[p] = {}
        for split, methods in splits.items():
            out[p][split] = {}
            for m in methods:
                v = torch.tensor([r[p][split][m]["mse"] for r in runs], dtype=torch.float64)
                out[p][split][m] = {"mse": float(v.mean()), "se": float(v.std() / len(v) ** 0.5)}
    return out


@dataclass
class MissingFASettings(Settings):
    """The settings of :func:`run_missing_fa`: by default the thesis's (ch. 4); :meth:`quick`
    trains DE+ on 4 masks per image instead of 16."""

    QUICK = {"plus_masks": 4}

    dataset: str = option(
        "digits", "digits (embedded) or frey (frey_rawface.mat)", choices=IMAGE_DATASETS.names
    )
    pattern: str = option("both", "missing-data pattern", choices=(*PATTERNS, "both"))
    data_path: Path | None = option(None, "frey_rawface.mat location", kind=Path)
    repeats: int = option(
        1,
        "seeds to average over (seed ... seed + repeats - 1), with the standard error across "
        "seeds (with one seed: across images)",
    )
    explained_variance: float = option(0.9, "share of variance the PPCA latents explain")
    test_fraction: float = option(0.2, "share of the images held out")
    p_missing: float = option(0.5, "chance a pixel is missing under the random pattern")
    masks_per_row: int = option(
        1, "DE and DE* training masks per image (1, the thesis's: it reproduces its DE errors)"
    )
    plus_masks: int = option(
        16, "DE+ training masks per image (the improved denoising encoder; 0 leaves it out)"
    )
    generated: str = option(
        "thesis",
        "Table 4.1's data: 'thesis' (400 test and 1,600 DE-training cases drawn from the PPCA "
        "fitted to the images, scored under it) or 'refit' (as many cases as images, split, a "
        "PPCA refitted to them)",
        choices=("thesis", "refit"),
    )


def run_missing_fa(
    settings: MissingFASettings | None = None,
    out: str | Path | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> dict:
    """Run the missing-data FA experiment and (if ``out`` is given) write its files there.

    :param MissingFASettings settings: the data, pattern and encoders (default: the thesis's).
    :param out: output folder; writes ``metrics.json``, ``results.json``, ``table.md`` and
        ``completions_<pattern>.png`` there and nowhere else.
    :param int seed: seeds the split, the masks, the DE's training masks and the generated data.
    :param device: where the tensors live (``"cpu"``, ``"cuda"``).
    :returns: the metrics dictionary also written to ``metrics.json``.
    """
    check_run(seed, device)
    s = settings or MissingFASettings()
    patterns = PATTERNS if s.pattern == "both" else (s.pattern,)
    dataset, repeats = s.dataset, s.repeats
    masks_per_row, plus_masks = s.masks_per_row, s.plus_masks
    start = time.perf_counter()
    data = load_dataset(dataset, **({"path": s.data_path} if s.data_path is not None else {}))
    x = data.x.to(torch.device(device))
    samplers = _samplers(data.image_shape, s.p_missing)
    runs = [
        _one_seed(
            x,
            patterns,
            samplers,
            r,
            s.explained_variance,
            s.test_fraction,
            s.generated,
            masks_per_row=masks_per_row,
            plus_masks=plus_masks,
            progress=progress,
        )
        for r in range(seed, seed + repeats)
    ]
    real = _aggregate([r[0] for r in runs])
    synth = _aggregate([r[1] for r in runs])
    examples, info = runs[0][2], runs[0][3]
    reference = THESIS_FREY_TEST if dataset == "frey" else None
    metrics = {
        "experiment": "missing-fa",
        "dataset": dataset,
        **info,
        "data_dim": x.shape[1],
        "seed": seed,
        "repeats": repeats,
        "masks_per_row": masks_per_row,
        "plus_masks": plus_masks,
        "device": str(x.device),
        "test_mse_x100": {p: {m: c["mse"] for m, c in real[p]["test"].items()} for p in patterns},
        "orderings": _orderings(real, patterns),
        "generated_exact_is_best": {
            p: min(synth[p]["test"], key=lambda m, p=p: synth[p]["test"][m]["mse"]) == "exact"
            for p in patterns
        },
    }
    if reference:
        metrics["relative_to_thesis"] = {
            p: {m: real[p]["test"][m]["mse"] / reference[p][m] - 1 for m in reference[p]}
            for p in patterns
        }
    metrics["seconds"] = time.perf_counter() - start
    if out is not None:
        _write(Path(out), data, real, synth, examples, patterns, metrics, reference)
    return metrics


def _write(out, data, real, synth, examples, patterns, metrics, reference):
    from pgm3d.viz import completion_grid, reveal_figure

    out.mkdir(parents=True, exist_ok=True)
    name, K, R = data.name, metrics["latent_dim"], metrics["repeats"]
    spread = f"s.e. across {R} seeds" if R > 1 else "s.e. across images"
    gen = metrics["generated"]
    frey = reference is not None
    table = (
        f"## Missing-data imputation with PPCA on {name} (K = {K}, MSE x 10², mean ± {spread})\n\n"
        + _markdown(
            real,
            patterns,
            f"Table 4.2 — {name}",
            test=reference,
            train=THESIS_FREY_TRAIN if frey else None,
        )
        + "\nThe DE's training error has two readings: rows under fresh masks (*train*), or under "
        "the masked copies the DE was fitted to (*train (DE's masks)*); the other methods are "
        "scored under the same masks in each column.\n\n"
        + _markdown(
            synth,
            patterns,
            f"Table 4.1 — {gen['test']} test cases generated from the fitted PPCA "
            f"({gen['protocol']} protocol; DE trained on {gen['train']} generated cases)",
            test=THESIS_GENERATED if frey else None,
            splits=("test",),
        )
    )
    write_results(out, json_safe(metrics), table, results={"real": real, "generated": synth})
    for p in patterns:
        ex = examples[p]
        completion_grid(
            ex["x"],
            ex["mask"],
            {LABELS[m]: ex[m] for m in METHOD_ORDER if m in ex},
            data.image_shape,
            out / f"completions_{p}.png",
            title=f"{name}, {p} masks (test images); under each, the squared error (Fig. 4.1)",
            error_row=True,
        )
    rev = examples["reveal"]
    reveal_figure(
        rev["means"],
        rev["stds"],
        rev["revealed"],
        data.image_shape,
        out / "reveal.png",
        title=f"{name}: exact posterior of the unseen pixels as rows are revealed (Fig. 4.2)",
    )
