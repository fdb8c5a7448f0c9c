import math

import pyro
import pytest
import torch

from pgm3d.contract import ContractError
from pgm3d.inference import HybridObjective, fit, log_likelihood
from pgm3d.models import CVAE, train_baseline

F64 = torch.float64


@pytest.fixture(scope="module")
def pairs():
    """Binary outputs with two modes per input: y = step(A x + s B) for a random sign s, so a
    deterministic prediction averages the modes and a latent can pick one."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 4, generator=g, dtype=F64)
    a = torch.randn(4, 6, generator=g, dtype=F64)
    b = 2 * torch.randn(1, 6, generator=g, dtype=F64)
    s = torch.where(torch.rand(600, 1, generator=g) < 0.5, 1.0, -1.0).to(F64)
    return x, ((x @ a + s * b) > 0).to(F64)


def fresh(latent_dim=2, baseline=None, seed=0):
    pyro.clear_param_store()
    torch.manual_seed(seed)
    return CVAE(4, 6, latent_dim, hidden=(32,), baseline=baseline).double()


def test_shapes_and_the_contract(pairs):
    x, y = pairs
    cvae = fresh()
    trace = pyro.poutine.trace(cvae.model).get_trace(y[:5], None, x[:5])
    assert trace.nodes["z"]["value"].shape == (5, 2) and trace.nodes["y"]["value"].shape == (5, 6)
    draws = cvae.sample(3, x=x[:5], generator=torch.Generator().manual_seed(0))
    assert draws.shape == (3, 5, 6) and set(draws.unique().tolist()) <= {0.0, 1.0}
    means, z = cvae.sample(2, x=x[:5], mean=True, return_latents=True)
    assert ((means > 0) & (means < 1)).all() and z.shape == (2, 5, 2)


def test_without_its_input_the_cvae_says_what_to_pass(pairs):
    _, y = pairs
    with pytest.raises(ContractError, match=r"context=\{'x': x\}"):
        fit(fresh(), y, "elbo", epochs=1, progress=False)
    with pytest.raises(ContractError, match="conditioning input"):
        fresh().sample(2)
    with pytest.raises(ValueError, match="x must have 4 columns"):
        fresh().prior(torch.zeros(3, 5, dtype=F64))
    with pytest.raises(ValueError, match="alpha must be a number in"):
        fresh().hybrid(1.5)


@pytest.mark.parametrize("objective", ["cvae", "gsnn", "hybrid"])
def test_the_papers_three_objectives_train(pairs, objective):
    x, y = pairs
    cvae = fresh()
    kwargs = {"guide": cvae.prior_guide} if objective == "gsnn" else {}
    loss = cvae.hybrid(0.5) if objective == "hybrid" else "elbo"
    h = fit(cvae, y, loss, context={"x": x}, epochs=30, batch_size=100, lr=1e-2, progress=False,
            **kwargs)  # fmt: skip
    assert h.bound[-1] > h.bound[0] + 0.5, h.bound


def test_the_hybrid_is_the_cvae_bound_at_alpha_1_and_the_gsnn_bound_at_alpha_0(pairs):
    x, y = pairs
    cvae = fresh()
    from pgm3d.inference import OBJECTIVES

    values = {}
    for name, objective in (
        ("cvae", OBJECTIVES["elbo"](cvae)),
        ("gsnn", OBJECTIVES["elbo"](cvae, cvae.prior_guide)),
        ("h1", HybridObjective(cvae, cvae.prior_guide, alpha=1.0)),
        ("h0", HybridObjective(cvae, cvae.prior_guide, alpha=0.0)),
    ):
        pyro.set_rng_seed(0)
        values[name] = float(objective(y[:50], context={"x": x[:50]}).detach())
    assert values["h1"] == pytest.approx(values["cvae"], rel=1e-12)
    assert values["h0"] == pytest.approx(values["gsnn"], rel=1e-12)


def _quadrature_cll(cvae, x, y, n=4001):
    """log p(y | x) = log of the integral over a 1-D z of p(z | x) p(y | x, z), by the
    trapezoid rule on the networks directly (not through pgm3d's estimators)."""
    with torch.no_grad():
        prior = cvae.prior(x)
        loc, scale = prior.base_dist.loc[:, 0], prior.base_dist.scale[:, 0]
        t = torch.linspace(-9, 9, n, dtype=F64)
        z = loc[None] + scale[None] * t[:, None]  # (n, B)
        log_prior = torch.distributions.Normal(loc, scale).log_prob(z)
        lik = cvae.decode(z[..., None], x).log_prob(y.expand(n, -1, -1))
        log_f = log_prior + lik + scale.log()[None]  # change of variables z = loc + scale t
        w = torch.full((n,), t[1] - t[0], dtype=F64)
        w[0] = w[-1] = w[0] / 2
        return torch.logsumexp(log_f + w.log()[:, None], 0)


def test_the_conditional_log_likelihood_equals_quadrature(pairs):
    x, y = pairs
    cvae = fresh(latent_dim=1)
    fit(cvae, y, "elbo", context={"x": x}, epochs=20, batch_size=100, lr=1e-2, progress=False)
    reference = _quadrature_cll(cvae, x[:20], y[:20])
    pyro.set_rng_seed(0)
    by_recognition = log_likelihood(cvae, y[:20], context={"x": x[:20]}, num_samples=20000)
    by_prior = log_likelihood(cvae, y[:20], context={"x": x[:20]}, num_samples=20000,
                              guide=cvae.prior_guide)  # fmt: skip
    # Monte Carlo from the prior: the likelihood is bounded, the weights' variance finite
    assert (by_prior - reference).abs().max() < 0.05, (by_prior, reference)
    # importance sampling from q(z | x, y): right for most rows; where q is narrower than the
    # posterior's tail the weights' variance is infinite and a row can miss by 0.1-0.2 nats
    # even at K = 20,000 (one did here; 200,000 samples bring it within 0.02)
    assert (by_recognition - reference).abs().median() < 0.02, (by_recognition, reference)
    assert torch.isfinite(reference).all() and (reference < 0).all()


def test_the_baseline_feeds_the_cvae_and_stays_fixed(pairs):
    x, y = pairs
    base = train_baseline(x, y, hidden=(32,), epochs=20, batch_size=100, lr=1e-2)
    before = [p.clone() for p in base.parameters()]
    # the baseline's cross-entropy beats predicting the marginal rate
    rate = y.mean(0).clamp(1e-3, 1 - 1e-3)
    marginal = -(y * rate.log() + (1 - y) * (1 - rate).log()).mean()
    with torch.no_grad():
        assert float(base.loss(x, y)) < 0.8 * float(marginal)
    cvae = fresh(baseline=base.double())
    h = fit(cvae, y, "elbo", context={"x": x}, epochs=5, batch_size=100, lr=1e-2, progress=False)
    assert math.isfinite(h.bound[-1])
    for a, b in zip(before, base.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="x has 600 rows but y has 5"):
        train_baseline(x, y[:5])


def test_input_omission_hides_inputs_the_same_for_model_and_guide_and_resumes(pairs, tmp_path):
    x, y = pairs
    omit = CVAE.input_omission(0.4)
    noisy = omit({"x": x}, generator=torch.Generator().manual_seed(0))["x"]
    assert abs(float((noisy == 0).double().mean()) - 0.4) < 0.02
    assert torch.equal(noisy[noisy != 0], x[noisy != 0])
    # one noisy context per step, seen by both the model and the guide
    seen = []
    cvae = fresh()

    def spying(name, original):
        def spy(y, mask=None, x=None):
            seen.append((name, x))
            return original(y, mask, x)

        return spy

    for name in ("model", "guide"):
        setattr(cvae, name, spying(name, getattr(cvae, name)))
    fit(cvae, y[:100], "elbo", context={"x": x[:100]}, context_noise=omit, epochs=1,
        batch_size=100, progress=False)  # fmt: skip
    last = {n: v for n, v in seen}
    assert torch.equal(last["model"], last["guide"]) and (last["model"] == 0).any()
    # a resumed run draws the same noise: it ends where an uninterrupted one does
    runs = []
    for resume_after in (None, 2):
        ckpt = tmp_path / f"c{resume_after}.pt"
        model = fresh()
        if resume_after:
            fit(model, y, "elbo", context={"x": x}, context_noise=omit, epochs=resume_after,
                batch_size=100, checkpoint=ckpt, progress=False)  # fmt: skip
        fit(model, y, "elbo", context={"x": x}, context_noise=omit, epochs=4, batch_size=100,
            checkpoint=ckpt, resume=bool(resume_after), progress=False)  # fmt: skip
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="probability"):
        CVAE.input_omission(1.0)
    with pytest.raises(ValueError, match="needs a context"):
        fit(fresh(), y, "elbo", context_noise=omit, epochs=1, progress=False)


def test_the_baseline_keeps_its_best_validation_weights(pairs):
    x, y = pairs
    valid = (x[500:], y[500:], None)
    net = train_baseline(x[:40], y[:40], hidden=(64,), epochs=200, batch_size=40, lr=3e-2,
                         valid=valid, patience=5)  # fmt: skip
    longer = train_baseline(x[:40], y[:40], hidden=(64,), epochs=200, batch_size=40, lr=3e-2)
    with torch.no_grad():  # 40 rows overfit: the early-stopped weights validate better
        assert float(net.loss(*valid)) < float(longer.loss(*valid))
