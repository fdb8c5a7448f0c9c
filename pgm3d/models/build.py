"""Build any registered model from data by name, and turn data into a model's rows.

``build_model("shapevae", train_shapes, latent_dim=16)`` sizes a ShapeVAE for the shapes (its
parameters still to be trained with :func:`~pgm3d.inference.fit`);
``build_model("fa", rows, latent_dim=8)`` fits factor analysis by EM; ``build_model("vsl",
voxel_set)`` sizes a VSL for the grids' resolution. :func:`trained_by_sgd` says which kind a model
is. This is what ``pgm3d fit`` runs.
"""

from __future__ import annotations

import warnings

import torch

from pgm3d.data.shapes import ShapeSet
from pgm3d.data.sprites import SpriteScenes
from pgm3d.data.voxels import VoxelSet
from pgm3d.models.factor_analysis import FactorAnalysis
from pgm3d.models.gan3d import GAN3D
from pgm3d.models.mvae import MVAE
from pgm3d.models.pattern_gaussian import PatternGaussian
from pgm3d.models.ppca import PPCA
from pgm3d.models.scene_vae import SceneVAE
from pgm3d.models.shapefa import ShapeFA
from pgm3d.models.shapevae import ShapeVAE
from pgm3d.models.vae import VAE
from pgm3d.models.vsl import VSL

__all__ = [
    "SCENE_MODELS",
    "SHAPE_MODELS",
    "VOXEL_MODELS",
    "build_model",
    "model_rows",
    "trained_by_sgd",
]

#: models that need part-segmented shapes (a ShapeSet), not plain rows
SHAPE_MODELS = ("shapevae", "shapefa", "pattern-gaussian")
#: models of voxel grids (a VoxelSet)
VOXEL_MODELS = ("vsl", "gan")
#: models of multi-sprite scenes (SpriteScenes)
SCENE_MODELS = ("mvae", "scene-vae")
_SGD = (VAE, ShapeVAE, VSL, MVAE, SceneVAE)
#: models that need one kind of data: (their names, the data type, what it is, how to get it)
_KINDS = (
    (
        VOXEL_MODELS,
        VoxelSet,
        "voxel grids",
        "voxel-classes, a voxel file or a ModelNet-style folder",
    ),
    (SCENE_MODELS, SpriteScenes, "multi-sprite scenes", "sprites-3 or sprites-8"),
)


def trained_by_sgd(model) -> bool:
    """True for models whose parameters :func:`~pgm3d.inference.fit` trains (the VAEs and VSL);
    the GAN is trained by :func:`~pgm3d.inference.fit_gan`, the others are fitted in closed form
    or by EM when built."""
    return isinstance(model, _SGD)


def _rows(data) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, ShapeSet):
        return data.flat(), data.flat_mask()
    if isinstance(data, (VoxelSet, SpriteScenes)):
        x = VSL.rows(data.voxels) if isinstance(data, VoxelSet) else data.rows()
        return x, torch.ones_like(x, dtype=torch.bool)
    x = torch.as_tensor(data)
    return x, torch.isfinite(x)


def model_rows(model, data) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``x`` and observation mask of ``data`` for ``model``, on its device and dtype.

    :param data: a :class:`~pgm3d.data.ShapeSet` (shape models take their own layout, others
        the flattened points and normals with absent parts masked), a
        :class:`~pgm3d.data.VoxelSet` (flattened 0/1 occupancy, all observed) or ``(N, D)`` rows
        (NaN = missing).
    """
    ref = next(t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point())
    if isinstance(data, ShapeSet) and hasattr(model, "data"):
        return model.data(data.to(dtype=ref.dtype, device=ref.device))
    x, mask = _rows(data)
    x, mask = x.to(ref), mask.to(ref.device)
    if x.shape[-1] != model.data_dim:
        raise ValueError(f"the data have {x.shape[-1]} columns, the model takes {model.data_dim}")
    return x, mask


def build_model(
    name: str,
    train,
    *,
    latent_dim: int | None = None,
    hidden: int | None = None,
    part_dim: int | None = None,
    likelihood: str = "gaussian",
    progress: bool | None = None,
):
    """A model named in :data:`~pgm3d.models.MODELS`, sized for (and, unless it is trained by
    SGD, fitted to) ``train``.

    :param str name: ``"fa"``, ``"ppca"``, ``"vae"``, ``"shapevae"``, ``"shapefa"``,
        ``"pattern-gaussian"``, ``"vsl"``, ``"gan"``, ``"mvae"`` or ``"scene-vae"``.
    :param train: a :class:`~pgm3d.data.ShapeSet`, a :class:`~pgm3d.data.VoxelSet` (VSL, GAN,
        at the grids' resolution) or ``(N, D)`` rows.
    :param int latent_dim: size of ``z`` (default 8); VSL's ``z_0`` (20); the GAN's ``z`` (200);
        the MVAE's objects (12 each); the scene VAE's ``z`` (60, matching the MVAE).
    :param int hidden: hidden width of the VAE's MLPs (128); ShapeVAE's joint layer (128;
        thesis: 512); VSL's skip layers (100).
    :param part_dim: ShapeVAE's ``u_p`` (default 256) or ShapeFA's per-part factors (16).
    :param str likelihood: the VAE's, ``"gaussian"`` or ``"bernoulli"``.
    :raises ValueError: an unknown name (listing the valid ones), or data of the wrong kind.
    """
    from pgm3d.models import MODELS

    MODELS[name]
    if name in SHAPE_MODELS and not isinstance(train, ShapeSet):
        raise ValueError(
            f"{name} models part-segmented shapes: give a shape family (e.g. chairs) or a shapes "
            ".npz as data, not rows"
        )
    for names, kind, what, give in _KINDS:
        if (name in names) != isinstance(train, kind):
            raise ValueError(
                f"{name} models {what}: give {give} as data"
                if name in names
                else f"{what} are modelled by {' or '.join(names)}, not {name}"
            )
    if latent_dim is not None and latent_dim < 1:
        raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
    if name in SCENE_MODELS:
        K = MVAE.objects_for(train.exists.shape[-1])
        if name == "mvae":
            return MVAE(K, latent_dim or 12)
        return SceneVAE(latent_dim or 12 * K)
    if name == "vsl":
        return VSL(train.resolution, latent_dim or 20, hidden=hidden or 100)
    if name == "gan":
        if hidden is not None:
            raise ValueError("the GAN's widths are the paper's; hidden does not apply")
        return GAN3D(train.resolution, latent_dim or 200)
    latent_dim = latent_dim or 8
    hidden = hidden or 128
    if name == "shapevae":
        kwargs = {"hidden": hidden} if hidden != 128 else {}
        return ShapeVAE.from_shapes(train, latent_dim, part_dim=part_dim or 256, **kwargs)
    if name == "shapefa":
        return _quiet_em(
            ShapeFA.fit_shapes,
            train.to(dtype=torch.float64),
            latent_dim,
            part_dim or 16,
            progress=progress,
        )
    if name == "pattern-gaussian":
        return PatternGaussian.fit_shapes(train.to(dtype=torch.float64))
    x, mask = _rows(train)
    if name == "vae":
        return VAE(x.shape[-1], latent_dim, hidden=(hidden,), likelihood=likelihood)
    x = x.to(torch.float64)
    if name == "ppca":
        if not bool(mask.all()):
            raise ValueError("ppca is fitted in closed form from complete rows; use fa instead")
        return PPCA.fit(x, latent_dim)
    if bool(mask.all()):
        return _quiet_em(FactorAnalysis.fit, x, latent_dim, progress=progress)
    return _quiet_em(FactorAnalysis.fit_missing, x, mask, latent_dim, progress=progress)


def _quiet_em(fn, *args, **kwargs):
    with warnings.catch_warnings():  # EM's slow-convergence warnings are not errors here
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)
