import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO, config_enumerate

from pgm3d.contract import ContractError
from pgm3d.data.images import load_digits
from pgm3d.inference import complete, fit, log_likelihood
from pgm3d.models import M2
from pgm3d.models.partial import UNKNOWN, check_partial, guess_where_unknown

C = 3


def small(seed=0, **kw):
    torch.manual_seed(seed)
    return M2(4, C, latent_dim=2, hidden=(8,), **kw).double()


def toy_data():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(5, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([1, UNKNOWN, 2, UNKNOWN, 0])
    return x, y


def manual_bound(m, x, y, n=200_000):
    """Kingma et al. 2014 eqs. 6-8 by plain Monte Carlo over z, the labels summed by hand:
    L(x, y) for labelled rows, sum_y q(y|x) (L(x, y) - log q(y|x)) for the others."""
    g = torch.Generator().manual_seed(7)
    total = 0.0
    log_qy = m.label_distribution(x).logits.log_softmax(-1)
    for i in range(len(x)):
        labels = [int(y[i])] if y[i] >= 0 else range(C)
        for c in labels:
            yc = torch.tensor([c])
            q = m.latent_distribution(x[i : i + 1], yc)
            eps = torch.randn(n, 1, 2, generator=g, dtype=x.dtype)
            z = q.base_dist.loc + q.base_dist.scale * eps
            log_px = m.decode(z, yc).log_prob(x[i : i + 1]).sum(-1)
            log_pz = dist.Normal(0.0, 1.0).log_prob(z).sum(-1)
            elbo = (log_px + log_pz - q.log_prob(z)).mean() + torch.log(torch.tensor(1.0 / C))
            if y[i] >= 0:
                total += float(elbo)
            else:
                w = log_qy[i, c].exp()
                total += float(w * (elbo - log_qy[i, c]))
    return total


def test_enum_bound_sums_labels_exactly_where_unknown():
    m, (x, y) = small().eval(), toy_data()
    with torch.no_grad():
        pyro.set_rng_seed(0)
        elbo = TraceEnum_ELBO(num_particles=20_000, vectorize_particles=True, max_plate_nesting=1)
        ours = -float(elbo.loss(m.model, m.guide, x, None, y))
        ref = manual_bound(m, x, y)
    assert ours == pytest.approx(ref, abs=0.03)


def test_the_label_site_is_enumerated_on_the_unlabelled_rows_only():
    m, (x, y) = small().eval(), toy_data()
    guide = poutine.enum(config_enumerate(m.guide), first_available_dim=-2)
    tr = poutine.trace(guide).get_trace(x, None, y)
    site = tr.nodes["y_unobserved"]
    assert site["infer"]["enumerate"] == "parallel"
    assert site["value"].shape == (C, 1)  # every label, broadcast over rows
    torch.testing.assert_close(site["fn"]._mask, y < 0)
    # the labelled rows keep their label in every enumerated copy; z follows the labels
    assert tr.nodes["z"]["value"].shape == (C, 5, 2)
    model_tr = poutine.trace(poutine.replay(m.model, trace=tr)).get_trace(x, None, y)
    assert model_tr.nodes["y_observed"]["is_observed"]
    torch.testing.assert_close(model_tr.nodes["y_observed"]["mask"], y >= 0)


def test_fully_labelled_rows_give_the_plain_elbo():
    m, (x, _) = small().eval(), toy_data()
    y = torch.tensor([0, 1, 2, 1, 0])
    tr = poutine.trace(m.guide).get_trace(x, None, y)
    assert "y_unobserved" not in tr.nodes
    model_tr = poutine.trace(poutine.replay(m.model, trace=tr)).get_trace(x, None, y)
    assert model_tr.nodes["y"]["is_observed"]


def test_the_classification_term_is_a_training_term_weighted_by_alpha():
    m, (x, y) = small(alpha=5.0), toy_data()
    tr = poutine.trace(m.model).get_trace(x, None, y)
    factor = tr.nodes["classification"]["fn"].log_factor
    expect = 5.0 * m.label_distribution(x).log_prob(y.clamp_min(0)) * (y >= 0)
    torch.testing.assert_close(factor, expect)
    assert "classification" not in poutine.trace(m.eval().model).get_trace(x, None, y).nodes


@pytest.fixture(scope="module")
def digits():
    d = load_digits(dtype=torch.float32)
    x, labels = (d.x[:600] + 1) / 2, d.labels[:600]
    y = torch.full_like(labels, UNKNOWN)
    y[:60] = labels[:60]
    return x, labels, y


def test_m2_trains_through_fit_and_classifies_digits(digits):
    x, labels, y = digits
    pyro.clear_param_store()
    torch.manual_seed(0)
    m = M2(64, 10, latent_dim=8, hidden=(64,), alpha=0.1 * len(x))
    h = fit(m, x, "enum", context={"y": y}, epochs=15, batch_size=100, lr=3e-3, progress=False)
    assert h.bound[-1] > h.bound[0]
    m.eval()
    acc = float((m.classify(x[300:]) == labels[300:]).float().mean())
    assert acc > 0.5, acc  # chance is 0.1; 60 labels and 15 epochs
    # the common entry points: a likelihood by importance sampling, completion of pixels
    ll = log_likelihood(m, x[300:310], context={"y": y[300:310]}, num_samples=20)
    assert ll.shape == (10,) and torch.isfinite(ll).all()
    mask = torch.rand(10, 64, generator=torch.Generator().manual_seed(0)) > 0.5
    filled = complete(m, x[300:310], mask, "importance", context={"y": y[300:310]}).x
    torch.testing.assert_close(filled[mask], x[300:310][mask])


def test_m2_samples_fix_the_label_and_vary_the_style():
    m = small().eval()
    y = torch.full((4,), 2)
    out = m.sample(4, y=y, mean=True, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 4)
    assert not torch.allclose(out[0], out[1])  # different styles
    with pytest.raises(ValueError, match="z must be"):
        m.sample(4, y=torch.zeros(3, dtype=torch.long))


def test_bad_labels_get_one_clear_message():
    m, (x, _) = small(), toy_data()
    with pytest.raises(ContractError, match="needs the labels"):
        m.model(x, None, None)
    with pytest.raises(ValueError, match="row 2 has 3"):
        m.model(x, None, torch.tensor([0, 1, 3, -1, 0]))
    with pytest.raises(ValueError, match="row 0 has -2"):
        check_partial(torch.tensor([-2, 0]), 3)
    with pytest.raises(TypeError, match="integer categories"):
        m.model(x, None, torch.zeros(5))
    with pytest.raises(ValueError, match="shape"):
        m.model(x, None, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes"):
        M2(4, 1)
    with pytest.raises(ValueError, match="alpha"):
        M2(4, 3, alpha=-1.0)


def test_guess_where_unknown_returns_the_given_values_where_known():
    y = torch.tensor([2, UNKNOWN, 0])
    known = y >= 0
    fn = dist.Categorical(logits=torch.zeros(3, 4))
    tr = poutine.trace(lambda: guess_where_unknown("c", fn, y, known)).get_trace()
    value = tr.nodes["_RETURN"]["value"]
    assert value[0] == 2 and value[2] == 0
    assert tr.nodes["c_unobserved"]["value"].shape == (3,)
