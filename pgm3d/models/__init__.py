"""Generative models, each a Pyro model/guide pair (one model per file) following the
:class:`~pgm3d.models.base.Model` protocol.

``MODELS`` names them, so scripts and the CLI can pick one by string; :func:`build_model`
builds one from data through the protocol.
"""

from pgm3d.models.base import SAMPLERS, Model, completion_methods
from pgm3d.models.classifier import LayerClassifier, train_classifier
from pgm3d.models.cvae import CVAE, BaselineNet, train_baseline
from pgm3d.models.factor_analysis import EMInfo, FactorAnalysis
from pgm3d.models.gan3d import GAN3D
from pgm3d.models.guides import GaussianEncoderGuide
from pgm3d.models.linear_gaussian import LinearGaussian
from pgm3d.models.m2 import M2
from pgm3d.models.mesh_model import MeshModel
from pgm3d.models.mse_inversion import MSEInversion, train_mse_inversion
from pgm3d.models.mvae import MVAE
from pgm3d.models.pattern_gaussian import PatternGaussian
from pgm3d.models.pixelcnn import PixelCNN
from pgm3d.models.ppca import PPCA
from pgm3d.models.ptn import PTN, train_ptn
from pgm3d.models.scene_vae import SceneVAE
from pgm3d.models.sequential_image import SequentialImageModel
from pgm3d.models.sequential_volume import SequentialVolumeModel
from pgm3d.models.shapefa import ShapeFA
from pgm3d.models.shapevae import ShapeVAE
from pgm3d.models.vae import VAE
from pgm3d.models.vaeac import VAEAC
from pgm3d.models.voxel_vae import VoxelVAE
from pgm3d.models.vsl import VSL
from pgm3d.registry import Registry

MODELS: Registry = Registry("model")
MODELS.register("fa")(FactorAnalysis)
MODELS.register("ppca")(PPCA)
MODELS.register("vae")(VAE)
MODELS.register("shapevae")(ShapeVAE)
MODELS.register("shapefa")(ShapeFA)
MODELS.register("pattern-gaussian")(PatternGaussian)
MODELS.register("vsl")(VSL)
MODELS.register("gan")(GAN3D)
MODELS.register("mvae")(MVAE)
MODELS.register("scene-vae")(SceneVAE)
MODELS.register("sequential-volume")(SequentialVolumeModel)
MODELS.register("voxel-vae")(VoxelVAE)

from pgm3d.models.build import build_model, model_rows, trained_by_sgd  # noqa: E402

__all__ = [
    "CVAE",
    "GAN3D",
    "M2",
    "MODELS",
    "MVAE",
    "PPCA",
    "PTN",
    "SAMPLERS",
    "VAE",
    "VAEAC",
    "VSL",
    "BaselineNet",
    "EMInfo",
    "FactorAnalysis",
    "GaussianEncoderGuide",
    "LayerClassifier",
    "LinearGaussian",
    "MSEInversion",
    "MeshModel",
    "Model",
    "PatternGaussian",
    "PixelCNN",
    "SceneVAE",
    "SequentialImageModel",
    "SequentialVolumeModel",
    "ShapeFA",
    "ShapeVAE",
    "VoxelVAE",
    "build_model",
    "completion_methods",
    "model_rows",
    "train_baseline",
    "train_classifier",
    "train_mse_inversion",
    "train_ptn",
    "trained_by_sgd",
]
