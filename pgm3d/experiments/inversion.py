r"""Thesis ch. 6: inverting the layers of an image classifier with conditional PixelCNNs.

Protocol (§6.5.1 at the scale of 8x8 digits with 17 grey levels; affine digits for §6.5.2):

1. split the digits 70/10/20 (train/validation/test) by the seed; train the classifier
   (:class:`~pgm3d.models.LayerClassifier`: CONV1, CONV2 with max pooling, FC3, LOGITS; Adam
   :math:`3 \cdot 10^{-4}`, dropout, early stopping on validation accuracy);
2. for each layer, an inversion model :math:`p_\theta(x \mid h)` (a conditional gated
   :class:`~pgm3d.models.PixelCNN`, vector ``h`` through per-channel biases, feature maps
   resized through ``1 x 1`` convolutions; dropout 0.5 as the thesis's MNIST models) and an
   unconditional PixelCNN of the same size, each stopped early on its validation NCE; and the
   MSE inversion baseline of eq. 6.12 per layer;
3. **NCE per layer** (Fig. 6.5a): the test set's mean :math:`\log p_\theta(x \mid h)`; with the
   unconditional model's, the estimate
   :math:`\widehat I = \mathrm{NCE}(h) - \mathrm{NCE}(\emptyset)` of :math:`I(x; h)` (eq. 6.18
   with :math:`H(x)` estimated); beside them the KDE and Kraskov estimates on noisy
   activations (§6.3.4);
4. **Table 6.1**: mean L1 distance in each layer's representation space between a test input and
   (1NN) its nearest training example, (IM-S) one sample of the inversion model, (IM-NN) the
   closest of ``samples`` samples;
5. **samples** (Fig. 6.1): inputs, inversion samples per layer, MSE reconstructions per layer;
6. **training dynamics** (Fig. 6.5b): FC3 inversion NCE for classifiers stopped after each of
   ``dynamics_steps`` steps, and for one trained on ``overfit_rows`` examples only;
7. **architectures** on affine digits (Fig. 6.4): fully connected, convolutional, and
   convolutional with global max pooling — test accuracy and FC3 NCE, with samples.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pgm3d._log import stage
from pgm3d._progress import progress_bar
from pgm3d.data.images import load_affine_digits, load_digits
from pgm3d.evaluation.information import (
    kde_mutual_information,
    kraskov_mutual_information,
    negative_cross_entropy,
)
from pgm3d.inference import EarlyStopping, fit
from pgm3d.models import PixelCNN, train_classifier, train_mse_inversion
from pgm3d.settings import Settings, check_run, option
from pgm3d.tasks.results import json_safe, markdown_table, write_results

__all__ = ["THESIS", "THESIS_TABLE_6_1", "InversionSettings", "run_inversion"]

LEVELS = 17
LAYERS = ("conv1", "conv2", "fc3", "logits")
#: the thesis's Table 6.1 on MNIST: mean L1 distance per unit (500 test images)
THESIS_TABLE_6_1 = {
    "conv1": {"1NN": 1.25e-2, "IM-S": 7.68e-4, "IM-NN": 6.29e-4},
    "conv2": {"1NN": 4.95e-2, "IM-S": 1.65e-2, "IM-NN": 1.40e-2},
    "fc3": {"1NN": 1.22e-1, "IM-S": 1.35e-1, "IM-NN": 9.52e-2},
}
#: the thesis's affNIST numbers (§6.5.2): test accuracy (%) and FC3 inversion NCE (nats)
THESIS = {
    "accuracy": {"conv-pool": 98.9, "conv": 98.7, "fc": 95.0},
    "fc3_nce": {"conv-pool": -704.01, "conv": -699.55, "fc": -715.17},
}


@dataclass
class InversionSettings(Settings):
    """The settings of :func:`run_inversion`; :meth:`quick` is a smoke test of about a
    minute."""

    QUICK = {
        "classifier_epochs": 5,
        "epochs": 2,
        "channels": 16,
        "pixel_layers": 2,
        "mse_epochs": 5,
        "samples": 3,
        "dynamics_steps": (0, 50),
        "overfit_rows": 50,
        "architectures": ("conv", "conv-pool"),
        "affine_epochs": 1,
        "affine_copies": 1,
        "figure_rows": 4,
    }

    classifier_epochs: int = option(
        200, "most epochs of each classifier (early stopping on validation accuracy, patience 10)"
    )
    channels: int = option(64, "channels of the PixelCNNs (the thesis's 64 for MNIST)")
    pixel_layers: int = option(6, "gated layers of each PixelCNN")
    dropout: float = option(0.5, "dropout of the PixelCNNs' residual branches (the thesis's)")
    epochs: int = option(300, "most epochs of each PixelCNN (early stopping on validation NCE)")
    check_every: int = option(5, "epochs between validation checks of the PixelCNNs")
    patience: int = option(6, "validation checks without improvement before a PixelCNN stops")
    batch_size: int = option(64, "rows per step")
    lr: float = option(1e-3, "Adam learning rate of the PixelCNNs (the thesis's)")
    mse_epochs: int = option(300, "most epochs of each MSE inversion (early stopping)")
    samples: int = option(10, "inversion samples per test input for IM-NN")
    table_rows: int = option(100, "test inputs of Table 6.1 (sampling is pixel by pixel)")
    noise: float = option(
        0.1,
        "noise scale of the KDE and Kraskov estimates, relative to each "
        "layer's activation standard deviation",
    )
    dynamics_steps: tuple[int, ...] = option(
        (0, 100, 1000, 10000), "classifier training steps of the training-dynamics panel", many=True
    )
    overfit_rows: int = option(100, "training examples of the overfitted classifier")
    architectures: tuple[str, ...] = option(
        ("fc", "conv", "conv-pool"),
        "architectures compared on affine digits",
        many=True,
        choices=("fc", "conv", "conv-pool"),
    )
    affine_epochs: int = option(100, "most epochs of the affine-digits PixelCNNs (256 pixels)")
    affine_copies: int = option(
        5,
        "random transforms of each digit in the affine-digits set "
        "(with one, the classifiers reached 33-88% here)",
    )
    figure_rows: int = option(6, "test inputs in the samples figure")

    def __post_init__(self):
        super().__post_init__()
        for name in (
            "classifier_epochs",
            "channels",
            "pixel_layers",
            "epochs",
            "check_every",
            "patience",
            "batch_size",
            "mse_epochs",
            "samples",
            "table_rows",
            "overfit_rows",
            "affine_epochs",
            "affine_copies",
            "figure_rows",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.noise <= 0:
            raise ValueError(f"noise must be > 0, got {self.noise}")
        if any(k < 0 for k in self.dynamics_steps):
            raise ValueError(f"dynamics_steps must be >= 0, got {self.dynamics_steps}")


@dataclass
class _Split:
    """Images as rows in ``[-1, 1]`` (the classifiers' input) and as levels (the PixelCNNs')."""

    x: torch.Tensor
    levels: torch.Tensor
    y: torch.Tensor

    def __getitem__(self, rows) -> _Split:
        return _Split(self.x[rows], self.levels[rows], self.y[rows])


def _splits(data, seed: int, device) -> tuple[_Split, _Split, _Split]:
    x = data.x.float().to(device)
    whole = _Split(x, PixelCNN.to_levels(x, LEVELS, -1.0, 1.0), data.labels.to(device))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).to(device)
    n_test, n_valid = round(0.2 * len(x)), round(0.1 * len(x))
    test, valid, train = order[:n_test], order[n_test : n_test + n_valid], order[n_test + n_valid :]
    return whole[train], whole[valid], whole[test]


def _representation(net, x: torch.Tensor, layer: str) -> torch.Tensor:
    with torch.no_grad():
        return net.representations(x, [layer])[layer]


def _per_split(net, layer: str, train: _Split, valid: _Split, test: _Split) -> dict:
    """One layer's representation of each split's images."""
    return {k: _representation(net, d.x, layer) for k, d in
            (("train", train), ("valid", valid), ("test", test))}  # fmt: skip


def _train_pixelcnn(
    s, image_shape, train: _Split, valid: _Split, h_train, h_valid, seed, epochs
) -> PixelCNN:
    torch.manual_seed(seed)
    cond = None if h_train is None else tuple(h_train.shape[1:])
    model = PixelCNN(
        image_shape, LEVELS, cond, channels=s.channels, layers=s.pixel_layers, dropout=s.dropout
    ).to(train.x)
    ctx = None if h_train is None else {"h": h_train}
    stop = EarlyStopping(
        model,
        valid.levels,
        context=None if h_valid is None else {"h": h_valid},
        patience=s.patience,
        every=min(s.check_every, epochs),
        num_samples=1,
        seed=seed,
    )
    fit(
        model,
        train.levels,
        "elbo",
        context=ctx,
        epochs=epochs,
        batch_size=s.batch_size,
        lr=s.lr,
        lr_decay=0.99,
        seed=seed,
        callbacks=[stop],
        progress=False,
    )
    stop.restore()
    return model.eval()


def _mi_estimates(h: torch.Tensor, noise: float, seed: int) -> dict:
    sigma = noise * float(h.double().std())
    sigma = sigma if sigma > 0 else noise
    g = torch.Generator().manual_seed(seed)
    return {
        "kde": kde_mutual_information(h, sigma),
        "kraskov": kraskov_mutual_information(h, sigma, generator=g),
        "sigma": sigma,
    }


def _l1_table(net, layer, models, test: _Split, train: _Split, s, seed) -> dict:
    """Table 6.1's three distances for one layer, over the first ``table_rows`` test inputs:
    the L1 distance averaged over the layer's units (as the thesis's, whose MNIST values are
    of order 1e-3 to 1e-1), then over inputs."""
    rows = test[: s.table_rows]
    h = _representation(net, rows.x, layer).flatten(1)
    h_train = _representation(net, train.x, layer).flatten(1)
    units = h.shape[1]
    nn1 = torch.cdist(h, h_train, p=1).min(1).values / units
    g = torch.Generator(device=h.device).manual_seed(seed)
    cond = _representation(net, rows.x, layer)
    draws = models[layer].sample(s.samples, h=cond, generator=g)  # (S, B, D) levels
    as_x = draws / (LEVELS - 1) * 2 - 1
    h_draws = _representation(net, as_x.reshape(-1, as_x.shape[-1]), layer).flatten(1)
    dist = (h_draws.reshape(s.samples, len(h), -1) - h[None]).abs().mean(-1)  # (S, B)
    return {
        "1NN": float(nn1.mean()),
        "IM-S": float(dist[0].mean()),
        "IM-NN": float(dist.min(0).values.mean()),
    }


def run_inversion(
    settings: InversionSettings | None = None,
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
    s = settings or InversionSettings()
    train, valid, test = _splits(load_digits(), seed, device)
    steps = 4 + len(s.dynamics_steps) + 1 + len(s.architectures)
    bar = progress_bar(None, total=steps, desc="inversion", progress=progress)
    with stage("classifier on digits"):
        net = train_classifier(
            train.x, train.y, valid=(valid.x, valid.y), epochs=s.classifier_epochs, seed=seed
        )
    accuracy = net.accuracy(test.x, test.y)
    models, mse, nce, mi = {}, {}, {}, {}
    with stage("unconditional PixelCNN"):
        models[None] = _train_pixelcnn(s, (8, 8), train, valid, None, None, seed, s.epochs)
        nce["unconditional"] = negative_cross_entropy(models[None], test.levels)
    for layer in LAYERS:
        with stage(f"inversion of {layer}"):
            h = _per_split(net, layer, train, valid, test)
            models[layer] = _train_pixelcnn(
                s, (8, 8), train, valid, h["train"], h["valid"], seed, s.epochs
            )
            nce[layer] = negative_cross_entropy(models[layer], test.levels, h["test"])
            mse[layer] = train_mse_inversion(
                h["train"], train.x, epochs=s.mse_epochs, valid=(h["valid"], valid.x), seed=seed
            )
            mi[layer] = {
                "inversion": nce[layer] - nce["unconditional"],
                **_mi_estimates(h["test"], s.noise, seed),
            }
        bar.update(1)
    with stage("Table 6.1"):
        table61 = {layer: _l1_table(net, layer, models, test, train, s, seed) for layer in LAYERS}
    dynamics = {}
    for k in s.dynamics_steps:
        with stage(f"dynamics: classifier after {k} steps"):
            early = train_classifier(train.x, train.y, steps=k, epochs=10**9, seed=seed)
            dynamics[f"{k} steps"] = _layer_nce(s, early, "fc3", train, valid, test, seed)
        bar.update(1)
    with stage(f"dynamics: classifier overfitted on {s.overfit_rows} examples"):
        few = train[: s.overfit_rows]
        overfit = train_classifier(few.x, few.y, epochs=s.classifier_epochs, seed=seed)
        dynamics[f"overfitted ({s.overfit_rows} examples)"] = _layer_nce(
            s, overfit, "fc3", train, valid, test, seed
        )
    bar.update(1)
    architectures, arch_models = _architectures(s, seed, device, bar)
    bar.close()
    findings = _findings(nce, table61, architectures)
    metrics = {
        "experiment": "inversion",
        "seed": seed,
        "settings": s.as_dict(),
        "classifier_test_accuracy": accuracy,
        "nce": nce,
        "mutual_information": mi,
        "table_6_1": table61,
        "dynamics_fc3_nce": dynamics,
        "architectures": architectures,
        "thesis_affnist": THESIS,
        "findings": findings,
        "seconds": time.perf_counter() - start,
    }
    if out is not None:
        out = Path(out)
        write_results(out, json_safe(metrics), _table(metrics, s))
        _samples_figure(out / "samples.png", net, models, mse, test, s, seed)
        _architecture_figure(out / "architectures.png", arch_models, s, seed)
        _nce_figure(out / "nce.png", nce, dynamics)
    return metrics


def _layer_nce(s, net, layer, train, valid, test, seed) -> float:
    h = _per_split(net, layer, train, valid, test)
    model = _train_pixelcnn(s, (8, 8), train, valid, h["train"], h["valid"], seed, s.epochs)
    return negative_cross_entropy(model, test.levels, h["test"])


def _architectures(s, seed, device, bar):
    """§6.5.2 on affine digits: accuracy and FC3 NCE per architecture."""
    if not s.architectures:
        return {}, {}
    affine = load_affine_digits(copies=s.affine_copies, seed=seed)
    train, valid, test = _splits(affine, seed, device)
    out, kept = {}, {}
    for arch in s.architectures:
        with stage(f"affine digits: {arch}"):
            net = train_classifier(
                train.x,
                train.y,
                valid=(valid.x, valid.y),
                arch=arch,
                epochs=s.classifier_epochs,
                seed=seed,
            )
            h = _per_split(net, "fc3", train, valid, test)
            model = _train_pixelcnn(
                s, (16, 16), train, valid, h["train"], h["valid"], seed, s.affine_epochs
            )
            out[arch] = {
                "accuracy": 100 * net.accuracy(test.x, test.y),
                "fc3_nce": negative_cross_entropy(model, test.levels, h["test"]),
            }
            kept[arch] = (net, model, test)
        bar.update(1)
    return out, kept


def _findings(nce, table61, architectures) -> dict:
    depth = [nce[layer] for layer in LAYERS]
    f = {
        "NCE falls with depth (CONV1 > CONV2 > FC3 > LOGITS)": all(
            a > b for a, b in itertools.pairwise(depth)
        ),
        "conditioning on LOGITS beats the unconditional model": nce["logits"]
        > nce["unconditional"],
        "IM-NN is the smallest distance for the convolutional layers": all(
            table61[layer]["IM-NN"] <= min(table61[layer]["1NN"], table61[layer]["IM-S"])
            for layer in ("conv1", "conv2")
        ),
    }
    if {"conv", "conv-pool", "fc"} <= set(architectures):
        acc = {a: r["accuracy"] for a, r in architectures.items()}
        f["global pooling gives the highest accuracy"] = acc["conv-pool"] >= max(acc.values())
        f["global pooling loses information at FC3 against the plain convolutional network"] = (
            architectures["conv-pool"]["fc3_nce"] < architectures["conv"]["fc3_nce"]
        )
    return f


def _table(m: dict, s: InversionSettings) -> str:
    nce, mi, t61 = m["nce"], m["mutual_information"], m["table_6_1"]
    rows = [("unconditional", f"{nce['unconditional']:.2f}", "", "", "")]
    rows += [
        (
            layer.upper(),
            f"{nce[layer]:.2f}",
            f"{mi[layer]['inversion']:.2f}",
            f"{mi[layer]['kde']:.2f}",
            f"{mi[layer]['kraskov']:.2f}",
        )
        for layer in LAYERS
    ]
    parts = [
        "# Inverting the layers of a digit classifier (thesis ch. 6)\n\n",
        f"8x8 digits, {LEVELS} grey levels, 70/10/20 split; classifier test accuracy "
        f"{100 * m['classifier_test_accuracy']:.1f}%. PixelCNNs: {s.pixel_layers} gated layers "
        f"of {s.channels} channels, dropout {s.dropout}, stopped early on validation NCE. NCE = "
        "test mean log p(x | h), nats per image; I (inversion) = NCE(h) - NCE(unconditional), "
        "an estimate of I(x; h) (eq. 6.18 with H(x) from the unconditional model); KDE and "
        f"Kraskov on activations with noise {s.noise} x their standard deviation (the KDE is "
        f"at most log N = {math.log(round(0.2 * 1797)):.2f}).\n\n",
        markdown_table(("layer", "NCE", "I (inversion)", "I (KDE)", "I (Kraskov)"), rows),
        "\n## Table 6.1: mean L1 distance per unit in representation space (the thesis's "
        "MNIST values beside)\n\n",
        markdown_table(
            ("layer", "1NN", "IM-S", "IM-NN", "thesis 1NN", "thesis IM-S", "thesis IM-NN"),
            [
                (
                    layer.upper(),
                    *(f"{t61[layer][k]:.3g}" for k in ("1NN", "IM-S", "IM-NN")),
                    *(
                        f"{THESIS_TABLE_6_1[layer][k]:.3g}" if layer in THESIS_TABLE_6_1 else "—"
                        for k in ("1NN", "IM-S", "IM-NN")
                    ),
                )
                for layer in LAYERS
            ],
        ),
        "\n## Training dynamics: FC3 inversion NCE (Fig. 6.5b)\n\n",
        markdown_table(
            ("classifier", "FC3 NCE"), [(k, f"{v:.2f}") for k, v in m["dynamics_fc3_nce"].items()]
        ),
    ]
    if m["architectures"]:
        arch = m["architectures"]
        parts += [
            "\n## Architectures on affine digits (§6.5.2; the thesis's affNIST beside)\n\n",
            markdown_table(
                ("architecture", "test accuracy %", "FC3 NCE", "thesis accuracy %", "thesis NCE"),
                [
                    (
                        a,
                        f"{r['accuracy']:.1f}",
                        f"{r['fc3_nce']:.2f}",
                        f"{THESIS['accuracy'][a]:.1f}",
                        f"{THESIS['fc3_nce'][a]:.2f}",
                    )
                    for a, r in arch.items()
                ],
            ),
        ]
    parts += [
        "\n## The thesis's findings on our data\n\n",
        "\n".join(f"- {k}: {'holds' if v else 'does not hold'}" for k, v in m["findings"].items()),
        "\n",
    ]
    return "".join(parts)


def _to_image(levels: torch.Tensor, shape) -> torch.Tensor:
    return (levels / (LEVELS - 1)).reshape(-1, *shape).cpu()


def _samples_figure(path, net, models, mse, test: _Split, s, seed) -> None:
    """Fig. 6.1: each input, one inversion sample per layer, the MSE reconstruction per layer."""
    from pgm3d.viz import image_grid

    rows = test[: s.figure_rows]
    g = torch.Generator(device=rows.x.device).manual_seed(seed)
    cols, titles = [_to_image(rows.levels, (8, 8))], ["input"]
    for layer in LAYERS:
        h = _representation(net, rows.x, layer)
        cols.append(_to_image(models[layer].sample(1, h=h, generator=g)[0], (8, 8)))
        titles.append(f"{layer.upper()} sample")
    for layer in LAYERS:
        with torch.no_grad():
            recon = mse[layer](_representation(net, rows.x, layer))
        cols.append(((recon + 1) / 2).reshape(-1, 8, 8).cpu())
        titles.append(f"{layer.upper()} MSE")
    image_grid(
        torch.stack(cols, 1),
        path,
        cmap="gray",
        col_titles=titles,
        title="Inverting each layer: PixelCNN samples and MSE reconstructions",
    )


def _architecture_figure(path, kept, s, seed) -> None:
    """Fig. 6.4: FC3 inversion samples per architecture on affine digits."""
    if not kept:
        return
    from pgm3d.viz import image_grid

    cols, titles = [], []
    for arch, (net, model, test) in kept.items():
        rows = test[: s.figure_rows]
        if not cols:
            cols.append(_to_image(rows.levels, (16, 16)))
            titles.append("input")
        g = torch.Generator(device=rows.x.device).manual_seed(seed)
        h = _representation(net, rows.x, "fc3")
        cols.append(_to_image(model.sample(1, h=h, generator=g)[0], (16, 16)))
        titles.append(f"{arch} FC3 sample")
    image_grid(
        torch.stack(cols, 1),
        path,
        cmap="gray",
        col_titles=titles,
        title="Affine digits: what each architecture's FC3 keeps",
    )


def _nce_figure(path, nce: dict, dynamics: dict) -> None:
    """Fig. 6.5: NCE per layer, and FC3 NCE over training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot([layer.upper() for layer in LAYERS], [nce[layer] for layer in LAYERS], "o-")
    a.axhline(nce["unconditional"], color="grey", ls="--", label="unconditional")
    a.set_ylabel("test NCE (nats per image)")
    a.set_title("Information falls with depth")
    a.legend()
    b.plot(list(dynamics), list(dynamics.values()), "o-")
    b.set_title("FC3 NCE over training")
    b.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
