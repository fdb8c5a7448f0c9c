"""Unsupervised shape classification with VSL or 3D-GAN features (Liu et al. 2017; Wu et al.
2016), with a supervised 3D CNN on the same split as the reference.

Protocol: train the generative model on the training grids without labels; embed training and
test grids (VSL: the concatenated posterior means of :math:`z_0, \\dots, z_m`; GAN: the
discriminator's last three hidden layers, max-pooled); standardise the features and fit an SVM
(RBF kernel for VSL, linear for the GAN, as the papers) whose ``C`` is chosen by 5-fold
cross-validation on the training features only; report test accuracy and the confusion matrix.
The same protocol on the network at its initial weights is reported as a control: random
convolutional features separate easy classes too, so only the gain over it is learned.
The papers' ModelNet10 numbers are 91.0% (VSL) and 91.0% (3D-GAN), ModelNet40 83.96% and 83.3%
(``voxel-classes-40`` is the 40-way stand-in); ModelNet cannot be shipped,
so the default data are the procedural 10-class voxel set (``pgm3d.data.voxel_classes``), and
any ModelNet-style folder or 3D ShapeNets ``.mat`` set can be passed instead.

VSL's latent sizes follow the seed by the number of classes (10-way: :math:`z_0` of 10 and 5 local
latents of 5; 40-way: 20 and 5 of 10). Because a VAE's latents can collapse to the prior and
leave features with less class information than random ones, the metrics report the active
feature units and VSL's KL per latent, and warn when the learned features score below the
untrained control.

Also written: samples with their nearest training grids (the seed's Table 4.1 retrieval),
intra- and inter-class interpolation strips, reconstructions, and completion of grids with
half of the volume missing by the ``complete`` back ends.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pgm3d._progress import progress_bar
from pgm3d.data import VoxelSet
from pgm3d.data.datasets import open_voxels
from pgm3d.data.masks import half_volume_mask
from pgm3d.evaluation.geometry import largest_connected_component
from pgm3d.inference import complete, fit, fit_gan
from pgm3d.models import GAN3D, VSL
from pgm3d.saving import save
from pgm3d.settings import Settings, check_run, option
from pgm3d.tasks.results import write_results

__all__ = [
    "ClassifySettings",
    "VoxNet",
    "fit_voxnet",
    "limited_data_curve",
    "nearest_by_features",
    "nearest_grids",
    "run_classify",
    "svm_accuracy",
]


@dataclass
class ClassifySettings(Settings):
    """The settings of :func:`run_classify`; :meth:`quick` is a smoke test."""

    QUICK = {"n_per_class": 12, "epochs": 4, "cnn_epochs": 3, "completion_rows": 2}

    model: str = option(
        "vsl", "the generative model whose features are classified", choices=("vsl", "gan")
    )
    data: str = option(
        "voxel-classes",
        "voxel-classes (procedural, 10 classes), voxel-classes-40 (40 classes), a voxel file "
        "(.mat/.npy/.npz), or a "
        "ModelNet-style folder root/<class>/{train,test}/",
    )
    n_per_class: int = option(100, "procedural grids per class")
    resolution: int | None = option(
        None, "grid size", kind=int, shown="VSL 30, the paper's; GAN 32 (64 is the paper's)"
    )
    epochs: int = option(60, "training epochs")
    batch_size: int = option(64, "grids per step")
    lr: float = option(1e-3, "VSL's Adam rate (the seed: 5e-5 over 500+ epochs)")
    vsl_prior: str = option(
        "learned",
        "VSL's prior of the local latents: the paper's learned skip prior, or N(0, I) for "
        "every latent (the authors' code)",
        choices=("learned", "standard"),
    )
    vsl_init: str = option(
        "xavier",
        "VSL's initial weights: Glorot (the authors'), or PyTorch's defaults (which left the "
        "encoder dead on mesh data: features at chance)",
        choices=("xavier", "torch"),
    )
    kl_beta: float = option(
        1e-3, "VSL's beta (the seed's), turned into the ELBO's KL weight by VSL.kl_weight_for"
    )
    gan_width: float = option(0.25, "GAN channel multiplier")
    lr_g: float = option(0.0025, "GAN generator rate")
    # the paper's D rate is 1e-5; at width 0.25 and 32^3 its D fell to 0-20% accuracy and G to
    # one noise blob (40 epochs, seed 0), while 1e-4 kept D at 70-78% with the 80% rule engaged
    lr_d: float = option(1e-4, "GAN discriminator rate (paper 1e-5)")
    cnn_epochs: int = option(15, "supervised VoxNet epochs")
    completion_rows: int = option(4, "grids in the completion figure")
    fractions: tuple[float, ...] = option(
        (0.1, 0.2, 0.5, 1.0),
        "shares of each class's training grids the SVM is fitted on: the limited-data curve "
        "(Wu et al. 2016, Fig. 4)",
        many=True,
        kind=float,
    )

    def __post_init__(self):
        super().__post_init__()
        bad = [f for f in self.fractions if not 0 < f <= 1]
        if bad:
            raise ValueError(f"fractions must be in (0, 1], got {bad}")


class VoxNet(nn.Module):
    """A small supervised 3D CNN (after Maturana & Scherer 2015, "VoxNet"): conv 32×5³ stride
    2, conv 32×3³, max-pool 2, 128 units, dropout 0.5, class logits."""

    def __init__(self, resolution: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(1, 32, 5, stride=2),
            nn.LeakyReLU(0.1),
            nn.Conv3d(32, 32, 3),
            nn.LeakyReLU(0.1),
            nn.MaxPool3d(2),
        )
        with torch.no_grad():
            size = self.features(torch.zeros(1, 1, resolution, resolution, resolution)).numel()
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(size, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )

    def forward(self, grids: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(grids.unsqueeze(1)))


def fit_voxnet(train: VoxelSet, test: VoxelSet, *, epochs=15, seed=0, device="cpu", progress=None):
    """Train :class:`VoxNet` with cross-entropy (Adam 1e-3, batch 32); test accuracy."""
    torch.manual_seed(seed)
    R = train.voxels.shape[-1]
    net = VoxNet(R, len(train.class_names)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = train.voxels.float().to(device), train.labels.to(device)
    g = torch.Generator().manual_seed(seed)
    for _ in progress_bar(range(epochs), desc="VoxNet", progress=progress):
        net.train()
        for rows in torch.randperm(len(x), generator=g).to(device).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[rows]), y[rows]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(b).argmax(-1) for b in test.voxels.float().to(device).split(64)])
    return float((pred.cpu() == test.labels).float().mean())


def svm_accuracy(train_x, train_y, test_x, test_y, kernel: str, seed: int = 0) -> dict:
    """Standardise, choose ``C`` by 5-fold cross-validation on the training set, fit, test."""
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    folds = min(5, int(np.bincount(train_y).min()))
    search = GridSearchCV(
        make_pipeline(StandardScaler(), SVC(kernel=kernel)),
        {"svc__C": np.logspace(-3, 3, 7)},
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
    )
    search.fit(train_x, train_y)
    pred = search.predict(test_x)
    return {
        "accuracy": float((pred == test_y).mean()),
        "train_accuracy": float((search.predict(train_x) == train_y).mean()),
        "cv_accuracy": float(search.best_score_),
        "C": float(search.best_params_["svc__C"]),
        "confusion": confusion_matrix(test_y, pred, labels=np.arange(test_y.max() + 1)).tolist(),
    }


def limited_data_curve(train_x, train_y, test_x, test_y, fractions, kernel: str, seed: int = 0):
    """Test accuracy of :func:`svm_accuracy` fitted on a seeded share of each class's training
    rows (at least two, for cross-validation): Wu et al. 2016's Fig. 4, whose unsupervised
    features keep most of their accuracy on a fraction of the labels.

    :returns: one ``{"fraction", "n_train", "accuracy"}`` per fraction, in the given order.
    """
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(np.flatnonzero(train_y == c)) for c in np.unique(train_y)]
    curve = []
    for f in fractions:
        keep = np.sort(np.concatenate([
            rows[: min(len(rows), max(2, math.ceil(f * len(rows))))] for rows in by_class
        ]))  # fmt: skip
        scored = svm_accuracy(train_x[keep], train_y[keep], test_x, test_y, kernel, seed)
        curve.append({"fraction": float(f), "n_train": len(keep), "accuracy": scored["accuracy"]})
    return curve


def nearest_by_features(queries: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """Index into ``pool (N, F)`` of the nearest row (Euclidean) to each of ``queries (n, F)``:
    Wu et al.'s retrieval of a generated shape's nearest training shape in the discriminator's
    last convolutional layer, which shows G makes new shapes rather than copies."""
    return torch.cdist(queries.float(), pool.float().to(queries.device)).argmin(1).cpu()


def _data(spec: str, s: dict, R: int, seed: int, progress) -> tuple[VoxelSet, VoxelSet]:
    split = open_voxels(spec, resolution=R, n_per_class=s.n_per_class, seed=seed, progress=progress)
    return split.train, split.test


def _build(model_name: str, R: int, s, seed: int, device, num_classes: int):
    """The network, with the seed's latent sizes for the number of classes (VSL)."""
    torch.manual_seed(seed)
    if model_name == "vsl":
        sizes = VSL.sizes_for(num_classes)
        return VSL(R, prior=s.vsl_prior, init=s.vsl_init, **sizes).to(device)
    return GAN3D(R, width=s.gan_width).to(device)


def _train(model_name, train, s, seed, device, progress):
    R = train.voxels.shape[-1]
    x = VSL.rows(train.voxels).to(device)
    model = _build(model_name, R, s, seed, device, len(train.class_names))
    start = time.perf_counter()
    if model_name == "vsl":
        history = fit(
            model,
            x,
            "elbo",
            kl_weight=VSL.kl_weight_for(s.kl_beta, R, model.num_local),
            epochs=s.epochs,
            batch_size=s.batch_size,
            lr=s.lr,
            seed=seed,
            progress=progress,
        )
        curve = {"elbo_per_grid": history.bound}
    else:
        history = fit_gan(
            model,
            x,
            epochs=s.epochs,
            batch_size=s.batch_size,
            lr_g=s.lr_g,
            lr_d=s.lr_d,
            seed=seed,
            progress=progress,
        )
        curve = {"d_accuracy": history.d_accuracy, "d_updates": history.d_updates}
    model.eval()
    seconds = time.perf_counter() - start
    return model, curve, seconds


def nearest_grids(queries: torch.Tensor, pool: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Index into ``pool (N, R, R, R)`` of the grid of highest intersection over union with
    each of ``queries (n, R, R, R)``: the nearest-neighbour retrieval of the seed's Table 4.1,
    which shows a sample is a new shape and not a copy of a training one."""
    q = queries.reshape(len(queries), -1).float()
    best = torch.full((len(q),), -1.0)
    index = torch.zeros(len(q), dtype=torch.long)
    for start in range(0, len(pool), batch):
        p = pool[start : start + batch].reshape(-1, q.shape[1]).float().to(q.device)
        inter = q @ p.T
        union = q.sum(1, keepdim=True) + p.sum(1) - inter
        iou = (inter / union.clamp_min(1)).cpu()
        value, arg = iou.max(1)
        better = value > best
        best[better], index[better] = value[better], arg[better] + start
    return index


def _feature_health(net, model_name, train, result, untrained, device, features=None) -> dict:
    """Do the learned features carry more than the untrained network's? Active units (the
    posterior mean's variance over the training grids above 0.01, Burda et al. 2016) and, for
    VSL, the KL of each latent; a warning when the learned features score below the control,
    the sign of a collapsed posterior (or a dead encoder)."""
    feats = _embed(net, train.voxels, device) if features is None else features
    out = {"active_units": int((feats.var(0) > 0.01).sum()), "feature_dim": int(feats.shape[1])}
    if model_name == "vsl":
        x = VSL.rows(train.voxels[:500]).to(device)
        out["kl_per_latent"] = [round(float(k), 4) for k in net.kl_per_latent(x)]
    if result["accuracy"] < untrained["accuracy"]:
        out["warning"] = (
            f"the learned features ({100 * result['accuracy']:.1f}%) score below the same network "
            f"untrained ({100 * untrained['accuracy']:.1f}%): they carry less class information "
            f"than random ones ({out['active_units']} of {out['feature_dim']} units active"
            + (f", KL per latent {out['kl_per_latent']}" if "kl_per_latent" in out else "")
            + "); train longer, or look for a collapsed posterior"
        )
        warnings.warn(out["warning"], stacklevel=3)
    return out


def _embed(model, grids: torch.Tensor, device) -> np.ndarray:
    return model.features(VSL.rows(grids).to(device)).cpu().numpy()


def run_classify(
    settings: ClassifySettings | None = None,
    out: str | Path | None = None,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
) -> dict:
    """Train ``settings.model`` (``"vsl"`` or ``"gan"``) on the training grids of
    ``settings.data``, classify the test grids with an SVM on its features, and compare with a
    supervised VoxNet.

    :param ClassifySettings settings: default: the papers' protocol on procedural voxels.
    :returns: the metrics also written to ``out/metrics.json``.
    """
    check_run(seed, device)
    s = settings or ClassifySettings()
    model, data = s.model, s.data
    R = s.resolution or (30 if model == "vsl" else 32)
    start = time.perf_counter()
    train, test = _data(data, s, R, seed, progress)
    kernel = "rbf" if model == "vsl" else "linear"

    y, test_y = train.labels.numpy(), test.labels.numpy()

    def classify(net) -> tuple[dict, np.ndarray, np.ndarray]:
        train_x, test_x = _embed(net, train.voxels, device), _embed(net, test.voxels, device)
        return svm_accuracy(train_x, y, test_x, test_y, kernel, seed), train_x, test_x

    # the control: the same network at its initial weights, through the same protocol
    classes = len(train.class_names)
    untrained, *_ = classify(_build(model, R, s, seed, device, classes).eval())
    net, curve, train_seconds = _train(model, train, s, seed, device, progress)
    result, features, test_features = classify(net)
    limited = limited_data_curve(features, y, test_features, test_y, s.fractions, kernel, seed)
    health = _feature_health(net, model, train, result, untrained, device, features)
    t = time.perf_counter()
    reference = fit_voxnet(train, test, epochs=s.cnn_epochs, seed=seed, device=device)
    cnn_seconds = time.perf_counter() - t
    metrics = {
        "experiment": "classify",
        "model": model,
        "data": str(data),
        "resolution": R,
        "classes": list(train.class_names),
        "n_train": len(train),
        "n_test": len(test),
        "accuracy": result["accuracy"],
        "supervised_voxnet_accuracy": reference,
        "untrained_accuracy": untrained["accuracy"],
        "limited_data": limited,
        "svm": result,
        **health,
        "training_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / s.epochs,
        "voxnet_seconds": cnn_seconds,
        "settings": s.as_dict(),
        "seed": seed,
        "device": str(device),
        "curve": curve,
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        save(net, out / f"{model}.pt", {"model": model, "data": str(data), "resolution": R})
        _figures(out, net, model, train, test, result, s, seed, device, progress)
        _limited_data_figure(out / "limited_data.png", limited, model)
        metrics["seconds"] = time.perf_counter() - start
        write_results(out, metrics, _table(metrics))
    metrics["seconds"] = time.perf_counter() - start
    return metrics


#: the papers' unsupervised ModelNet accuracies (VSL seed Table 4.2), by model and class count
PAPER_ACCURACY = {("vsl", 10): 91.0, ("vsl", 40): 83.96, ("gan", 10): 91.0, ("gan", 40): 83.3}


def _paper_row(model: str, classes: int) -> str:
    """The paper's figure for the nearest ModelNet setting (10 or 40 classes)."""
    setting = 40 if classes > 10 else 10
    return f"| paper, ModelNet{setting} ({model.upper()}) | {PAPER_ACCURACY[model, setting]}% |"


def _table(m: dict) -> str:
    svm = m["svm"]
    names = m["classes"]
    # column heads: 5 letters of each name, or the class number where those would repeat
    short = [n[:5] for n in names]
    heads = short if len(set(short)) == len(short) else [str(i) for i in range(len(names))]
    lines = [
        f"# Unsupervised classification with {m['model'].upper()} features on {m['data']}\n",
        f"{m['n_train']} training and {m['n_test']} test grids at {m['resolution']}³, "
        f"{len(names)} classes. SVM ({'RBF' if m['model'] == 'vsl' else 'linear'} kernel, "
        f"C = {svm['C']:g} by 5-fold cross-validation on the training set).\n",
        "| | accuracy |",
        "|---|---:|",
        f"| {m['model'].upper()} features + SVM, test | {100 * m['accuracy']:.1f}% |",
        f"| … training set | {100 * svm['train_accuracy']:.1f}% |",
        f"| … cross-validation on training | {100 * svm['cv_accuracy']:.1f}% |",
        f"| the same network untrained (control), test | {100 * m['untrained_accuracy']:.1f}% |",
        f"| supervised VoxNet (reference), test | {100 * m['supervised_voxnet_accuracy']:.1f}% |",
        f"| active feature units | {m['active_units']} of {m['feature_dim']} |",
        *(
            [
                f"| KL per latent z0..z{len(m['kl_per_latent']) - 1} (nats) | "
                + ", ".join(f"{k:.2f}" for k in m["kl_per_latent"])
                + " |"
            ]
            if "kl_per_latent" in m
            else []
        ),
        _paper_row(m["model"], len(names)),
        "",
        *([f"**Warning:** {m['warning']}.\n"] if "warning" in m else []),
        f"Training: {m['training_seconds']:.0f} s ({m['seconds_per_epoch']:.1f} s per epoch).\n",
        "## Confusion matrix (rows: true class, columns: predicted)\n",
        "| | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for i, (name, row) in enumerate(zip(names, svm["confusion"], strict=True)):
        label = name if heads is short else f"{i}: {name}"
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    lines += [
        "",
        "## Limited training data (Wu et al. 2016, Fig. 4)\n",
        "The SVM fitted on a share of each class's training grids (the features are learned "
        "from all of them, without labels).\n",
        "| share of the training set | labelled grids | test accuracy |",
        "|---:|---:|---:|",
        *(
            f"| {100 * r['fraction']:g}% | {r['n_train']} | {100 * r['accuracy']:.1f}% |"
            for r in m["limited_data"]
        ),
    ]
    return "\n".join(lines) + "\n"


def _limited_data_figure(path, curve: list[dict], model_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot([100 * r["fraction"] for r in curve], [100 * r["accuracy"] for r in curve], "o-")
    ax.set_xlabel("share of the training set labelled (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{model_name.upper()} features + SVM with limited training data")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _figures(out, net, model_name, train, test, result, s, seed, device, progress) -> None:
    from pgm3d.viz import interpolation_strip, render_shapes, voxel_completion_grid
    from pgm3d.viz.charts import confusion_matrix

    names = list(train.class_names)
    title = f"{model_name.upper()} + SVM: test accuracy {100 * result['accuracy']:.1f}%"
    confusion_matrix(result["confusion"], names, out / "confusion.png", title=title)

    g = torch.Generator(device=device).manual_seed(seed)
    samples = net.sample(8, generator=g, mean=True)
    if isinstance(net, GAN3D):  # Wu et al. render a generated shape's largest component only
        samples, kept = largest_connected_component(samples).cpu(), "largest component"
    else:
        samples, kept = (samples > 0.5).cpu(), "occupancy > 0.5"
    render_shapes(
        samples,
        out / "samples.png",
        kind="voxels",
        ncols=8,
        title=f"{model_name.upper()} samples ({kept})",
    )
    retrievals = [("retrieval.png", nearest_grids(samples, train.voxels),
                   "samples (top) and their nearest training grids by IoU (bottom): new shapes, "
                   "not copies (the seed's Table 4.1)")]  # fmt: skip
    if isinstance(net, GAN3D):
        with torch.no_grad():
            last = [net.discriminator.hidden(net.grid(VSL.rows(v).float().to(device)))[-1]
                    for v in (samples, train.voxels)]  # fmt: skip
        retrievals.append((
            "retrieval_d_features.png",
            nearest_by_features(last[0].flatten(1), last[1].flatten(1)),
            "samples (top) and their nearest training grids in D's last convolutional layer "
            "(bottom; Wu et al.'s retrieval)",
        ))  # fmt: skip
    for name, nearest, title in retrievals:
        render_shapes(torch.cat([samples, train.voxels[nearest]]), out / name, kind="voxels",
                      ncols=8, title=title)  # fmt: skip
    labels = test.labels
    first = [int((labels == c).nonzero()[0]) for c in range(len(names)) if (labels == c).any()]
    if isinstance(net, VSL):
        codes = net.embed(VSL.rows(test.voxels).to(device))
        counts = torch.bincount(labels, minlength=len(names))
        if (counts >= 2).any():  # two test grids of one class, else two of the training set
            c = int((counts >= 2).nonzero()[0])
            ends, intra = codes, (labels == c).nonzero().flatten()[:2].tolist()
        else:
            c = int(train.labels[0])
            ends = net.embed(VSL.rows(train.voxels[train.labels == c][:2]).to(device))
            intra = [len(codes), len(codes) + 1]
            ends = torch.cat([codes, ends])
        named = {
            "intra": (intra, (c, c)),
            "inter": (first[:2], (labels[first[0]], labels[first[1]])),
        }
        for kind, ((a, b), (ca, cb)) in named.items():
            t = torch.linspace(0, 1, 7, device=codes.device)[:, None]
            frames = net.grids((1 - t) * ends[a] + t * ends[b]) > 0.5
            interpolation_strip(
                frames.cpu(),
                out / f"interpolation_{kind}.png",
                kind="voxels",
                title=f"VSL: {kind}-class interpolation ({names[ca]} → {names[cb]})",
            )
        recon = net.grids(codes[first]) > 0.5
        render_shapes(
            torch.cat([test.voxels[first], recon.cpu()]),
            out / "reconstructions.png",
            kind="voxels",
            ncols=len(first),
            title="test grids (top) and VSL reconstructions from posterior means",
        )
    else:
        z = torch.randn(2, net.latent_dim, generator=g, device=device)
        t = torch.linspace(0, 1, 7, device=device)[:, None]
        R = net.resolution
        frames = net.decode((1 - t) * z[0] + t * z[1]).reshape(-1, R, R, R) > 0.5
        interpolation_strip(
            frames.cpu(),
            out / "interpolation_samples.png",
            kind="voxels",
            title="GAN: interpolation between two samples' latents",
        )
    rows = first[: s.completion_rows]
    x = VSL.rows(test.voxels[rows]).to(device)
    R = test.voxels.shape[-1]
    mask = half_volume_mask(x.shape, R, device=device)
    methods = ["mwg", "pseudo_gibbs"] if isinstance(net, VSL) else ["mwg", "importance"]
    done = {}
    for m in methods:
        opts = {"chains": 1, "num_samples": 10, "seed": seed, "progress": False}
        if m == "importance":
            opts.update(num_proposals=200)
        else:
            opts.update(warmup=50, thin=2)
        with torch.no_grad():
            done[m] = complete(net, x, mask, m, **opts).x
    voxel_completion_grid(
        x, mask, done, out / "completion.png", title="completion with half of the volume missing"
    )
