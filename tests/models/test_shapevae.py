import itertools
import math

import pyro
import pyro.poutine as poutine
import pytest
import torch

from pgm3d import complete
from pgm3d.data import shapes
from pgm3d.inference import fit, log_likelihood
from pgm3d.models import MODELS, ShapeVAE
from pgm3d.models.existence import ExistenceDistribution, existence_patterns

F64 = torch.float64


@pytest.fixture(scope="module")
def chairs():
    return shapes("chairs", 120, seed=0, points_per_part=8, dtype=F64)


@pytest.fixture(scope="module")
def small(chairs):
    torch.manual_seed(0)
    return ShapeVAE.from_shapes(chairs, latent_dim=4, part_dim=16, hidden=32, embed=16).double()


def test_default_architecture_follows_the_thesis(chairs):
    m = ShapeVAE.from_shapes(chairs, latent_dim=8)
    assert MODELS["shapevae"] is ShapeVAE
    assert m.dec_z[0].out_features == m.dec_e[0].out_features == 256
    assert m.dec_joint[0].out_features == 512
    part = m.dec_parts[0]
    assert [part[0].out_features, part[2].out_features, part[4].out_features] == [
        256,
        512,
        2 * 8 * 6,
    ]
    assert m.enc_parts[0][0].out_features == 512 and m.absent_bias.shape == (9, 256)
    assert m.min_variance == 1e-3 and m.data_dim == 9 * 8 * 6 + 9
    assert ShapeVAE.from_shapes(chairs, 8, normals=False).data_dim == 9 * 8 * 3 + 9


def test_data_rows_hold_points_normals_and_existences(small, chairs):
    x, mask = small.data(chairs)
    assert x.shape == mask.shape == (120, small.data_dim) and x.dtype == F64
    torch.testing.assert_close(x[:, small.point_dim :], chairs.existence.double())
    assert torch.equal(mask[:, : small.point_dim], chairs.flat_mask())
    assert mask[:, small.point_dim :].all()
    parts = small.to_points(x)
    torch.testing.assert_close(parts["points"], chairs.points)
    assert torch.equal(parts["point_mask"], chairs.point_mask())


def _log_probs(model, x, mask, z):
    tr = poutine.trace(poutine.condition(model.model, data={"z": z})).get_trace(x, mask)
    return tr.nodes["x"]["fn"].log_prob(tr.nodes["x"]["value"]), tr.nodes["e"]["fn"].log_prob(
        x[:, -9:]
    )


def test_absent_parts_do_not_enter_the_likelihood_or_the_encoder(small, chairs):
    x, mask = small.data(chairs[:20])
    absent = ~small.entry_mask(x[:, small.point_dim :])
    assert absent.any()
    noisy = x.clone()
    noisy[:, : small.point_dim][absent] = 7.0
    z = torch.randn(20, 4, dtype=F64)
    torch.testing.assert_close(
        _log_probs(small, noisy, mask, z)[0], _log_probs(small, x, mask, z)[0]
    )
    torch.testing.assert_close(small.encode(noisy, mask).mean, small.encode(x, mask).mean)
    # an entirely unobserved part is replaced by its learned bias b_p as well
    hide = mask.clone()
    hide[:, :48] = False  # the seat
    moved = x.clone()
    moved[:, :48] += 1.0
    torch.testing.assert_close(small.encode(moved, hide).mean, small.encode(x, hide).mean)


def test_the_likelihood_is_a_diagonal_gaussian_over_present_observed_entries(small, chairs):
    x, mask = small.data(chairs[:5])
    z = torch.randn(5, 4, dtype=F64)
    loc, scale = small.decode(z, x[:, small.point_dim :])
    keep = mask[:, : small.point_dim] & small.entry_mask(x[:, small.point_dim :])
    ref = (torch.distributions.Normal(loc, scale).log_prob(x[:, : small.point_dim]) * keep).sum(-1)
    torch.testing.assert_close(_log_probs(small, x, mask, z)[0], ref)
    assert (scale**2 >= small.min_variance).all()


def test_existence_prior_is_the_empirical_pattern_distribution(small, chairs):
    x, mask = small.data(chairs)
    patterns, counts = existence_patterns(chairs.existence)
    _, log_pe = _log_probs(small, x, mask, torch.zeros(120, 4, dtype=F64))
    for p, c in zip(patterns, counts, strict=True):
        rows = (chairs.existence == p).all(-1)
        torch.testing.assert_close(
            log_pe[rows], torch.full((int(c),), math.log(c / 120), dtype=F64)
        )


def test_smoothed_existence_distribution_normalises_over_all_patterns():
    existence = torch.tensor([[1, 0, 1], [1, 0, 1], [1, 1, 1]], dtype=torch.bool)
    d = ExistenceDistribution(*existence_patterns(existence), smoothing=0.5)
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    torch.testing.assert_close(d.log_prob(every).exp().sum(), torch.tensor(1.0))
    assert d.log_prob(torch.tensor([0.0, 0, 1])).exp().item() == pytest.approx(0.5 / (3 + 0.5 * 8))
    draws = d.sample((4000,), generator=torch.Generator().manual_seed(0))
    freq = (draws == torch.tensor([True, False, True])).all(-1).float().mean()
    assert freq.item() == pytest.approx(2.5 / 7, abs=0.03)
    with pytest.raises(ValueError, match=r"never occurs.*existence_smoothing"):
        ExistenceDistribution(*existence_patterns(existence)).log_prob(torch.tensor([0.0, 1, 0]))


def test_samples_have_training_patterns_and_zero_absent_parts(small, chairs):
    x, z = small.sample(50, generator=torch.Generator().manual_seed(0), return_latents=True)
    assert x.shape == (50, small.data_dim) and z.shape == (50, 4)
    e = x[:, small.point_dim :].bool()
    seen = (e[:, None] == chairs.existence[None]).all(-1).any(-1)
    assert seen.all()
    assert (x[:, : small.point_dim][~small.entry_mask(e)] == 0).all()


def test_training_improves_the_bound_and_iwae_tightens_it(chairs):
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    m = ShapeVAE.from_shapes(chairs, latent_dim=4, part_dim=32, hidden=64, embed=32).double()
    x, mask = m.data(chairs)
    history = fit(m, x, "elbo", mask=mask, epochs=15, batch_size=40, lr=3e-3, progress=False)
    assert history.loss[-1] < history.loss[0] - 100
    torch.manual_seed(1)
    elbo = log_likelihood(m, x[:30], mask[:30], num_samples=1, method="iwae").mean()
    iwae = log_likelihood(m, x[:30], mask[:30], num_samples=200).mean()
    assert iwae > elbo


@pytest.mark.parametrize("method", ["pseudo_gibbs", "mwg"])
def test_completion_back_ends_fill_dropped_parts(small, chairs, method):
    x, mask = small.data(chairs[:6])
    dropped = mask.clone()
    back = chairs.part_slice("back")
    dropped[:, back.start * 6 : back.stop * 6] = False
    r = complete(small, x, dropped, method, chains=2, warmup=5, thin=1, num_samples=4, seed=0)
    assert r.x.shape == x.shape and torch.equal(r.x[dropped], x[dropped])
    assert torch.isfinite(r.x).all()
    # normals from points: every normal masked
    normals = mask.clone()
    normals[:, : small.point_dim] &= torch.arange(small.point_dim) % 6 < 3
    r = complete(small, x, normals, method, chains=1, warmup=2, thin=1, num_samples=2, seed=0)
    assert torch.equal(r.x[normals], x[normals])


def test_bad_inputs_are_named(small, chairs):
    x, mask = small.data(chairs[:4])
    with pytest.raises(ValueError, match="existence columns"):
        small.model(x, torch.zeros_like(mask))
    bad = x.clone()
    bad[0, -9:] = 0
    with pytest.raises(ValueError, match="no parts"):
        small.model(bad, mask)
    bad = x.clone()
    bad[0, -1] = 0.5
    with pytest.raises(ValueError, match="0 or 1"):
        small.model(bad, mask)
    unseen = x.clone()
    unseen[0, -9:] = torch.tensor([1.0, 0, 0, 0, 0, 0, 1, 1, 0], dtype=F64)
    with pytest.raises(ValueError, match="never occurs in the training data"):
        small.model(unseen, mask)
    nan = x.clone()
    nan[0, 0] = torch.nan
    with pytest.raises(ValueError, match="NaN"):
        small.model(nan, mask)
    with pytest.raises(ValueError, match="columns|width|dimension|D ="):
        small.model(x[:, 1:], mask[:, 1:])
    with pytest.raises(ValueError, match="point entries"):
        small.data(shapes("chairs", 2, points_per_part=4, dtype=F64))
    with pytest.raises(ValueError, match="latent_dim"):
        ShapeVAE.from_shapes(chairs, latent_dim=0)


def test_points_only_model(chairs):
    torch.manual_seed(0)
    m = ShapeVAE.from_shapes(chairs, 4, normals=False, part_dim=8, hidden=16, embed=8).double()
    x, mask = m.data(chairs[:8])
    assert x.shape[-1] == 9 * 8 * 3 + 9 and m.to_points(x)["normals"] is None
    torch.testing.assert_close(m.to_points(x)["points"], chairs.points[:8])
    assert torch.isfinite(log_likelihood(m, x, mask, num_samples=4)).all()


@pytest.mark.gpu
def test_shapevae_trains_and_completes_on_cuda(chairs):
    torch.manual_seed(0)
    m = ShapeVAE.from_shapes(chairs, 4, part_dim=16, hidden=32, embed=16).to("cuda")
    x, mask = m.data(chairs.to("cuda", torch.float32))
    assert x.is_cuda and mask.is_cuda
    fit(m, x, "elbo", mask=mask, epochs=2, batch_size=40, progress=False)
    r = complete(m, x[:4], mask[:4], "mwg", chains=1, warmup=2, thin=1, num_samples=2, seed=0)
    assert r.x.is_cuda
    assert m.sample(3).is_cuda
