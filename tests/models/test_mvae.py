"""The multi-entity VAE and its VAE baseline: shapes, attention, the objects plate, order
invariance, masking, and agreement of the vectorised bounds with a hand computation."""

import pyro
import pyro.poutine as poutine
import pytest
import torch

from pgm3d.data import multi_sprites
from pgm3d.inference import complete, fit, log_likelihood
from pgm3d.inference.trace import log_weights
from pgm3d.models import MODELS, MVAE, SceneVAE
from pgm3d.models.mvae import gaussian_kl


@pytest.fixture(scope="module")
def x():
    return multi_sprites(6, 3, seed=0).rows()


def test_candidates_grid_attention_and_the_objects_plate(x):
    torch.manual_seed(0)
    m = MVAE()
    loc, scale, kl = m.candidates(x)
    assert loc.shape == scale.shape == (6, 64, 12) and kl.shape == (6, 64)
    torch.testing.assert_close(kl, gaussian_kl(loc, scale))
    sel_loc, _, sel_kl, index = m.select(x)
    assert sel_loc.shape == (6, 5, 12) and index.shape == (6, 5)
    # the kept candidates are the five of largest KL, in decreasing order
    torch.testing.assert_close(sel_kl, kl.sort(-1, descending=True).values[:, :5])
    torch.testing.assert_close(sel_loc, loc[torch.arange(6)[:, None], index])
    tr = poutine.trace(m.guide).get_trace(x)
    z = tr.nodes["z"]
    assert z["value"].shape == (5, 6, 12)
    assert {f.name: f.dim for f in z["cond_indep_stack"]} == {"objects": -2, "data": -1}
    model_tr = poutine.trace(poutine.replay(m.model, trace=tr)).get_trace(x)
    assert model_tr.nodes["x"]["fn"].batch_shape == (1, 6)  # outside the objects plate
    assert m.latent_dim == 60 and m.encode(x)["kl_map"].shape == (6, 8, 8)


@pytest.mark.parametrize("pooling", ["max", "sum"])
def test_the_image_does_not_depend_on_the_order_of_the_objects(pooling):
    torch.manual_seed(1)
    m = MVAE(pooling=pooling).double()
    z = torch.randn(3, 5, 12, dtype=torch.float64)
    for _ in range(3):
        perm = torch.randperm(5)
        torch.testing.assert_close(m.decode_logits(z[:, perm]), m.decode_logits(z))
    # and the model's joint density of (x, z_1..K) is invariant too
    x = torch.rand(3, m.data_dim, dtype=torch.float64)
    zs = z.transpose(0, 1)  # (K, B, Z), the site's layout
    joint = []
    for order in (torch.arange(5), torch.randperm(5)):
        cond = poutine.condition(m.model, data={"z": zs[order]})
        joint.append(poutine.trace(cond).get_trace(x).log_prob_sum())
    torch.testing.assert_close(joint[0], joint[1])


def test_vectorised_log_weights_match_a_hand_computation(x):
    """Particles, objects and data plates line up: each particle's log-weight is
    log p(x | z) + log p(z) - log q(z | x) of its own z."""
    torch.manual_seed(2)
    m = MVAE().double()
    xd = x.double()
    pyro.set_rng_seed(0)
    lw = log_weights(m.model, m.guide, xd, None, 4, 2)
    z = lw.guide_trace.nodes["z"]["value"]  # (P, K, B, Z)
    assert z.shape == (4, 5, 6, 12) and lw.total.shape == (4, 6)
    loc, scale, _, _ = m.select(xd)
    for p in range(4):
        zp = z[p].transpose(0, 1)  # (B, K, Z)
        lik = torch.distributions.Bernoulli(logits=m.decode_logits(zp), validate_args=False)
        log_lik = lik.log_prob(xd).sum(-1)
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(zp).sum((-2, -1))
        log_q = torch.distributions.Normal(loc, scale).log_prob(zp).sum((-2, -1))
        torch.testing.assert_close(lw.total[p], log_lik + log_prior - log_q)


def test_missing_pixels_are_marginalised_by_the_mask(x):
    torch.manual_seed(3)
    m = MVAE().double()
    xd = x.double()
    mask = torch.ones_like(xd, dtype=torch.bool)
    mask[:, :2000] = False
    holed = xd.masked_fill(~mask, float("nan"))
    z = poutine.trace(m.guide).get_trace(xd, mask).nodes["z"]["value"]
    cond = poutine.condition(m.model, data={"z": z})
    full = poutine.trace(cond).get_trace(xd, mask).log_prob_sum()
    nan = poutine.trace(cond).get_trace(holed, mask).log_prob_sum()
    torch.testing.assert_close(full, nan)  # NaN under the mask changes nothing
    everything = torch.ones_like(mask)
    x_site = poutine.trace(cond).get_trace(xd, everything).nodes["x"]
    assert x_site["fn"].batch_shape == (1, 6)  # the mask keeps x outside the objects plate
    unmasked = poutine.trace(cond).get_trace(xd).log_prob_sum()
    torch.testing.assert_close(
        poutine.trace(cond).get_trace(xd, everything).log_prob_sum(), unmasked
    )
    changed = xd.clone()
    changed[:, :2000] = 1 - changed[:, :2000]
    torch.testing.assert_close(poutine.trace(cond).get_trace(changed, mask).log_prob_sum(), full)


def test_both_models_train_and_their_iwae_bounds_tighten_with_samples(x):
    data = multi_sprites(64, 3, seed=4).rows()
    for model in (MVAE(), SceneVAE()):
        torch.manual_seed(4)
        h = fit(model, data, "elbo", epochs=3, batch_size=16, lr=1e-3, progress=False)
        assert h.bound[-1] > h.bound[0]
        torch.manual_seed(5)
        one = log_likelihood(model, data[:8], num_samples=1).mean()
        many = log_likelihood(model, data[:8], num_samples=16).mean()
        assert many > one  # log-mean-exp of 16 weights vs one draw
    vae = SceneVAE()
    assert vae.latent_dim == MVAE().latent_dim == 60
    assert vae.sample(2).shape == (2, 3 * 64 * 64) and vae.reconstruct(x).shape == x.shape
    assert {"mvae", "scene-vae"} <= set(MODELS.names())


def test_completion_back_ends_refuse_latents_in_an_objects_plate(x):
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, :100] = False
    for method in ("mwg", "importance"):
        with pytest.raises(ValueError, match="latent sites also lie in other plates"):
            complete(MVAE(), x, mask, method)
    assert complete(SceneVAE(), x[:2], mask[:2], "importance", num_proposals=4).x.shape == (
        2,
        x.shape[1],
    )


def test_counting_threshold_objects():
    m = MVAE()
    assert m.count(multi_sprites(4, 3, seed=0).rows(), threshold=1e9).tolist() == [0] * 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pooling": "mean"}, "pooling must be 'max' or 'sum'"),
        ({"num_objects": 65}, "num_objects must be <= 64"),
        ({"image_size": 60}, "multiple of 8"),
        ({"object_dim": 0}, ">= 1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MVAE(**kwargs)


@pytest.mark.gpu
def test_the_mvae_trains_encodes_and_counts_on_cuda():
    data = multi_sprites(32, 3, seed=0).rows().to("cuda")
    for model in (MVAE().to("cuda"), SceneVAE().to("cuda")):
        fit(model, data, "iwae", num_particles=2, epochs=1, batch_size=16, progress=False)
        assert model.reconstruct(data[:2]).is_cuda and model.sample(2).is_cuda
    enc = MVAE().to("cuda").encode(data[:4])
    assert enc["kl"].is_cuda and enc["kl_map"].shape == (4, 8, 8)
