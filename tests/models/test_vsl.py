"""The Variational Shape Learner: shapes, the chained latent structure, masking, training."""

import pyro
import pyro.poutine as poutine
import pytest
import torch

from pgm3d.data import voxel_classes
from pgm3d.inference import complete, fit, log_likelihood
from pgm3d.models import MODELS, VSL


@pytest.fixture(scope="module")
def grids():
    return VSL.rows(voxel_classes(4, resolution=30, seed=0).voxels)  # (40, 27000)


@pytest.mark.parametrize("resolution", [30, 32])
def test_shapes_of_every_stage(resolution):
    torch.manual_seed(0)
    vsl = VSL(resolution, global_dim=6, local_dim=3, num_local=4)
    x = (torch.rand(5, resolution**3) < 0.3).float()
    assert vsl.encode(x).shape == (5, 100)
    assert vsl.embed(x).shape == (5, 6 + 4 * 3)
    assert vsl.decode_logits(torch.zeros(2, 7, 18)).shape == (2, 7, resolution**3)
    assert vsl.sample(3).shape == (3, resolution, resolution, resolution)
    draws = vsl.sample(3, mean=False, generator=torch.Generator().manual_seed(1))
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert vsl.latent_sites == ["z0", "z1", "z2", "z3", "z4"]
    assert MODELS["vsl"] is VSL


def test_the_seeds_architecture_and_defaults():
    vsl = VSL()
    assert (vsl.global_dim, vsl.local_dim, vsl.num_local, vsl.resolution) == (20, 10, 5, 30)
    convs = [m for m in vsl.enc_conv if isinstance(m, torch.nn.Conv3d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (32, 6, 2),
        (64, 5, 2),
        (128, 4, 1),
    ]
    assert vsl.enc_fc[0].in_features == 1024 and vsl.enc_fc[2].out_features == 100
    assert vsl.dec_fc[0].in_features == 70 and vsl.dec_fc[0].out_features == 600
    assert VSL.kl_weight_for() == pytest.approx(1e-3 * 27000 / 6)


def test_the_model_and_guide_chain_each_local_latent_on_the_previous_and_the_global():
    torch.manual_seed(0)
    vsl = VSL(30, global_dim=4, local_dim=2, num_local=3)
    x = (torch.rand(2, 27000) < 0.2).float()
    guide = poutine.trace(vsl.guide).get_trace(x)
    model = poutine.trace(poutine.replay(vsl.model, trace=guide)).get_trace(x)
    assert [n for n in model.stochastic_nodes if n != "data"] == ["z0", "z1", "z2", "z3"]
    # p(z_2 | z_1, z_0) moves with z_1 and with z_0; p(z_1 | z_0) does not depend on z_2
    z0, z1 = guide.nodes["z0"]["value"], guide.nodes["z1"]["value"]
    base = vsl.prior(2, z0, z1)[0]
    assert not torch.allclose(base, vsl.prior(2, z0, z1 + 1)[0])
    assert not torch.allclose(base, vsl.prior(2, z0 + 1, z1)[0])
    h = vsl.encode(x)
    q2 = vsl.posterior(2, h, z0, z1)[0]
    assert not torch.allclose(q2, vsl.posterior(2, h, z0, z1 + 1)[0])
    assert not torch.allclose(q2, vsl.posterior(2, vsl.encode(1 - x), z0, z1)[0])
    model.compute_log_prob()
    assert model.nodes["x"]["log_prob"].shape == (2,)


def test_missing_voxels_do_not_enter_the_likelihood():
    torch.manual_seed(0)
    vsl = VSL(30, global_dim=4, local_dim=2, num_local=2)
    x = (torch.rand(3, 27000) < 0.3).float()
    mask = torch.rand(3, 27000) < 0.5
    guide = poutine.trace(vsl.guide).get_trace(x, mask)

    def log_px(data):
        tr = poutine.trace(poutine.replay(vsl.model, trace=guide)).get_trace(data, mask)
        tr.compute_log_prob()
        return tr.nodes["x"]["log_prob"]

    changed = torch.where(mask, x, torch.nan)  # missing entries may hold anything, even NaN
    torch.testing.assert_close(log_px(changed), log_px(x))
    flipped = torch.where(mask, 1 - x, x)
    assert not torch.allclose(log_px(flipped), log_px(x))
    # the guide reads missing voxels as empty (the paper's one-channel encoder) ...
    torch.testing.assert_close(vsl.encode(changed, mask), vsl.encode(x * mask))
    # ... or sees the mask as a second channel
    with_mask = VSL(30, global_dim=4, local_dim=2, num_local=2, mask_channel=True)
    assert with_mask.enc_conv[0].in_channels == 2
    assert not torch.allclose(with_mask.encode(x, mask), with_mask.encode(x, ~mask))


def test_training_raises_the_bound_and_the_back_ends_run(grids):
    torch.manual_seed(0)
    vsl = VSL(30, global_dim=8, local_dim=4, num_local=3)
    history = fit(vsl, grids, "elbo", epochs=4, batch_size=20, lr=1e-3, kl_weight=4.5, seed=0)
    assert history.bound[-1] > history.bound[0] + 1000  # nats per grid of 27,000 voxels
    mask = torch.ones_like(grids[:4], dtype=torch.bool)
    mask[:, :13500] = False  # half of the volume missing
    for method in ["mwg", "pseudo_gibbs"]:
        done = complete(vsl, grids[:4], mask, method, chains=2, warmup=3, thin=1, num_samples=4)
        assert torch.equal(done.x[mask], grids[:4][mask])
        assert ((done.x >= 0) & (done.x <= 1)).all()
        assert done.samples["z0"].shape == (2, 4, 4, 8)
    ll = log_likelihood(vsl, grids[:3], num_samples=8)
    assert ll.shape == (3,) and torch.isfinite(ll).all()


def test_bad_input():
    with pytest.raises(ValueError, match="resolution must be 30 or 32"):
        VSL(64)
    with pytest.raises(ValueError, match=">= 1"):
        VSL(num_local=0)
    with pytest.raises(ValueError, match=r"voxels must be \(N, R, R, R\)"):
        VSL.rows(torch.zeros(3, 30, 30))
    vsl = VSL(30, global_dim=2, local_dim=2, num_local=1)
    with pytest.raises(ValueError):
        pyro.poutine.trace(vsl.model).get_trace(torch.zeros(2, 32**3))


def test_the_prior_and_initialisation_options():
    torch.manual_seed(0)
    std = VSL(30, global_dim=4, local_dim=3, num_local=2, prior="standard")
    z0 = torch.randn(5, 4)
    loc, scale = std.prior(2, z0, torch.randn(5, 3))
    assert torch.equal(loc, torch.zeros(5, 3)) and torch.equal(scale, torch.ones(5, 3))
    xav = VSL(30, global_dim=4, local_dim=3, num_local=2)
    assert xav.init == "xavier" and all(
        torch.count_nonzero(m.bias) == 0
        for m in xav.modules()
        if isinstance(m, torch.nn.Linear | torch.nn.Conv3d | torch.nn.ConvTranspose3d)
    )
    torch_init = VSL(30, global_dim=4, local_dim=3, num_local=2, init="torch")
    assert torch.count_nonzero(torch_init.q_z0.bias) > 0
    with pytest.raises(ValueError, match="prior must be"):
        VSL(30, prior="flat")
    with pytest.raises(ValueError, match="init must be"):
        VSL(30, init="he")
    # the seed's latent sizes by the number of classes (§4.1.2)
    assert VSL.sizes_for(10) == {"global_dim": 10, "local_dim": 5, "num_local": 5}
    assert VSL.sizes_for(40) == {"global_dim": 20, "local_dim": 10, "num_local": 5}


def test_kl_per_latent_matches_the_closed_form_and_scales_stay_differentiable(grids):
    torch.manual_seed(0)
    vsl = VSL(30, global_dim=4, local_dim=3, num_local=2, prior="standard").double()
    x = grids[:6].double()
    kl = vsl.kl_per_latent(x)
    assert kl.shape == (3,) and (kl >= 0).all()
    loc, scale = vsl.posterior(0, vsl.encode(x), None, None)
    expected = (0.5 * (loc**2 + scale**2 - 1) - scale.log()).sum(-1).mean()
    torch.testing.assert_close(kl[0], expected)
    # a log-scale far beyond the bounds keeps a gradient (a hard clamp has none there)
    params = torch.tensor([0.0, -40.0], dtype=torch.float64, requires_grad=True)
    from pgm3d.models.vsl import _gaussian

    _, s = _gaussian(params)
    s.sum().backward()
    assert s.item() >= torch.tensor(-12.0).exp() and params.grad[1] != 0
