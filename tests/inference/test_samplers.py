import pyro
import pyro.distributions as dist
import pytest
import torch

from pgm3d import FactorAnalysis, complete
from pgm3d.inference import SampleCompletion
from pgm3d.models import VAE

F64 = torch.float64


class BiasedGuide:
    """The exact posterior with its mean shrunk towards 0 and its covariance inflated: an
    amortised proposal that is wrong in a known way."""

    def __init__(self, fa, shrink=0.8, inflate=2.0):
        self.fa, self.shrink, self.inflate = fa, shrink, inflate

    def __call__(self, x, mask=None):
        post = self.fa.exact_posterior(x, mask)
        q = dist.MultivariateNormal(
            self.shrink * post.mean, covariance_matrix=self.inflate * post.covariance_matrix
        )
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", q)


@pytest.fixture(scope="module")
def case():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(10, 2, generator=g, dtype=F64)
    mu = torch.randn(10, generator=g, dtype=F64)
    psi = 0.5 + torch.rand(10, generator=g, dtype=F64)
    fa = FactorAnalysis(W, mu, psi)
    x = fa.sample(10, generator=torch.Generator().manual_seed(1))
    mask = torch.rand(10, 10, generator=torch.Generator().manual_seed(2)) < 0.5
    x = torch.where(mask, x, torch.nan)
    with torch.no_grad():
        ref = complete(fa, x, mask, "exact").x
    scale = (ref - fa.mu.detach())[~mask].pow(2).mean().sqrt()
    return fa, x, mask, ref, scale


def relative_error(result, case):
    _, _, mask, ref, scale = case
    return ((result.x - ref)[~mask].pow(2).mean().sqrt() / scale).item()


OPTIONS = {
    "pseudo_gibbs": dict(warmup=100, thin=2, num_samples=200),
    "mwg": dict(warmup=100, thin=2, num_samples=200),
    "importance": dict(num_proposals=2000),
}


def test_mwg_and_importance_correct_a_biased_guide_and_pseudo_gibbs_does_not(case):
    """Against the exact conditional mean E[x_m | x_v] (relative RMS error over missing entries):
    MwG (Mattei & Frellsen 2018) and importance resampling target the exact conditional, so
    they land within Monte Carlo error (< 0.15 and < 0.05 here); pseudo-Gibbs samples from the
    guide's fixed point and keeps its bias (measured here at about 0.39, asserted > 0.2)."""
    fa, x, mask, *_ = case
    guide = BiasedGuide(fa)
    err = {
        m: relative_error(complete(fa, x, mask, m, guide=guide, seed=0, **o), case)
        for m, o in OPTIONS.items()
    }
    assert err["mwg"] < 0.15, err
    assert err["importance"] < 0.05, err
    assert err["pseudo_gibbs"] > 0.2 and err["pseudo_gibbs"] > 3 * err["mwg"], err


def test_nuts_matches_the_exact_conditional_mean(case):
    fa, x, mask, *_ = case
    result = complete(fa, x, mask, "nuts", chains=2, warmup=100, num_samples=100, seed=0)
    assert relative_error(result, case) < 0.1


def test_batched_hmc_matches_the_exact_conditional_whatever_the_guide(case):
    """Every (chain, row) its own chain, moved together: the conditional mean and the
    posterior spread of z land on the closed form, starting from a biased guide."""
    fa, x, mask, *_ = case
    result = complete(fa, x, mask, "hmc", chains=4, warmup=150, num_samples=200, seed=0,
                      guide=BiasedGuide(fa))  # fmt: skip
    assert relative_error(result, case) < 0.1
    exact = fa.exact_posterior(x, mask)
    z = result.samples["z"].reshape(-1, 10, 2)
    sd = exact.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt().detach()
    assert ((z.mean(0) - exact.mean.detach()).abs() / sd).max() < 0.3
    assert 0.8 < (z.var(0) / sd**2).mean() < 1.25
    assert 0.6 < float(result.accept_rate.mean()) < 0.98  # dual averaging aims at 0.8
    assert result.divergences.shape == (4, 200, 10)
    idata = result.to_arviz(fa)
    assert idata.sample_stats["diverging"].dims == ("chain", "draw", "row")


def test_hmc_refuses_discrete_latents_and_bad_options(case):
    fa, x, mask, *_ = case
    with pytest.raises(ValueError, match="num_steps must be an int >= 1"):
        complete(fa, x, mask, "hmc", num_steps=0)
    with pytest.raises(ValueError, match="target_accept must be in"):
        complete(fa, x, mask, "hmc", target_accept=1.0)

    def model(x, mask=None):
        with pyro.plate("data", x.shape[0]):
            k = pyro.sample("k", dist.Bernoulli(torch.tensor(0.5, dtype=x.dtype)))
            pyro.sample("x", dist.Normal(k[:, None].expand_as(x), 1.0).to_event(1), obs=x)

    def guide(x, mask=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("k", dist.Bernoulli(torch.tensor(0.5, dtype=x.dtype)))

    with pytest.raises(ValueError, match="HMC moves continuous latents"):
        complete((model, guide), torch.randn(3, 2, dtype=F64), method="hmc", num_samples=2)


def test_with_the_exact_guide_mwg_always_accepts(case):
    fa, x, mask, *_ = case
    result = complete(fa, x, mask, "mwg", warmup=5, thin=1, num_samples=5, seed=0)
    assert torch.all(result.accept_rate == 1.0)


@pytest.mark.parametrize("method", ["pseudo_gibbs", "mwg", "importance"])
def test_sample_shapes_observed_entries_and_diagnostics(case, method):
    fa, x, mask, *_ = case
    result = complete(
        fa,
        x,
        mask,
        method,
        chains=3,
        num_samples=8,
        seed=1,
        **({} if method == "importance" else {"warmup": 2, "thin": 1}),
    )
    assert isinstance(result, SampleCompletion) and result.method == method
    assert result.samples["z"].shape == (3, 8, 10, 2)
    assert result.samples["x"].shape == (3, 8, 10, 10)
    observed = x.expand(3, 8, 10, 10)[mask.expand(3, 8, 10, 10)]
    assert torch.equal(result.samples["x"][mask.expand(3, 8, 10, 10)], observed)
    assert torch.equal(result.x[mask], x[mask])
    assert result.z.batch_shape == (10,) and result.z.event_shape == (2,)
    d = result.diagnostics()
    assert d["rhat"].shape == (10, 2) and d["ess"].shape == (10, 2)


def test_to_arviz_and_r_hat_flag_chains_that_disagree(case):
    fa, x, mask, *_ = case
    result = complete(
        fa,
        x,
        mask,
        "mwg",
        chains=4,
        warmup=10,
        thin=1,
        num_samples=50,
        seed=2,
        guide=BiasedGuide(fa),
    )
    idata = result.to_arviz()
    assert dict(idata.posterior.sizes)["chain"] == 4
    assert "x" in result.to_arviz(include_x=True).posterior
    d = result.diagnostics()
    assert d["rhat"].shape == (10, 2) and (d["ess"] > 0).all()
    # shift one chain away from the others: R-hat must see it
    result.samples["z"][0] += 10 * result.samples["z"].std()
    assert (result.diagnostics()["rhat"] > 1.5).all()


def test_samplers_run_on_a_nonlinear_vae():
    torch.manual_seed(0)
    vae = VAE(6, 2, hidden=(16,))
    x = vae.sample(5)
    mask = torch.rand(5, 6) < 0.5
    for method in ("pseudo_gibbs", "mwg", "importance"):
        opts = {"num_proposals": 50} if method == "importance" else {"warmup": 3, "thin": 1}
        r = complete(vae, x, mask, method, chains=2, num_samples=4, seed=0, **opts)
        assert torch.isfinite(r.x).all() and torch.equal(r.x[mask], x[mask])


# ---------------------------------------------------------------------------- bad input
def test_sampler_options_are_checked(case):
    fa, x, mask, *_ = case
    with pytest.raises(ValueError, match="chains must be an int >= 1"):
        complete(fa, x, mask, "mwg", chains=0)
    with pytest.raises(ValueError, match="thin"):
        complete(fa, x, mask, "pseudo_gibbs", thin=-1)
    with pytest.raises(ValueError, match="num_proposals"):
        complete(fa, x, mask, "importance", num_proposals=0)
    with pytest.raises(ValueError, match="does not take these options"):
        complete(fa, x, mask, "mwg", chain=2)
    with pytest.raises(ValueError, match="does not take these options"):
        complete(fa, x, mask, "exact", chains=2)


def test_mwg_decodes_proposal_and_current_together_for_other_likelihoods(monkeypatch):
    """A Student-t likelihood has no row-merge rule, so each sweep decodes the proposed and
    current latents in one pass of twice the batch; the chain is the same MwG chain."""

    class StudentVAE(VAE):
        def decode(self, z):
            return dist.StudentT(5.0, self.decoder(z), 0.5).to_event(1)

    torch.manual_seed(0)
    model = StudentVAE(5, 2, hidden=(8,))
    x = torch.randn(4, 5)
    mask = torch.rand(4, 5) < 0.5
    from pgm3d.inference import mwg

    calls = []
    stacked = mwg._step_stacked
    monkeypatch.setattr(mwg, "_step_stacked", lambda *a: calls.append(1) or stacked(*a))
    r = complete(model, x, mask, "mwg", chains=2, warmup=3, thin=1, num_samples=5, seed=0)
    assert len(calls) == 8  # every sweep took the joint path
    assert torch.isfinite(r.x).all() and ((0 <= r.accept_rate) & (r.accept_rate <= 1)).all()


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["pseudo_gibbs", "mwg", "importance"])
def test_samplers_follow_the_device_of_their_inputs(method):
    torch.manual_seed(0)
    vae = VAE(6, 2, hidden=(8,)).cuda()
    x = vae.sample(5)
    mask = torch.rand(5, 6, device="cuda") < 0.5
    opts = {"num_proposals": 20} if method == "importance" else {"warmup": 2, "thin": 1}
    r = complete(vae, x, mask, method, chains=2, num_samples=3, seed=0, **opts)
    assert r.x.device.type == "cuda" and r.samples["z"].device.type == "cuda"


class SideObservation(pyro.nn.PyroModule):
    """Factor analysis plus a second observed site ``"y" ~ N(z_1, 1)`` read from the last column
    (masked out of ``"x"``), the layout ShapeVAE uses for its part existences."""

    def __init__(self, fa):
        super().__init__()
        self.fa = fa
        self.data_dim = fa.data_dim + 1
        self.anchor = torch.nn.Parameter(torch.zeros((), dtype=F64), requires_grad=False)

    def model(self, x, mask=None):
        d = self.fa.data_dim
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(2, dtype=F64), 1.0).to_event(1))
            pyro.sample("y", dist.Normal(z[..., 0], 1.0), obs=x[:, d])
            loc = torch.cat([self.fa.decode(z).mean, z[..., :1]], -1)
            keep = torch.ones(self.data_dim, dtype=torch.bool)
            keep[d] = False
            keep = keep & mask if mask is not None else keep
            scale = torch.cat([self.fa.psi.detach().sqrt(), torch.ones(1, dtype=F64)])
            px = dist.Normal(loc, scale).mask(keep)
            pyro.sample(
                "x", px.to_event(1), obs=torch.where(mask, x, 0.0) if mask is not None else x
            )


def test_mwg_targets_the_conditional_given_every_observed_site(case):
    """With an extra observed site, MwG must weigh it for the current state as for the
    proposal; the chain's completion then matches the exact conditional E[x_m | x_v, y]
    (relative RMS error 0.04 measured; 0.42 when the current state's y term is dropped)."""
    fa, x, mask, _, scale = case
    y = torch.linspace(-4, 4, 10, dtype=F64)
    post = fa.exact_posterior(x, mask)
    a = torch.tensor([1.0, 0.0], dtype=F64)
    prec = torch.linalg.inv(post.covariance_matrix) + torch.outer(a, a)
    cov = torch.linalg.inv(prec)
    m = (
        cov
        @ (
            torch.linalg.solve(post.covariance_matrix, post.mean[..., None])
            + a[:, None] * y[:, None, None]
        )
    )[..., 0]
    ref = m @ fa.W.detach().T + fa.mu.detach()
    model = SideObservation(fa)
    xy = torch.cat([x, y[:, None]], -1)
    mask_xy = torch.cat([mask, torch.ones(10, 1, dtype=torch.bool)], -1)

    def guide(x, mask=None):  # ignores y: a proposal that is wrong in a known way
        return BiasedGuide(fa)(x[:, :-1], None if mask is None else mask[:, :-1])

    r = complete(
        model, xy, mask_xy, "mwg", guide=guide, seed=0, warmup=100, thin=2, num_samples=200
    )
    err = ((r.x[:, :-1] - ref)[~mask].pow(2).mean().sqrt() / scale).item()
    assert err < 0.15, err


def test_to_arviz_has_named_dims_sample_stats_observed_data_and_log_likelihood(case):
    import arviz as az

    fa, x, mask, *_ = case
    result = complete(fa, x, mask, "mwg", chains=2, warmup=20, num_samples=30, seed=0)
    idata = result.to_arviz(fa)
    assert idata.posterior["z"].dims == ("chain", "draw", "row", "latent")
    assert idata.observed_data["x"].dims == ("row", "entry")
    assert bool(idata.observed_data["x"].isnull().values[~mask.numpy()].all())
    assert idata.sample_stats["acceptance_rate"].dims == ("chain", "draw", "row")
    assert idata.log_likelihood["x"].dims == ("chain", "draw", "row")
    # the pointwise log-likelihood is log N(x_v; W_v z + mu_v, Psi_v) at each draw
    z = result.samples["z"][1, 7]  # chain 1, draw 7: (B, K)
    W, mu, psi = fa.W.detach(), fa.mu.detach(), fa.psi.detach()
    by_hand = dist.Normal(z @ W.T + mu, psi.sqrt()).log_prob(torch.nan_to_num(x))
    by_hand = torch.where(mask, by_hand, 0.0).sum(-1)
    got = torch.as_tensor(idata.log_likelihood["x"].values[1, 7])
    assert torch.allclose(got, by_hand, atol=1e-10)
    loo = az.loo(idata, pointwise=True)
    assert loo["pareto_k"].shape == (10,)  # one k-hat per row
    importance = complete(fa, x, mask, "importance", num_proposals=200, num_samples=40, seed=0)
    assert importance.to_arviz().sample_stats["ess"].dims == ("chain", "draw", "row")


def test_nuts_records_its_divergences_per_draw(case):
    fa, x, mask, *_ = case
    result = complete(fa, x, mask, "nuts", chains=2, warmup=20, num_samples=15, thin=2, seed=0)
    assert result.divergences.shape == (2, 15) and result.divergences.dtype == torch.bool
    assert result.to_arviz().sample_stats["diverging"].dims == ("chain", "draw")
