"""Build any registered model from data by name, and turn data into a model's rows.

``build_model("shapevae", train_shapes, latent_dim=16)`` sizes a ShapeVAE for the shapes (its
parameters still to be trained with :func:`~pgm3d.inference.fit`);
``build_model("fa", rows, latent_dim=8)`` fits factor analysis by EM; ``build_model("vsl",
voxel_set)`` sizes a VSL for the grids' resolution. Everything goes through the
:class:`~pgm3d.models.base.Model` protocol: the registry names the class, the class says which
data it takes (:attr:`~pgm3d.models.base.Model.data_kind`) and builds itself
(:meth:`~pgm3d.models.base.Model.from_data`). This is what ``pgm3d fit`` runs.
"""

from __future__ import annotations

from pgm3d.models.base import DATA_KINDS, data_kind

__all__ = ["build_model", "model_rows", "trained_by_sgd"]


def trained_by_sgd(model) -> bool:
    """True for models whose parameters :func:`~pgm3d.inference.fit` trains (the VAEs and VSL);
    the GAN is trained by :func:`~pgm3d.inference.fit_gan`, the others are fitted in closed form
    or by EM when built."""
    return getattr(model, "trained_by", None) == "sgd"


def model_rows(model, data):
    """Rows ``x`` and observation mask of ``data`` for ``model``, on its device and dtype
    (:meth:`~pgm3d.models.base.Model.data_rows`).

    :param data: a :class:`~pgm3d.data.ShapeSet` (shape models take their own layout, others
        the flattened points and normals with absent parts masked), a
        :class:`~pgm3d.data.VoxelSet` (flattened 0/1 occupancy, all observed) or ``(N, D)`` rows
        (NaN = missing).
    """
    return model.data_rows(data)


def _kind_error(name: str, cls, kind: str) -> str:
    from pgm3d.models import MODELS

    if kind == cls.data_kind or cls.data_kind != "rows":
        what, give = DATA_KINDS[cls.data_kind]
        return f"{name} models {what}: give {give} as data, not {DATA_KINDS[kind][0]}"
    owners = [n for n in MODELS if MODELS[n].data_kind == kind]
    if not owners:
        return f"no registered model takes {DATA_KINDS[kind][0]} yet, and {name} models rows"
    return f"{DATA_KINDS[kind][0]} are modelled by {' or '.join(owners)}, not {name}"


def build_model(name: str, train, **options):
    """A model named in :data:`~pgm3d.models.MODELS`, sized for (and, unless it is trained by
    SGD, fitted to) ``train``.

    :param str name: ``"fa"``, ``"ppca"``, ``"vae"``, ``"shapevae"``, ``"shapefa"``,
        ``"pattern-gaussian"``, ``"vsl"``, ``"gan"``, ``"mvae"`` or ``"scene-vae"``.
    :param train: a :class:`~pgm3d.data.ShapeSet`, a :class:`~pgm3d.data.VoxelSet` (VSL, GAN,
        at the grids' resolution), :class:`~pgm3d.data.SpriteScenes` or ``(N, D)`` rows.
    :param options: ``latent_dim`` (size of ``z``, default 8; VSL's ``z_0``, 20; the GAN's
        ``z``, 200; the MVAE's objects, 12 each; the scene VAE's ``z``, 60), ``hidden``
        (hidden width of the VAE's MLPs, 128; ShapeVAE's joint layer, the thesis's 512; VSL's
        skip layers, 100), ``part_dim`` (ShapeVAE's ``u_p``, 256, or ShapeFA's per-part
        factors, 16), ``likelihood`` (the VAE's, ``"gaussian"`` or ``"bernoulli"``),
        ``progress``.
    :raises ValueError: an unknown name (listing the valid ones), or data of the wrong kind.
    """
    from pgm3d.models import MODELS

    cls = MODELS[name]
    kind = data_kind(train)
    if not cls.accepts(kind):
        raise ValueError(_kind_error(name, cls, kind))
    latent_dim = options.get("latent_dim")
    if latent_dim is not None and latent_dim < 1:
        raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
    return cls.from_data(train, **options)
