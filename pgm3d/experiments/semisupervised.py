"""Kingma, Rezende, Mohamed & Welling 2014: classification from few labels with M1 and M2.

Protocol, per number of labels and seed:

1. digits with pixels in ``[0, 1]`` (the paper: MNIST), split 80/20 by the seed; of the
   training digits, ``n`` keep their label (``n / 10`` per class, drawn by the seed), the others
   are unlabelled;
2. **labels only**: the classifier network of M2 (one hidden layer of 500 softplus units),
   trained by cross-entropy on the ``n`` labelled digits alone;
3. **M1**: a VAE (latent 50, two hidden layers of 600, the paper's) trained on every training
   digit without labels; the same classifier network trained on the labelled digits' posterior
   means (the paper used a transductive SVM on the features);
4. **M2** (:class:`~pgm3d.models.M2`): trained on every training digit, the label observed where
   given and enumerated where not (objective ``"enum"``), with the classification term
   :math:`\\alpha = 0.1 N`; it classifies by :math:`q_\\phi(y \\mid x)`;
5. test error (%) of each, mean ± s.e. over seeds; and the paper's analogies (its Fig. 1):
   the style :math:`z` of a test digit inferred, then decoded with every label.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pgm3d._progress import progress_bar
from pgm3d.data.images import load_digits
from pgm3d.inference import fit
from pgm3d.models import M2, VAE
from pgm3d.models.guides import mlp
from pgm3d.models.partial import UNKNOWN
from pgm3d.settings import Settings, check_run, option
from pgm3d.tasks.results import json_safe, markdown_table, over_seeds, write_results

__all__ = ["PAPER_MNIST_100", "SemiSupervisedSettings", "labelled_subset", "run_semisupervised"]

#: Kingma et al. 2014, Table 1: test error (%) on MNIST with 100 labels
PAPER_MNIST_100 = {"labels only": 25.81, "M1": 11.82, "M2": 11.97}
METHODS = ("labels only", "M1", "M2")


@dataclass
class SemiSupervisedSettings(Settings):
    """The settings of :func:`run_semisupervised` (the paper's networks by default);
    :meth:`quick` is a smoke test of about a minute."""

    QUICK = {"labels": (100,), "seeds": 1, "epochs": 10, "m1_epochs": 10,
             "classifier_steps": 200}  # fmt: skip

    labels: tuple[int, ...] = option((50, 100), "numbers of labelled training digits (multiples "
                                     "of 10, balanced over classes)", many=True)  # fmt: skip
    seeds: int = option(3, "seeds (splits, labelled subsets and initialisations)")
    latent_dim: int = option(50, "latent size of M1 and M2 (the paper's)")
    hidden: int = option(500, "hidden units of M2's and the classifier's networks (the paper's)")
    m1_hidden: int = option(600, "units in each of M1's two hidden layers (the paper's)")
    alpha: float = option(0.1, "M2's classification weight, times the training rows (the paper's)")
    epochs: int = option(200, "M2 training epochs")
    m1_epochs: int = option(200, "M1 (VAE) training epochs")
    classifier_steps: int = option(2000, "full-batch Adam steps of each classifier on its labels")
    batch_size: int = option(100, "rows per step of M1 and M2")
    lr: float = option(3e-4, "Adam learning rate (the paper's)")
    likelihood: str = option("bernoulli", "pixel likelihood of M1 and M2 (bernoulli: the "
                             "paper's; gaussian: learned per-pixel scales)",
                             choices=("bernoulli", "gaussian"))  # fmt: skip
    figure_rows: int = option(6, "test digits in the analogies figure")

    def __post_init__(self):
        super().__post_init__()
        for n in self.labels:
            if n < 10 or n % 10:
                raise ValueError(f"labels must be positive multiples of 10, got {n}")
        for name in ("seeds", "epochs", "m1_epochs", "classifier_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def labelled_subset(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """The labels with all but ``n`` (``n / 10`` per class, drawn by ``generator``) replaced by
    :data:`~pgm3d.models.partial.UNKNOWN`."""
    classes = int(labels.max()) + 1
    if n % classes:
        raise ValueError(f"n = {n} labels cannot be balanced over {classes} classes")
    y = torch.full_like(labels, UNKNOWN)
    for c in range(classes):
        rows = (labels == c).nonzero().flatten()
        if len(rows) < n // classes:
            raise ValueError(f"class {c} has {len(rows)} rows, fewer than {n // classes}")
        pick = rows[torch.randperm(len(rows), generator=generator)[: n // classes]]
        y[pick] = labels[pick]
    return y


def train_classifier(features, labels, hidden: int, steps: int, lr: float, seed: int):
    """The classifier network (one hidden layer of softplus units) trained by full-batch
    cross-entropy on labelled rows; returns it in eval mode."""
    torch.manual_seed(seed)
    net = mlp([features.shape[1], hidden, int(labels.max()) + 1], nn.Softplus).to(features)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(features), labels).backward()
        opt.step()
    return net.eval()


def _error(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return 100.0 * float((pred != truth).double().mean())


def run_semisupervised(
    settings: SemiSupervisedSettings | None = None,
    out: str | Path | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> dict:
    """Run the experiment and write its table and the analogies figure.

    :returns: the metrics dictionary also written to ``metrics.json``.
    """
    start = time.perf_counter()
    check_run(seed, device)
    s = settings or SemiSupervisedSettings()
    d = load_digits(dtype=torch.float32)
    x, truth = ((d.x + 1) / 2).to(device), d.labels.to(device)
    per = {n: {m: [] for m in METHODS} for n in s.labels}
    figure_model = None
    bar = progress_bar(None, total=len(s.labels) * s.seeds, desc="semi-supervised",
                       progress=progress)  # fmt: skip
    for k in range(s.seeds):
        run_seed = seed + k
        g = torch.Generator().manual_seed(run_seed)
        perm = torch.randperm(len(x), generator=g).to(device)
        n_test = round(0.2 * len(x))
        test, train = perm[:n_test], perm[n_test:]
        xtr, xte, ytr, yte = x[train], x[test], truth[train], truth[test]
        m1 = _train_m1(xtr, s, run_seed)
        feats_tr, feats_te = m1.encoder.distribution(xtr).mean, m1.encoder.distribution(xte).mean
        for n in s.labels:
            y = labelled_subset(ytr.cpu(), n, g).to(device)
            known = y >= 0
            only = train_classifier(xtr[known], y[known], s.hidden, s.classifier_steps, s.lr,
                                    run_seed)  # fmt: skip
            per[n]["labels only"].append(_error(only(xte).argmax(-1), yte))
            head = train_classifier(feats_tr[known].detach(), y[known], s.hidden,
                                    s.classifier_steps, s.lr, run_seed)  # fmt: skip
            per[n]["M1"].append(_error(head(feats_te.detach()).argmax(-1), yte))
            m2 = _train_m2(xtr, y, s, run_seed)
            per[n]["M2"].append(_error(m2.classify(xte), yte))
            if figure_model is None or (n == max(s.labels) and k == 0):  # most labels, seed 0
                figure_model = (m2, xte, yte)
            bar.update(1)
    bar.close()
    results = {str(n): {m: _summary(v) for m, v in row.items()} for n, row in per.items()}
    findings = {
        f"{n} labels: M2's error below the labels-only classifier's": (
            r["M2"]["error"] < r["labels only"]["error"]
        )
        for n, r in results.items()
    }
    metrics = {
        "experiment": "semisupervised",
        "seed": seed,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.as_dict().items()},
        "test_error_percent": results,
        "paper_mnist_100": PAPER_MNIST_100,
        "findings": findings,
        "seconds": time.perf_counter() - start,
    }
    if out is not None:
        out = Path(out)
        # one seed has no standard error: NaN, written as JSON null
        write_results(out, json_safe(metrics), _table(results, s, findings))
        _analogies(out / "analogies.png", *figure_model, rows=s.figure_rows)
    return metrics


def _train_m1(x, s: SemiSupervisedSettings, seed: int) -> VAE:
    torch.manual_seed(seed)
    vae = VAE(x.shape[1], s.latent_dim, (s.m1_hidden, s.m1_hidden), s.likelihood).to(x)
    fit(vae, x, "elbo", epochs=s.m1_epochs, batch_size=s.batch_size, lr=s.lr, seed=seed,
        progress=False)  # fmt: skip
    return vae.eval()


def _train_m2(x, y, s: SemiSupervisedSettings, seed: int) -> M2:
    torch.manual_seed(seed)
    m2 = M2(x.shape[1], 10, s.latent_dim, (s.hidden,), alpha=s.alpha * len(x),
            likelihood=s.likelihood).to(x)  # fmt: skip
    fit(m2, x, "enum", context={"y": y}, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
        seed=seed, progress=False)  # fmt: skip
    return m2.eval()


def _summary(errors: list[float]) -> dict:
    r = over_seeds(errors)
    return {"error": r.pop("mean"), **r}


def _table(results: dict, s: SemiSupervisedSettings, findings: dict) -> str:
    def cell(r):
        return f"{r['error']:.2f}" + ("" if math.isnan(r["se"]) else f" ± {r['se']:.2f}")

    head = ("labels", *METHODS, *(f"{m} (paper, MNIST 100)" for m in METHODS))
    rows = [
        (n, *(cell(r[m]) for m in METHODS), *(f"{PAPER_MNIST_100[m]:.2f}" for m in METHODS))
        for n, r in results.items()
    ]
    return "".join([
        "# Semi-supervised classification of digits: M1 and M2 (Kingma et al. 2014)\n\n",
        f"Test error (%), mean ± s.e. over {s.seeds} seed(s); 8x8 digits in [0, 1], 80/20 split. "
        f"{s.likelihood.capitalize()} pixels. M2: latent {s.latent_dim}, one hidden layer of "
        f"{s.hidden} softplus units, alpha = "
        f"{s.alpha} N, {s.epochs} epochs, labels enumerated where unknown (TraceEnum_ELBO); "
        f"M1: VAE with two hidden layers of {s.m1_hidden}, {s.m1_epochs} epochs, then the "
        "classifier network on its posterior means; labels only: the classifier network on the "
        "labelled digits. The paper's columns are MNIST with 100 labels (its Table 1).\n\n",
        markdown_table(head, rows),
        "\n## The paper's finding on our data\n\n",
        "\n".join(f"- {k}: {'holds' if v else 'does not hold'}" for k, v in findings.items()),
        "\n",
    ])  # fmt: skip


def _analogies(path, m2: M2, x, y, rows: int) -> None:
    """The paper's Fig. 1: each test digit's style ``z`` (the posterior mean under its
    predicted label) decoded with every label."""
    from pgm3d.viz import image_grid

    n = min(rows, len(x))
    x = x[:n]
    with torch.no_grad():
        label = m2.classify(x)
        z = m2.latent_distribution(x, label).mean
        cols = [m2.decode(z, torch.full_like(label, c)).mean for c in range(m2.num_classes)]
    grid = torch.stack([x, *cols], 1).reshape(n, 1 + len(cols), 8, 8).cpu()
    titles = ["test digit", *(f"y = {c}" for c in range(m2.num_classes))]
    image_grid(grid, path, cmap="gray", col_titles=titles,
               title="M2 analogies: each digit's style with every label")  # fmt: skip
