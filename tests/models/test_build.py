"""build_model / model_rows: any registered model from data, by name."""

import pytest
import torch
from pyro import poutine

from pgm3d.data import open_data, voxel_classes
from pgm3d.models import (
    MODELS,
    VAE,
    FactorAnalysis,
    PatternGaussian,
    ShapeFA,
    ShapeVAE,
    build_model,
    model_rows,
    trained_by_sgd,
)


@pytest.fixture(scope="module")
def chairs():
    return open_data("chairs", n_train=60, n_test=8, points_per_part=3)


@pytest.mark.parametrize(
    "name, cls, sgd",
    [
        ("fa", FactorAnalysis, False),
        ("vae", VAE, True),
        ("shapevae", ShapeVAE, True),
        ("shapefa", ShapeFA, False),
        ("pattern-gaussian", PatternGaussian, False),
    ],
)
def test_every_model_builds_from_shapes_and_reads_its_rows(chairs, name, cls, sgd):
    model = build_model(name, chairs.train, latent_dim=2, hidden=16, part_dim=2, progress=False)
    assert isinstance(model, cls) and trained_by_sgd(model) == sgd
    x, mask = model_rows(model, chairs.test)
    assert x.shape == mask.shape and x.shape[0] == 8 and x.dtype.is_floating_point
    assert not mask.all()  # absent parts are masked
    assert name in MODELS


def test_row_models_on_incomplete_rows(chairs):
    fa = build_model("fa", chairs.train, latent_dim=2, progress=False)  # EM with missing data
    assert torch.isfinite(fa.log_likelihood(*model_rows(fa, chairs.test))).all()
    with pytest.raises(ValueError, match="ppca is fitted in closed form from complete rows"):
        build_model("ppca", chairs.train)


def test_bad_requests(chairs):
    digits = open_data("digits").train
    with pytest.raises(ValueError, match="unknown model 'pointnet'; choose one of: fa, ppca, vae"):
        build_model("pointnet", digits)
    with pytest.raises(ValueError, match="vsl models voxel grids: give voxel-classes"):
        build_model("vsl", digits)
    grids = voxel_classes(2, 32, seed=0, classes=["box"])
    owners = "vsl or gan or sequential-volume or voxel-vae"
    with pytest.raises(ValueError, match=f"voxel grids are modelled by {owners}, not vae"):
        build_model("vae", grids)
    with pytest.raises(ValueError, match="shapevae models part-segmented shapes"):
        build_model("shapevae", digits)
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        build_model("vae", digits, latent_dim=0)
    vae = build_model("vae", digits, latent_dim=2)
    with pytest.raises(ValueError, match="the data have 162 columns, the model takes 64"):
        model_rows(vae, chairs.test)


@pytest.mark.parametrize("name, latent, dims", [("vsl", 20, 20 + 5 * 10), ("gan", 200, 200)])
def test_voxel_models_take_the_grids_resolution_and_papers_sizes(name, latent, dims):
    grids = voxel_classes(2, 32, seed=0, classes=["box", "torus"])
    model = build_model(name, grids)
    assert model.resolution == 32 and trained_by_sgd(model) == (name == "vsl")
    x, mask = model_rows(model, grids)
    assert x.shape == (4, 32**3) and x.dtype == torch.float32 and mask.all()
    torch.testing.assert_close(x, grids.voxels.reshape(4, -1).float())
    z = poutine.trace(model.model).get_trace(x[:1]).nodes
    assert sum(z[s]["value"].shape[-1] for s in z if s.startswith("z")) == dims
    smaller = build_model(name, grids, latent_dim=7)
    assert (smaller.global_dim if name == "vsl" else smaller.latent_dim) == 7


@pytest.mark.parametrize("sprites, objects", [(3, 5), (8, 10)])
def test_scene_models_are_sized_for_the_sprite_set(sprites, objects):
    split = open_data(f"sprites-{sprites}", n_train=4, n_test=2)
    mvae, vae = build_model("mvae", split.train), build_model("scene-vae", split.train)
    assert mvae.num_objects == objects and vae.latent_dim == 12 * objects
    assert trained_by_sgd(mvae) and trained_by_sgd(vae)
    x, mask = model_rows(mvae, split.test)
    assert x.shape == (2, 3 * 64 * 64) and mask.all()
    with pytest.raises(ValueError, match="multi-sprite scenes are modelled by mvae or scene-vae"):
        build_model("vae", split.train)
    with pytest.raises(ValueError, match="mvae models multi-sprite scenes: give sprites-3"):
        build_model("mvae", open_data("digits").train)
