"""Rezende et al.'s sequential volumetric model: its sites, its shared state transition, the
objectives that train it, completion and conditioning."""

import pyro
import pyro.poutine as poutine
import pytest
import torch
from torch import nn

import pgm3d
from pgm3d.contract import ContractError
from pgm3d.data import half_volume_mask, primitives
from pgm3d.inference import complete, fit, log_likelihood
from pgm3d.models import MODELS, SequentialVolumeModel

R = 8


@pytest.fixture(scope="module")
def rows():
    data = primitives(12, R, seed=0)
    return SequentialVolumeModel.rows(data.voxels), data.labels


def _small(**kw):
    torch.manual_seed(0)
    return SequentialVolumeModel(R, kw.pop("steps", 3), latent_dim=4, hidden=32, patch=4, **kw)


def test_registered_with_a_site_per_step(rows):
    x, _ = rows
    assert MODELS["sequential-volume"] is SequentialVolumeModel
    m = _small()
    guide = poutine.trace(m.guide).get_trace(x[:5])
    model = poutine.trace(poutine.replay(m.model, trace=guide)).get_trace(x[:5])
    latents = [n for n, s in guide.nodes.items() if s["type"] == "sample" and n != "data"]
    assert latents == m.latent_sites == ["z1", "z2", "z3"]
    assert model.nodes["x"]["value"].shape == (5, R**3)
    assert model.nodes["z2"]["fn"].batch_shape == (5,)


def test_the_guide_and_the_model_share_one_state_transition(rows):
    """Eqs. 1-2: the guide's states come from the generative model's transition — one module
    (by construction), so changing it changes both the prior's canvas and the posterior of
    every latent after the first."""
    x, _ = rows
    m = _small()
    assert [mod for mod in m.modules() if isinstance(mod, nn.LSTMCell)] == [m.transition]
    pyro.set_rng_seed(0)
    guide = poutine.trace(m.guide).get_trace(x[:4])
    loc = guide.nodes["z2"]["fn"].base_dist.loc
    model = poutine.trace(poutine.replay(m.model, trace=guide)).get_trace(x[:4])
    logits = model.nodes["x"]["fn"].base_dist.logits
    for out in (loc, logits):
        grad = torch.autograd.grad(out.sum(), m.transition.weight_ih, retain_graph=True)[0]
        assert grad.abs().sum() > 0
    # the first latent's posterior sees the start state only: not the transition
    first = guide.nodes["z1"]["fn"].base_dist.loc
    assert torch.autograd.grad(first.sum(), m.transition.weight_ih, allow_unused=True)[0] is None


@pytest.mark.parametrize("objective, particles", [("elbo", 1), ("iwae", 4), ("vimco", 4)])
def test_every_objective_trains_it(rows, objective, particles):
    x, _ = rows
    m = _small()
    h = fit(m, x, objective, num_particles=particles, epochs=15, batch_size=20, lr=3e-3,
            seed=0, progress=False)  # fmt: skip
    assert h.bound[-1] > h.bound[0] + 20, h.bound


def test_the_importance_weighted_bound_tightens_with_samples(rows):
    x, _ = rows
    m = _small()
    fit(m, x, "elbo", epochs=5, batch_size=20, seed=0, progress=False)
    pyro.set_rng_seed(1)
    one = log_likelihood(m, x, num_samples=1).mean()
    pyro.set_rng_seed(1)
    many = log_likelihood(m, x, num_samples=64).mean()
    assert many > one


@pytest.mark.parametrize("method", ["pseudo_gibbs", "mwg"])
def test_completion_of_the_missing_half_keeps_what_is_seen(rows, method):
    x, _ = rows
    m = _small()
    mask = half_volume_mask((6, R**3), R, axis=0)  # the left half missing
    done = complete(m, x[:6], mask, method=method, num_samples=5, seed=0)
    filled = done.x
    assert filled.shape == (6, R**3)
    torch.testing.assert_close(filled[mask], x[:6][mask])
    assert ((filled >= 0) & (filled <= 1)).all()


def test_the_affine_and_separable_transforms_agree_at_the_start(rows):
    """Both heads start at the identity map, where any affine map's grid sampling and the
    separable kernels give the same numbers."""
    x, _ = rows
    a, b = _small(transform="separable"), _small(transform="affine")
    shared = {k: v for k, v in a.state_dict().items() if "where" not in k}
    b.load_state_dict(shared, strict=False)
    pyro.set_rng_seed(0)
    tr = poutine.trace(a.guide).get_trace(x[:3])
    la = poutine.trace(poutine.replay(a.model, trace=tr)).get_trace(x[:3]).log_prob_sum()
    lb = poutine.trace(poutine.replay(b.model, trace=tr)).get_trace(x[:3]).log_prob_sum()
    torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-3)


def test_class_and_view_contexts(rows):
    x, labels = rows
    m = _small(context="class", num_classes=5)
    h = fit(m, x, "elbo", context={"c": labels}, epochs=2, batch_size=20, progress=False)
    assert len(h.bound) == 2
    assert m.sample(5, c=torch.arange(5)).shape == (5, R, R, R)
    with pytest.raises(ContractError, match="conditioned on a class: pass context"):
        m.model(x[:2])
    with pytest.raises(ValueError, match="class indices in 0..4"):
        m.model(x[:2], c=torch.tensor([0, 7]))
    views = x.reshape(-1, R, R, R).amax(1)  # silhouettes along the first axis
    v = _small(context="view", view_size=R)
    fit(v, x, "elbo", context={"c": views}, epochs=2, batch_size=20, progress=False)
    assert v.sample(3, c=views[:3], mean=True).shape == (3, R, R, R)
    with pytest.raises(ValueError, match="c must be \\(2, 8, 8\\) views"):
        v.model(x[:2], c=torch.zeros(2, 4, 4))


def test_saved_and_rebuilt_from_the_registry(tmp_path):
    m = _small(steps=2)
    pgm3d.save(m, tmp_path / "m.pt")
    back = pgm3d.load(tmp_path / "m.pt")
    assert back.steps == 2 and back.patch == 4
    g = torch.Generator().manual_seed(0)
    a = m.sample(2, generator=g, mean=True)
    torch.testing.assert_close(
        back.sample(2, generator=torch.Generator().manual_seed(0), mean=True), a
    )


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        SequentialVolumeModel(8, steps=0)
    with pytest.raises(ValueError, match="context must be None, 'class' or 'view'"):
        SequentialVolumeModel(8, context="text")
    with pytest.raises(ValueError, match="needs num_classes >= 2"):
        SequentialVolumeModel(8, context="class")
    with pytest.raises(ValueError, match="view_size must be a multiple of 4"):
        SequentialVolumeModel(8, context="view", view_size=6)
    with pytest.raises(ValueError, match="transform must be"):
        SequentialVolumeModel(8, transform="warp")
    with pytest.raises(ValueError, match="no context"):
        _small().model(torch.zeros(2, R**3), c=torch.zeros(2))


def test_more_steps_give_a_better_test_bound():
    """The paper's finding at a small scale: 225 Primitives at 16³, 40 epochs; the test
    IWAE bound (K = 20) on 75 held-out volumes was -392.9 nats with T = 1 and -337.6 with
    T = 4 (55 nats better)."""
    data = primitives(60, 16, seed=0, test_fraction=0.25)
    x = SequentialVolumeModel.rows(data.subset("train").voxels)
    xt = SequentialVolumeModel.rows(data.subset("test").voxels)
    bounds = {}
    for steps in (1, 4):
        torch.manual_seed(0)
        m = SequentialVolumeModel(16, steps=steps, latent_dim=8, hidden=64, patch=6)
        fit(m, x, "elbo", epochs=40, batch_size=25, lr=3e-3, seed=0, progress=False)
        pyro.set_rng_seed(1)
        bounds[steps] = float(log_likelihood(m, xt, num_samples=20).mean())
    assert bounds[4] > bounds[1] + 20, bounds
