"""Reproductions of the papers' experiments, one file each, sharing one protocol.

Each experiment is a settings dataclass (:class:`~pgm3d.settings.Settings`: the papers' values
by default, ``.quick()`` for a smoke test) and a function ``run(settings, out, *, seed, device,
progress) -> metrics`` that writes ``metrics.json``, ``table.md`` and its figures into ``out``
(:func:`~pgm3d.tasks.results.write_results`). Registering it in :data:`EXPERIMENTS` — one line,
naming its settings and its help — makes it ``pgm3d experiment NAME``, options and all.
"""

from pathlib import Path

from pgm3d.experiments.autoguides import AutoguidesSettings, run_autoguides
from pgm3d.experiments.classify import ClassifySettings, run_classify
from pgm3d.experiments.cvae import CVAESettings, run_cvae
from pgm3d.experiments.demo import DemoSettings, run_demo
from pgm3d.experiments.images_to_3d import ImagesTo3DSettings, run_images_to_3d
from pgm3d.experiments.imputation import ImputationSettings, run_imputation
from pgm3d.experiments.inversion import InversionSettings, run_inversion
from pgm3d.experiments.missing_fa import MissingFASettings, run_missing_fa
from pgm3d.experiments.mvae import MVAESettings, run_mvae
from pgm3d.experiments.semisupervised import SemiSupervisedSettings, run_semisupervised
from pgm3d.experiments.shapes import ShapesSettings, run_shapes
from pgm3d.experiments.volumes import VolumesSettings, run_volumes
from pgm3d.registry import Registry
from pgm3d.tasks import TASKS


def _orderings(metrics: dict) -> str:
    differ = [k for k, ok in metrics["orderings"].items() if not ok]
    return "the thesis's test-set rankings (Frey faces, Table 4.2): " + (
        "all hold" if not differ else "differ here in " + "; ".join(differ)
    )


def _demo_summary(metrics: dict) -> str:
    summary = Path(metrics["summary_file"])
    report = summary.parent / "report.html"
    return f"{summary.read_text()}\nopen {report} in a browser ({metrics['seconds']:.0f} s in all)"


#: the experiments of ``pgm3d experiment NAME``, with their settings and help
EXPERIMENTS: Registry = Registry("experiment")
EXPERIMENTS.register(
    "missing-fa",
    settings=MissingFASettings,
    help="thesis Tables 4.1-4.2: PPCA imputation with mean/FCA/SCA/DE/exact inference",
    description="Impute missing pixels with PPCA and compare inference methods "
    "(thesis ch. 4, Tables 4.1 and 4.2).",
    summary=_orderings,
)(run_missing_fa)
EXPERIMENTS.register(
    "shapes",
    settings=ShapesSettings,
    help="thesis ch. 3: ShapeVAE vs ShapeFA vs per-pattern Gaussian on part-segmented shapes",
    description="Train ShapeVAE, ShapeFA and the per-pattern diagonal Gaussian on procedural "
    "shapes and compare completion, test log-likelihood, normals from points, symmetry and "
    "latent activity (thesis §3.5, Tables 3.1 and 3.2).",
)(run_shapes)
EXPERIMENTS.register(
    "classify",
    settings=ClassifySettings,
    help="VSL / 3D-GAN features + SVM: unsupervised shape classification",
    description="Train VSL or 3D-GAN on voxel grids without labels, classify the test grids "
    "with an SVM on the learned features, and compare with a supervised 3D CNN (Liu et al. "
    "2017; Wu et al. 2016).",
)(run_classify)
EXPERIMENTS.register(
    "mvae",
    settings=MVAESettings,
    help="thesis ch. 5: multi-entity VAE vs VAE on multi-sprite scenes, object counting",
    description="Train the multi-entity VAE and a standard VAE with the same networks on "
    "procedural multi-sprite scenes; write training curves, reconstructions, samples, entity "
    "exchange, sequential decoding, traversals, KL maps and unsupervised object counting by a "
    "KL threshold (Nash et al. 2017).",
)(run_mvae)
EXPERIMENTS.register(
    "cvae",
    settings=CVAESettings,
    help="Sohn et al. 2015: CVAE, GSNN and hybrid vs a baseline network on quadrant completion",
    description="Predict the missing quadrants of binarised digits from 1, 2 or 3 given ones "
    "with a deterministic baseline network and conditional VAEs trained by the CVAE, GSNN and "
    "hybrid objectives; compare conditional log-likelihoods (importance sampling and Monte "
    "Carlo) and draw samples (Sohn et al. 2015, §5.1).",
)(run_cvae)
EXPERIMENTS.register(
    "imputation",
    settings=ImputationSettings,
    help="imputation benchmark: PPCA/FA/VAE/MIWAE/VAEAC vs scikit-learn's imputers",
    description="Impute missing entries of digits, Frey faces and a table of your own (--data) "
    "with scikit-learn's mean, KNN and iterative imputers and pgm3d's PPCA, FA, VAE (MwG and "
    "importance), MIWAE and VAEAC, with complete or incomplete training rows, under random "
    "and quarter masks; MSE with standard errors over seeds, and wall times.",
)(run_imputation)
EXPERIMENTS.register(
    "semisupervised",
    settings=SemiSupervisedSettings,
    help="Kingma et al. 2014: M1 and M2 vs the labels-only classifier with 50/100 labels",
    description="Classify digits from 50 or 100 labels with the classifier network alone, "
    "with M1 (VAE features) and with M2 (labels enumerated where unknown); test errors over "
    "seeds and the paper's style/label analogies (Kingma et al. 2014, Table 1, Fig. 1).",
)(run_semisupervised)
EXPERIMENTS.register(
    "autoguides",
    settings=AutoguidesSettings,
    help="autoguide families vs FCA/SCA/DE/exact under missing data; a VAE's IWAE gap",
    description="Train amortised, mask-aware autoguides on random masks and measure KL(q || "
    "exact posterior) of PPCA on test rows under random and quarter masks, beside the "
    "thesis's FCA, SCA and denoising encoder (ch. 4); and the IWAE gap of a VAE on digits "
    "with each guide family.",
)(run_autoguides)

EXPERIMENTS.register(
    "inversion",
    settings=InversionSettings,
    help="thesis ch. 6: PixelCNN inversion models of a classifier's layers, NCE and I(x; h)",
    description="Train a digit classifier (CONV1, CONV2, FC3, LOGITS), a conditional PixelCNN "
    "p(x | h) and an MSE decoder per layer and an unconditional PixelCNN; report NCE and "
    "mutual-information estimates per layer (inversion bound, KDE, Kraskov), Table 6.1's L1 "
    "distances, samples, FC3 NCE over training, and architectures on affine digits "
    "(thesis §6.5).",
)(run_inversion)
EXPERIMENTS.register(
    "volumes",
    settings=VolumesSettings,
    help="Rezende et al. 2016: the sequential volumetric model, VST, completion, conditioning",
    description="Train the sequential volumetric model (T = 1, 4, 8 steps) beside the VSL and "
    "a convolutional VAE on Primitives and MNIST3D; test bounds, samples, MCMC completion of "
    "the missing left half (pseudo-Gibbs vs MwG), class- and view-conditional generation "
    "(Rezende et al. 2016, supplement §A.6-A.10).",
)(run_volumes)
EXPERIMENTS.register(
    "images-to-3d",
    settings=ImagesTo3DSettings,
    help="Yan et al. 2016 / Rezende et al. 2016: single-view 3D reconstruction, IU by method",
    description="Train perspective transformer nets (PTN-Proj, PTN-Comb, CNN-Vol) and Rezende "
    "et al.'s image-trained volumetric model (fixed and learnable camera) on rendered views of "
    "procedural voxel classes; IU of the volumes predicted from single views beside nearest "
    "neighbour and the paper's Table 1, IU by input view, several 3D interpretations of one view.",
)(run_images_to_3d)

# the demo chains tasks and experiments, so it is registered where both are known
TASKS.register(
    "demo",
    settings=DemoSettings,
    help="the whole idea end to end on embedded data, with an HTML report",
    description="Fit ShapeFA and ShapeVAE on procedural chairs, estimate test "
    "log-likelihoods, complete dropped parts with six back ends, compare posteriors, run the "
    "missing-data FA experiment on digits, and write report.html (about 5 minutes on 2 CPU "
    "cores; --quick about one).",
    summary=_demo_summary,
    table=False,
)(run_demo)

__all__ = [
    "EXPERIMENTS",
    "AutoguidesSettings",
    "CVAESettings",
    "ClassifySettings",
    "DemoSettings",
    "ImagesTo3DSettings",
    "ImputationSettings",
    "InversionSettings",
    "MVAESettings",
    "MissingFASettings",
    "SemiSupervisedSettings",
    "ShapesSettings",
    "VolumesSettings",
    "run_autoguides",
    "run_classify",
    "run_cvae",
    "run_demo",
    "run_images_to_3d",
    "run_imputation",
    "run_inversion",
    "run_missing_fa",
    "run_mvae",
    "run_semisupervised",
    "run_shapes",
    "run_volumes",
]
