"""build_model / model_rows: any registered model from data, by name."""

import pytest
import torch

from pgm3d.data import open_data
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
    with pytest.raises(ValueError, match="unknown model 'gan'; choose one of: fa, ppca, vae"):
        build_model("gan", digits)
    with pytest.raises(ValueError, match="shapevae models part-segmented shapes"):
        build_model("shapevae", digits)
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        build_model("vae", digits, latent_dim=0)
    vae = build_model("vae", digits, latent_dim=2)
    with pytest.raises(ValueError, match="the data have 162 columns, the model takes 64"):
        model_rows(vae, chairs.test)
