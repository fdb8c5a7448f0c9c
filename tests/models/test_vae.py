import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from pgm3d.models import MODELS, VAE, GaussianEncoderGuide


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_vae_sites_shapes_and_samples(likelihood):
    torch.manual_seed(0)
    vae = MODELS["vae"](7, 3, hidden=(16,), likelihood=likelihood)
    x, z = vae.sample(5, return_latents=True)
    assert x.shape == (5, 7) and z.shape == (5, 3)
    if likelihood == "bernoulli":
        assert set(x.unique().tolist()) <= {0.0, 1.0}
    mask = torch.rand(5, 7) < 0.5
    x = torch.where(mask, x, torch.nan)
    guide_tr = pyro.poutine.trace(vae.guide).get_trace(x, mask)
    model_tr = pyro.poutine.trace(pyro.poutine.replay(vae.model, guide_tr)).get_trace(x, mask)
    assert guide_tr.nodes["z"]["value"].shape == (5, 3)
    assert model_tr.nodes["x"]["fn"].event_shape == (7,)
    loss = Trace_ELBO().differentiable_loss(vae.model, vae.guide, x, mask)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in vae.parameters() if p.grad is not None)
    assert vae.decode(z).mean.shape == (5, 7)


def test_masked_entries_do_not_change_the_likelihood():
    torch.manual_seed(1)
    vae = VAE(4, 2, hidden=(8,))
    x = vae.sample(3)
    mask = torch.tensor([[True, False, True, True]] * 3)
    z = torch.zeros(3, 2)
    cond = pyro.poutine.condition(vae.model, data={"z": z})
    lp = []
    for fill in (0.0, 100.0):
        tr = pyro.poutine.trace(cond).get_trace(torch.where(mask, x, fill), mask)
        lp.append(tr.nodes["x"]["fn"].log_prob(tr.nodes["x"]["value"]))
    torch.testing.assert_close(lp[0], lp[1])


def test_guides_and_vae_reject_bad_arguments():
    with pytest.raises(ValueError, match="likelihood"):
        VAE(4, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="covariance"):
        GaussianEncoderGuide(4, 2, covariance="banded")
    with pytest.raises(ValueError, match="n must be a positive int"):
        VAE(4, 2).sample(0)
    with pytest.raises(ValueError, match="columns"):
        VAE(4, 2).model(torch.zeros(2, 5))
