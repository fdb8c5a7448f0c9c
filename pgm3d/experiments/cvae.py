"""Sohn et al. 2015, §5.1: predict the missing quadrants of a digit from the given ones.

Protocol, per number of given quadrants (1, 2 and 3):

1. binarised 8x8 digits (scikit-learn's, grey level > 8; the paper binarised MNIST), split
   80/20 with the seed, a tenth of the training digits kept for validation (every network
   keeps the weights of its best validation score and stops after ``patience`` epochs without
   improvement: on 1,300 digits the networks overfit within tens of epochs); the input ``x``
   is the image with the pixels outside the given quadrants set to -1, the output ``y`` the
   whole image of which only the missing quadrants are observed (the mask), so every
   likelihood is over the missing quadrants' pixels;
2. the baseline: a deterministic network of the same hidden sizes (:func:`~pgm3d.models.
   train_baseline`, cross-entropy); then three conditional models with its prediction fed back
   (the paper's recurrent connection), trained by the CVAE bound, the GSNN bound and the hybrid
   (:class:`~pgm3d.models.CVAE`);
3. the conditional log-likelihood (CLL) of the test outputs, in nats per image: the baseline's
   exactly, the models' by importance sampling from the recognition network (the paper's 100
   samples) and by Monte Carlo from the prior network (the paper's 10,000), with standard errors;
4. a figure as the paper's Fig. 3: per test digit the input, the truth, the baseline's
   prediction and samples of the CVAE;
5. one VAEAC (Ivanov et al. 2019; :class:`~pgm3d.models.VAEAC`) trained on the masks of every
   setting at once (``masks(kind="patterns")``, early stopping as above), against the
   per-setting CVAEs: its CLL by importance sampling from its proposal, and the imputation
   MSE of the missing pixels of the baseline (its probabilities), the CVAE and the VAEAC (the
   means over ``imputation_draws`` prior draws).

Which quadrants are given (ours; the paper does not list them in the seed): 1 = bottom-left,
2 = the left half, 3 = all but the top-right.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pgm3d.data.images import load_digits, train_test_split
from pgm3d.data.masks import QUARTERS
from pgm3d.evaluation import imputation_mse
from pgm3d.inference import EarlyStopping, complete, fit, log_likelihood
from pgm3d.models import CVAE, VAEAC, train_baseline
from pgm3d.settings import Settings, check_run, option
from pgm3d.tasks.results import markdown_table, write_results

__all__ = ["GIVEN_QUADRANTS", "CVAESettings", "quadrant_data", "run_cvae"]

#: the quadrants given as input, by their number
GIVEN_QUADRANTS = {
    1: ("bottom-left",),
    2: ("top-left", "bottom-left"),
    3: ("top-left", "bottom-left", "bottom-right"),
}
OBJECTIVE_NAMES = ("CVAE", "GSNN", "hybrid")


@dataclass
class CVAESettings(Settings):
    """The settings of :func:`run_cvae`; :meth:`quick` is a smoke test of about a minute."""

    QUICK = {"epochs": 3, "baseline_epochs": 3, "patience": 2, "is_samples": 10, "mc_samples": 20,
             "quadrants": (1,), "figure_rows": 3}  # fmt: skip

    quadrants: tuple[int, ...] = option((1, 2, 3), "numbers of given quadrants", many=True,
                                        choices=(1, 2, 3))  # fmt: skip
    latent_dim: int = option(16, "latent size")
    hidden: int = option(256, "units in each of two hidden layers (every network)")
    epochs: int = option(200, "most training epochs of each conditional model")
    baseline_epochs: int = option(200, "most training epochs of the baseline network")
    patience: int = option(10, "epochs without a better validation score before stopping")
    batch_size: int = option(64, "rows per step")
    lr: float = option(1e-3, "Adam learning rate")
    alpha: float = option(0.5, "the hybrid objective's weight of the CVAE bound")
    omission: float = option(0.0, "input-omission noise during training (the paper's §4.3)")
    is_samples: int = option(100, "importance samples per test digit (the paper's)")
    mc_samples: int = option(10000, "prior samples per test digit (the paper's)")
    figure_rows: int = option(8, "test digits in the samples figure")
    vaeac: bool = option(True, "also train one VAEAC on every setting's masks and compare")
    imputation_draws: int = option(100, "prior draws averaged for the CVAE's and VAEAC's MSE")


def quadrant_data(images: torch.Tensor, given: int, image_shape=(8, 8)):
    """``(x, y, mask)``: inputs with the non-given pixels at -1, binary outputs, and the mask of
    the missing quadrants' pixels (what the models are scored on).

    :param images: ``(N, H * W)`` pixels in ``[-1, 1]`` (binarised here at 0: grey > 8/16).
    """
    if given not in GIVEN_QUADRANTS:
        raise ValueError(f"given must be one of {sorted(GIVEN_QUADRANTS)}, got {given!r}")
    h, w = image_shape
    rows = torch.arange(h)[:, None].expand(h, w)
    cols = torch.arange(w)[None, :].expand(h, w)
    quadrant = (rows >= h // 2).long() * 2 + (cols >= w // 2).long()  # QUARTERS order
    seen = torch.zeros(h, w, dtype=torch.bool)
    for name in GIVEN_QUADRANTS[given]:
        seen |= quadrant == QUARTERS.index(name)
    seen = seen.flatten().to(images.device)
    y = (images > 0).to(images.dtype)
    x = torch.where(seen, y, -torch.ones_like(y))
    return x, y, (~seen).expand_as(y).clone()


def _baseline_cll(net, x, y, mask) -> torch.Tensor:
    """The baseline's exact CLL: Bernoulli log-probabilities of the missing pixels."""
    with torch.no_grad():
        p = net(x).clamp(1e-6, 1 - 1e-6)
    return torch.distributions.Bernoulli(probs=p).log_prob(y).where(mask, 0.0).sum(-1)


def run_cvae(
    settings: CVAESettings | None = None,
    out: str | Path | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> dict:
    """Run the quadrant-completion experiment and write its table and figure.

    :returns: the metrics dictionary also written to ``metrics.json``.
    """
    start = time.perf_counter()
    check_run(seed, device)
    s = settings or CVAESettings()
    images = load_digits().x.to(device)
    train, test = train_test_split(images, 0.2, generator=torch.Generator().manual_seed(seed))
    train, valid = train_test_split(train, 0.1, generator=torch.Generator().manual_seed(seed + 1))
    hidden = (s.hidden, s.hidden)
    results, figures, epochs_run, mse = {}, {}, {}, {}
    vaeac = _train_vaeac(train, valid, s, seed, progress, epochs_run) if s.vaeac else None
    for given in s.quadrants:
        x, y, mask = quadrant_data(train, given)
        xv, yv, mv = quadrant_data(valid, given)
        xt, yt, mt = quadrant_data(test, given)
        base = train_baseline(x, y, mask=mask, hidden=hidden, epochs=s.baseline_epochs,
                              batch_size=s.batch_size, lr=s.lr, seed=seed, valid=(xv, yv, mv),
                              patience=s.patience)  # fmt: skip
        base_cll = _baseline_cll(base, xt, yt, mt)
        row = {"baseline": _summary(base_cll)}
        with torch.no_grad():
            mse[given] = {"baseline": _mse(yt, base(xt), mt)}
        noise = CVAE.input_omission(s.omission) if s.omission else None
        for name in OBJECTIVE_NAMES:
            torch.manual_seed(seed)
            model = CVAE(x.shape[-1], y.shape[-1], s.latent_dim, hidden, baseline=base).to(x)
            objective = model.hybrid(s.alpha) if name == "hybrid" else "elbo"
            guide = model.prior_guide if name == "GSNN" else None
            stop = EarlyStopping(
                model,
                yv,
                mv,
                context={"x": xv},
                patience=s.patience,
                guide=guide,
                seed=seed,
            )
            history = fit(
                model,
                y,
                objective,
                mask=mask,
                context={"x": x},
                guide=guide,
                epochs=s.epochs,
                batch_size=s.batch_size,
                lr=s.lr,
                seed=seed,
                context_noise=noise,
                callbacks=[stop],
                progress=progress,
            )
            stop.restore().eval()
            epochs_run[f"{given} {name}"] = (stop.best_epoch, len(history.bound))
            with torch.no_grad():
                torch.manual_seed(seed)
                # the GSNN never trains its recognition network: no importance sampling from it
                if name != "GSNN":
                    cll_is = log_likelihood(model, yt, mt, context={"x": xt},
                                            num_samples=s.is_samples)  # fmt: skip
                    row[f"{name} (IS)"] = _summary(cll_is, base_cll)
                cll_mc = log_likelihood(model, yt, mt, context={"x": xt}, guide=model.prior_guide,
                                        num_samples=s.mc_samples)  # fmt: skip
            row[f"{name} (MC)"] = _summary(cll_mc, base_cll)
            if name == "CVAE":
                figures[given] = (xt, yt, mt, base, model)
                g = torch.Generator().manual_seed(seed)
                with torch.no_grad():
                    means = model.sample(s.imputation_draws, x=xt, mean=True, generator=g)
                mse[given]["CVAE"] = _mse(yt, means.mean(0), mt)
        if vaeac is not None:
            with torch.no_grad():
                torch.manual_seed(seed)
                cll = log_likelihood(vaeac, yt, context={"b": mt}, num_samples=s.is_samples)
                row["VAEAC (IS)"] = _summary(cll, base_cll)
                filled = complete(vaeac, yt, ~mt, "vaeac", num_samples=s.imputation_draws,
                                  seed=seed).x  # fmt: skip
            mse[given]["VAEAC"] = _mse(yt, filled, mt)
        results[given] = row
    metrics = {
        "experiment": "cvae",
        "seed": seed,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.as_dict().items()},
        "conditional_log_likelihood": {str(k): v for k, v in results.items()},
        "imputation_mse": {str(k): v for k, v in mse.items()},
        "findings": _findings(results, mse),
        "best_epoch_of_run": {k: list(v) for k, v in epochs_run.items()},
        "seconds": time.perf_counter() - start,
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_results(out, metrics, _table(results, mse, s, metrics["findings"]))
        for given, parts in figures.items():
            _figure(out / f"samples_{given}q.png", *parts, rows=s.figure_rows, seed=seed)
    return metrics


def _train_vaeac(train, valid, s, seed, progress, epochs_run) -> VAEAC:
    """One VAEAC for every setting: binary images, each training row hiding the missing
    quadrants of a setting drawn at random; validation rows cycle through the settings."""
    y, yv = (train > 0).to(train.dtype), (valid > 0).to(valid.dtype)
    patterns = torch.stack([quadrant_data(train[:1], g)[2][0] for g in s.quadrants]).cpu()
    torch.manual_seed(seed)
    model = VAEAC(y.shape[-1], s.latent_dim, (s.hidden, s.hidden), "bernoulli").to(y)
    noise = model.masks(kind="patterns", patterns=patterns)
    b_valid = patterns[torch.arange(len(yv)) % len(patterns)].to(yv.device)
    stop = EarlyStopping(model, yv, context={"b": b_valid}, patience=s.patience, seed=seed)
    history = fit(model, y, "elbo", context={"b": model.no_mask(y)}, context_noise=noise,
                  epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, seed=seed,
                  callbacks=[stop], progress=progress)  # fmt: skip
    epochs_run["VAEAC"] = (stop.best_epoch, len(history.bound))
    return stop.restore().eval()


def _mse(y: torch.Tensor, guess: torch.Tensor, missing: torch.Tensor) -> dict:
    """The imputation MSE of the missing pixels, mean ± s.e. over test digits."""
    err = imputation_mse(y, guess.to(y), ~missing)
    return {"mean": err.mean, "se": err.stderr}


def _summary(cll: torch.Tensor, baseline: torch.Tensor | None = None) -> dict:
    """Mean over test digits and its standard error; with the baseline's per-digit CLL also
    the gap over it and the gap's paired standard error (the same digits are scored)."""
    cll = cll.detach().double().cpu()
    out = {"mean": float(cll.mean()), "se": float(cll.std() / len(cll) ** 0.5)}
    if baseline is not None:
        gap = cll - baseline.detach().double().cpu()
        out.update(gap=float(gap.mean()), gap_se=float(gap.std() / len(gap) ** 0.5))
    return out


def _findings(results: dict, mse: dict) -> dict:
    """The paper's: every conditional model's CLL above the baseline's (the Monte Carlo
    estimate, which every model has), and whether by more than two paired standard errors;
    Ivanov et al.'s: the one VAEAC's MSE at or below each setting's CVAE's."""
    out = {}
    for given, row in mse.items():
        if "VAEAC" in row and "CVAE" in row:
            key = f"{given} quadrant(s): VAEAC's imputation MSE at or below the CVAE's"
            out[key] = row["VAEAC"]["mean"] <= row["CVAE"]["mean"]
    for given, row in results.items():
        for name in OBJECTIVE_NAMES:
            r = row[f"{name} (MC)"]
            out[f"{given} quadrant(s): {name} CLL above the baseline's"] = r["gap"] > 0
            out[f"{given} quadrant(s): {name} above by more than 2 paired s.e."] = (
                r["gap"] > 2 * r["gap_se"]
            )
    return out


def _table(results, mse, s, findings) -> str:
    cols = ["baseline", *(f"{n} ({e})" for n in OBJECTIVE_NAMES for e in ("IS", "MC"))]
    cols += ["VAEAC (IS)"] if s.vaeac else []
    mse_cols = [c for c in ("baseline", "CVAE", "VAEAC") if any(c in r for r in mse.values())]
    pct = lambda r: f"{100 * r['mean']:.2f} ± {100 * r['se']:.2f}"  # noqa: E731
    mse_rows = [(f"{g} given", *(pct(r[c]) for c in mse_cols)) for g, r in mse.items()]
    rows = [
        (f"{given} given",
         *(f"{r[c]['mean']:.2f} ± {r[c]['se']:.2f}" if c in r else "—" for c in cols))
        for given, r in results.items()
    ]  # fmt: skip
    return "".join([
        "# CVAE, GSNN and hybrid against the baseline network (Sohn et al. 2015, §5.1)\n\n",
        f"Binarised 8x8 digits; latent size {s.latent_dim}, two hidden layers of {s.hidden}; "
        f"at most {s.epochs} epochs (baseline {s.baseline_epochs}), early stopping on "
        f"validation digits with patience {s.patience}; hybrid alpha {s.alpha}"
        + (f"; input omission {s.omission}" if s.omission else "") + ".\n\n",
        "## Conditional log-likelihood of the missing quadrants (nats per digit, ± s.e.; "
        f"IS: {s.is_samples} samples from q(z | x, y), MC: {s.mc_samples} from p(z | x); "
        "the GSNN trains no recognition network, so it has MC only)\n\n",
        markdown_table(("setting", *cols), rows),
        "\n## Gap over the baseline (MC estimate, nats per digit ± paired s.e.)\n\n",
        markdown_table(("setting", *OBJECTIVE_NAMES), _gap_rows(results)),
        "\n## Imputation MSE x 100 of the missing pixels (the baseline's probabilities; the "
        f"CVAE's and the VAEAC's means over {s.imputation_draws} prior draws; one VAEAC for "
        "every setting)\n\n",
        markdown_table(("setting", *mse_cols), mse_rows),
        "\n## The papers' findings on our data\n\n",
        "\n".join(f"- {k}: {'holds' if v else 'does not hold'}" for k, v in findings.items()),
        "\n",
    ])  # fmt: skip


def _gap_rows(results) -> list[tuple]:
    def cell(r: dict) -> str:
        return f"{r['gap']:+.2f} ± {r['gap_se']:.2f}"

    return [
        (f"{given} given", *(cell(row[f"{n} (MC)"]) for n in OBJECTIVE_NAMES))
        for given, row in results.items()
    ]


def _figure(path, xt, yt, mt, base, model, rows: int, seed: int, samples: int = 5) -> None:
    """Per test digit: the input (missing pixels grey), the truth, the baseline's prediction
    and CVAE samples (means of p(y | x, z) at prior draws) with the given pixels pasted in."""
    from pgm3d.viz import image_grid

    n = min(rows, len(xt))
    x, y, m = xt[:n], yt[:n], mt[:n]
    with torch.no_grad():
        guess = base(x)
        draws = model.sample(samples, x=x, mean=True, generator=torch.Generator().manual_seed(seed))
    given = torch.where(m, torch.full_like(x, 0.5), x)
    paste = lambda p: torch.where(m, p, y)  # noqa: E731
    panels = [given, y, paste(guess), *(paste(d.to(y)) for d in draws)]
    grid = torch.stack(panels, 1).reshape(n, len(panels), 8, 8).cpu()
    titles = ["input", "truth", "baseline", *[f"CVAE {i + 1}" for i in range(samples)]]
    title = "Quadrant completion: the baseline's single guess and CVAE samples"
    image_grid(grid, path, cmap="gray", col_titles=titles, title=title)
