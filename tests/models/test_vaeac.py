import pyro
import pytest
import torch

from pgm3d.contract import ContractError
from pgm3d.data.images import load_digits
from pgm3d.data.masks import random_mask
from pgm3d.inference import complete, fit, log_likelihood
from pgm3d.models import VAEAC


@pytest.fixture(scope="module")
def digits():
    return load_digits().x[:400].float()


@pytest.fixture(scope="module")
def trained(digits):
    pyro.clear_param_store()
    torch.manual_seed(0)
    m = VAEAC(64, 8, hidden=(64, 64))
    h = fit(m, digits, "elbo", context={"b": m.no_mask(digits)}, context_noise=m.masks(0.5),
            epochs=30, batch_size=64, lr=3e-3, progress=False)  # fmt: skip
    return m.eval(), h


def test_training_on_random_masks_improves_the_bound(trained):
    _, h = trained
    assert h.bound[-1] > h.bound[0] + 5, h.bound


def test_the_prior_reads_the_observed_part_and_the_mask_only(digits):
    torch.manual_seed(0)
    m = VAEAC(64, 4, hidden=(32,)).eval()
    x = digits[:6]
    b = ~random_mask(x.shape, 0.5, generator=torch.Generator().manual_seed(1))
    pz, _ = m.prior(x, None, b)
    changed = torch.where(b, torch.randn_like(x), x)  # new values where b hides them
    pz2, _ = m.prior(changed, None, b)
    torch.testing.assert_close(pz.base_dist.loc, pz2.base_dist.loc, rtol=0, atol=0)
    # ... and the mask itself matters (the paper's point: one prior per mask)
    other = ~random_mask(x.shape, 0.5, generator=torch.Generator().manual_seed(2))
    pz3, _ = m.prior(x, None, other)
    assert not torch.allclose(pz.base_dist.loc, pz3.base_dist.loc)
    # the proposal reads x_b too
    q1, q2 = m.proposal_distribution(x, None, b), m.proposal_distribution(changed, None, b)
    assert not torch.allclose(q1.base_dist.loc, q2.base_dist.loc)


def test_only_entries_hidden_by_b_and_observed_in_the_data_are_scored(digits):
    m = VAEAC(64, 4, hidden=(32,))
    x = digits[:5]
    data_mask = random_mask(x.shape, 0.3, generator=torch.Generator().manual_seed(3))
    b = ~random_mask(x.shape, 0.5, generator=torch.Generator().manual_seed(4))
    trace = pyro.poutine.trace(m.model).get_trace(x, data_mask, b)
    assert torch.equal(trace.nodes["x"]["fn"].base_dist._mask, b & data_mask)
    assert "prior_regulariser" in trace.nodes  # a training term ...
    m.eval()
    assert "prior_regulariser" not in pyro.poutine.trace(m.model).get_trace(x, data_mask, b).nodes
    ll = log_likelihood(m, x, data_mask, context={"b": b}, num_samples=10)
    assert ll.shape == (5,) and torch.isfinite(ll).all()  # ... not part of the likelihood


def test_completion_fills_the_missing_entries_keeps_the_rest_and_beats_the_mean(digits, trained):
    m, _ = trained
    test = load_digits().x[1500:1600].float()
    mask = random_mask(test.shape, 0.5, generator=torch.Generator().manual_seed(5))
    r = complete(m, test, mask, "vaeac", num_samples=10)
    assert torch.equal(r.x[mask], test[mask]) and r.notes == ()
    assert r.samples["x"].shape == (1, 10, 100, 64) and r.samples["z"].shape == (1, 10, 100, 8)
    err = ((r.x - test) ** 2)[~mask].mean()
    mean_fill = ((digits.mean(0) - test) ** 2)[~mask].mean()
    assert err < 0.7 * mean_fill, (err, mean_fill)
    draws = complete(m, test, mask, "vaeac", num_samples=3, mean=False)
    assert not torch.equal(draws.samples["x"][0, 0], draws.samples["x"][0, 1])


def test_masks_it_was_not_trained_on_warn_and_say_so(digits, trained):
    m, _ = trained
    mostly_hidden = random_mask(digits[:10].shape, 0.95, generator=torch.Generator().manual_seed(6))
    with pytest.warns(UserWarning, match="never trained on"):
        r = complete(m, digits[:10], mostly_hidden, "vaeac")
    assert r.notes and "hide 9" in r.notes[0]
    with pytest.warns(UserWarning, match="not trained through"):
        complete(VAEAC(64, 4, hidden=(8,)), digits[:3], mostly_hidden[:3], "vaeac")


def test_bad_inputs_are_named(digits):
    m = VAEAC(64, 4, hidden=(8,))
    with pytest.raises(ContractError, match="needs the mask b"):
        fit(m, digits, "elbo", epochs=1, progress=False)
    with pytest.raises(ValueError, match="b must have the data's shape"):
        m.prior(digits[:3], None, torch.zeros(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="kind must be"):
        m.masks(kind="blocks")
    with pytest.raises(ValueError, match="needs the image_shape"):
        m.masks(kind="quarters")
    with pytest.raises(TypeError, match="needs patterns"):
        m.masks(kind="patterns")
    with pytest.raises(ValueError, match="patterns must be"):
        m.masks(kind="patterns", patterns=torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_samples"):
        complete(m, digits[:2], torch.ones(2, 64, dtype=torch.bool), "vaeac", num_samples=0)


def test_pattern_masks_draw_one_given_pattern_per_row():
    m = VAEAC(4, 2, hidden=(8,))
    patterns = torch.tensor([[True, True, False, False], [False, False, False, True]])
    draw = m.masks(kind="patterns", patterns=patterns)
    assert m.trained_masks == ("patterns", 0.375)
    b = draw({"b": torch.zeros(200, 4, dtype=torch.bool)}, torch.Generator().manual_seed(0))["b"]
    first = (b == patterns[0]).all(1)
    assert ((b == patterns[1]).all(1) | first).all()
    assert 60 < int(first.sum()) < 140  # both patterns drawn, about evenly
