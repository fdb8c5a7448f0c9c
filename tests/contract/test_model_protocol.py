"""The Model protocol every registered model follows, and a user's model as a member of it."""

import inspect

import pyro
import pytest
import torch
from pyro_vae import PIXELS, VAE

import pgm3d
from pgm3d.inference import COMPLETION_METHODS, fit
from pgm3d.models import MODELS, SAMPLERS, Model, completion_methods
from pgm3d.models.base import DATA_KINDS


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_follows_the_protocol(name):
    cls = MODELS[name]
    assert issubclass(cls, Model)
    assert cls.data_kind in DATA_KINDS
    assert cls.trained_by in ("sgd", "em", "closed-form", "adversarial")
    assert set(cls.completion_methods) <= set(COMPLETION_METHODS.names())
    assert cls.from_data.__func__ is not Model.from_data.__func__
    params = inspect.signature(cls.sample).parameters
    assert list(params)[:2] == ["self", "n"]
    assert {"generator", "mean", "return_latents"} <= set(params)
    assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY for p in list(params)[2:])
    # anything more is a model's context (a class, a view), None for unconditional use
    extra = set(params) - {"self", "n", "generator", "mean", "return_latents"}
    assert all(params[p].default is None for p in extra)
    assert params["mean"].default is False and params["generator"].default is None


def test_which_back_ends_apply():
    assert completion_methods(MODELS["fa"].random(5, 2)) == (
        "exact",
        "fca",
        "sca",
        "mean",
        *SAMPLERS,
    )
    assert completion_methods(VAE(z_dim=2, hidden_dim=4)) == SAMPLERS  # any user's pair
    assert completion_methods(torch.nn.Linear(2, 2)) == ()
    assert MODELS["mvae"].completion_methods == ()  # latents in an objects plate


def test_a_wrapped_user_model_samples_and_saves_like_a_pgm3d_one(tmp_path):
    pyro.clear_param_store()
    torch.manual_seed(0)
    vae = VAE(z_dim=3, hidden_dim=16)
    x = (torch.rand(40, PIXELS) < 0.3).float()
    pair = pgm3d.wrap(vae)
    fit(pair, x, epochs=2, progress=False)
    draws, z = pair.sample(5, generator=torch.Generator().manual_seed(0), return_latents=True)
    assert draws.shape == (5, PIXELS) and set(draws.unique().tolist()) <= {0.0, 1.0}
    assert z.shape == (5, 3)
    means = pair.sample(5, mean=True)
    assert ((means > 0) & (means < 1)).all()
    pgm3d.save(pair, tmp_path / "vae.pt")
    # a user's class is never rebuilt from a file (that would run code it names): load into one
    with pytest.raises(pgm3d.saving.CheckpointError, match="into=model"):
        pgm3d.load(tmp_path / "vae.pt")
    back = pgm3d.load(tmp_path / "vae.pt", into=pgm3d.wrap(VAE(z_dim=3, hidden_dim=16)))
    torch.testing.assert_close(
        back.source.decoder.fc1.weight, vae.decoder.fc1.weight, rtol=0, atol=0
    )
    assert pgm3d.inference.log_likelihood(back, x[:3], num_samples=5).shape == (3,)


def test_the_diagnostics_take_a_user_model(tmp_path):
    from pgm3d.evaluation import active_units, sbc

    pyro.clear_param_store()
    torch.manual_seed(0)
    vae = VAE(z_dim=2, hidden_dim=16)
    x = (torch.rand(60, PIXELS) < 0.3).float()
    fit(vae, x, epochs=2, progress=False)
    units = active_units(vae, x, threshold=0.0)
    assert units.activity.shape == (2,) and units.count == 2
    result = sbc(vae, "importance", num_simulations=50, num_posterior_samples=9, num_bins=5,
                 data_dim=PIXELS, num_proposals=100, chains=1, num_samples=9)  # fmt: skip
    assert result.ranks.shape == (50, 2)


def _small_data(kind: str):
    from pgm3d.data import multi_sprites, shapes, voxel_classes

    if kind == "shapes":
        return shapes("chairs", 40, seed=0, points_per_part=2)
    if kind == "voxels":
        return voxel_classes(1, 32, seed=0, progress=False)
    if kind == "scenes":
        return multi_sprites(4, 3, seed=0)
    return torch.randn(60, 12)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_round_trips_through_a_safe_file(name, tmp_path):
    """Saved as its registry name, constructor arguments and tensors; rebuilt from pgm3d's own
    registry with no pickle, equal in every tensor and in what it computes."""
    from pgm3d.models import build_model

    torch.manual_seed(0)
    options = {"part_dim": 2, "latent_dim": 3} if name == "shapefa" else {}
    model = build_model(name, _small_data(MODELS[name].data_kind), progress=False, **options)
    pgm3d.save(model, tmp_path / "m.pt")
    back = pgm3d.load(tmp_path / "m.pt")
    assert type(back) is type(model)
    ours, theirs = model.state_dict(), back.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    g = torch.Generator().manual_seed(1)
    a = model.eval().sample(2, generator=g, mean=True)
    b = back.eval().sample(2, generator=torch.Generator().manual_seed(1), mean=True)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
