"""Autoguides: write only the model (float64 where they meet closed forms)."""

import functools

import pyro
import pyro.distributions as dist
import pytest
import torch
from discrete_latent import Mixture, simulate
from global_latent import GlobalMean
from pyro_vae import VAE

import pgm3d
from pgm3d import PPCA, complete
from pgm3d.autoguide import FAMILIES, AutoGuide, auto
from pgm3d.contract import ContractError
from pgm3d.data import random_mask
from pgm3d.evaluation import evaluate_posteriors, kl_to_exact
from pgm3d.inference import OBJECTIVES, fit, log_likelihood

F64 = torch.float64


def guide_of(pair) -> AutoGuide:
    return next(p for p in pair.parts if isinstance(p, AutoGuide))


@pytest.fixture(scope="module")
def digits01(request):
    from pgm3d.data import open_data

    split = open_data("digits", seed=0)
    return (split.train[:300].float() + 1) / 2, (split.test[:30].float() + 1) / 2


@pytest.mark.parametrize("family", FAMILIES.names())
def test_pyros_vae_model_alone_trains_and_infers_with_every_family(digits01, family):
    """Only Pyro's ``VAE.model`` is given; the autoguide is built from it."""
    train, test = digits01
    pyro.clear_param_store()
    torch.manual_seed(0)
    vae = VAE(z_dim=4, hidden_dim=32)
    pair = auto(vae.model, family, hidden=(64,))
    h = fit(pair, train, "elbo", num_particles=2, epochs=6, batch_size=50, lr=3e-3,
            progress=False)  # fmt: skip
    assert h.bound[-1] > h.bound[0] + 2.0, h.bound
    assert log_likelihood(pair, test, num_samples=20).shape == (30,)
    mask = random_mask(test.shape, 0.5, generator=torch.Generator().manual_seed(1))
    done = complete(pair, test, mask, "mwg", warmup=3, thin=1, num_samples=3, chains=2, seed=0)
    assert torch.equal(done.x[mask], test[mask]) and done.samples["latent"].shape == (2, 3, 30, 4)


@pytest.mark.parametrize("objective", OBJECTIVES.names())
def test_every_objective_trains_an_autoguided_model(digits01, objective):
    train, _ = digits01
    pyro.clear_param_store()
    torch.manual_seed(0)
    pair = auto(VAE(z_dim=3, hidden_dim=32).model, "diag", hidden=(32,))
    h = fit(pair, train, objective, num_particles=3, epochs=4, batch_size=50, lr=3e-3,
            progress=False)  # fmt: skip
    assert h.bound[-1] > h.bound[0]


def test_the_comparison_table_and_saving(digits01, tmp_path):
    _, test = digits01
    pyro.clear_param_store()
    torch.manual_seed(0)
    pair = auto(VAE(z_dim=3, hidden_dim=32), "full", hidden=(32,))  # its own guide is ignored
    mask = random_mask(test.shape, 0.5, generator=torch.Generator().manual_seed(2))
    table = evaluate_posteriors(
        pair, test, mask, ["pseudo_gibbs", "importance"],
        options={"pseudo_gibbs": {"warmup": 3, "thin": 1, "num_samples": 4, "seed": 0},
                 "importance": {"num_proposals": 30, "seed": 0}},
    )  # fmt: skip
    assert not table.errors and set(table.rows) == {"pseudo_gibbs", "importance"}
    pgm3d.save(pair, tmp_path / "auto.pt")
    fresh = auto(VAE(z_dim=3, hidden_dim=32), "full", hidden=(32,))
    back = pgm3d.load(tmp_path / "auto.pt", into=fresh)
    assert back is fresh
    pyro.set_rng_seed(0)
    a = log_likelihood(pair, test, num_samples=5)
    pyro.set_rng_seed(0)
    torch.testing.assert_close(log_likelihood(back, test, num_samples=5), a)


def test_a_discrete_latent_gets_an_amortised_categorical(tmp_path):
    torch.manual_seed(0)
    x = simulate(300)
    pair = auto(Mixture(), "flow")  # the family is for continuous sites; "c" is Categorical
    h = fit(pair, x, "rws", num_particles=8, epochs=15, lr=0.03, progress=False)
    assert h.bound[-1] > h.bound[0] + 1.0
    trace = pyro.poutine.trace(pair.bind().guide).get_trace(x[:4])
    assert isinstance(trace.nodes["c"]["fn"], dist.Categorical)
    with pytest.raises(ContractError, match="site 'c' \\(Categorical\\) cannot be reparam"):
        fit(auto(Mixture()), x, "iwae", progress=False)


def test_constrained_latents_are_sampled_through_their_bijections():
    def model(x):
        with pyro.plate("data", x.shape[0]):
            s = pyro.sample("s", dist.LogNormal(0.0, 1.0))
            w = pyro.sample("w", dist.Dirichlet(torch.ones(3, dtype=F64)))
            pyro.sample("x", dist.Normal(w * s.unsqueeze(-1), 0.5).to_event(1), obs=x)

    x = 2 * torch.rand(100, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    pair = auto(model, "full", hidden=(16,))
    h = fit(pair, x, "elbo", num_particles=4, epochs=15, lr=0.01, progress=False)
    assert h.bound[-1] > h.bound[0]
    trace = pyro.poutine.trace(pair.bind().guide).get_trace(x[:5])
    trace.compute_log_prob()
    assert (trace.nodes["s"]["value"] > 0).all()
    torch.testing.assert_close(trace.nodes["w"]["value"].sum(-1), torch.ones(5, dtype=F64))
    assert torch.isfinite(trace.nodes["w"]["log_prob"]).all()


def test_the_global_and_local_posteriors_of_a_conjugate_model_are_recovered():
    """x_n = mu + W z_n + e with W and s chosen so that both exact posteriors are diagonal
    (C = W W^T + s^2 I diagonal): the autoguide's q(mu) and q(z | x, mu) can be exact, and
    minibatch IWAE training (K = 16) finds them: sd ratios 0.93 and 1.06 measured. With the
    ELBO q(mu) comes out too narrow (ratios 0.47 and 0.74): the amortised local part hardly
    sees mu vary, so it does not learn to follow it, and a q(mu) narrower than the posterior
    is what maximises the ELBO then; the particles of IWAE, DReG and RWS (0.8-1.06) correct
    the local mismatch."""
    g = torch.Generator().manual_seed(0)
    W = torch.diag(torch.tensor([1.5, 0.7], dtype=F64))
    model = GlobalMean(W, tau=2.0, s=0.5)
    mu = torch.tensor([-3.0, 1.0], dtype=F64)
    x = mu + torch.randn(400, 2, generator=g, dtype=F64) @ W.T
    x = x + 0.5 * torch.randn(400, 2, generator=g, dtype=F64)
    exact = model.exact_posterior(x)
    pyro.clear_param_store()
    torch.manual_seed(0)
    pair = auto(model.model, "diag", hidden=(64, 64))
    fit(pair, x, "iwae", num_particles=16, epochs=100, batch_size=40, lr=0.01, lr_decay=0.97,
        progress=False)  # fmt: skip
    ag = guide_of(pair)
    with torch.no_grad():
        q = ag.global_heads["mu"]()
        sd = exact.covariance_matrix.diagonal().sqrt()
        assert ((q.mean - exact.mean) / sd).abs().max() < 0.75, (q.mean, exact.mean)
        ratio = q.variance.sqrt() / sd
        assert ((ratio > 0.75) & (ratio < 1.3)).all(), ratio
        # the local posterior given mu = E_q[mu]: q(z | x, mu) against N(A (x - mu), S)
        m = q.mean
        trace = pyro.poutine.trace(pgm3d.handlers.FixValues({"mu": m})(ag)).get_trace(x[:50])
        local = trace.nodes["z"]["fn"]
        ref = model.local_posterior(x[:50], m)
        err = ((local.mean - ref.mean) / ref.variance.sqrt()).abs()
        ratio = (local.variance / ref.variance).sqrt()
        # measured: mean error 0.16 sd; sd ratios 1.02-1.60 (IWAE trains broader proposals)
        assert err.mean() < 0.35 and ((ratio > 0.8) & (ratio < 1.8)).all(), (err, ratio)


@pytest.fixture(scope="module")
def small_ppca():
    g = torch.Generator().manual_seed(0)
    truth = PPCA.random(12, 3, sigma2=0.2, generator=g, dtype=F64)
    x = truth.sample(1500, generator=g)
    return PPCA.fit(x[:1200], latent_dim=3), x[:1200], x[1200:]


def _kl(model, guide, x, mask):
    return kl_to_exact(model, x, mask, guide=guide).mean().item()


def _trained(model, train, family, aware=True, epochs=150):
    pyro.clear_param_store()
    torch.manual_seed(0)
    guide = AutoGuide(model, family, aware=aware, hidden=(64, 64))
    guide(train[:2])  # build it, to optimise its parameters alone (the model is fixed)
    sampler = functools.partial(random_mask, p_missing=0.5)
    fit(model, train, "elbo", guide=guide, parameters=guide.parameters(), mask_sampler=sampler,
        num_particles=4, epochs=epochs, batch_size=100, lr=3e-2, lr_decay=0.97,
        progress=False)  # fmt: skip
    return guide


@pytest.fixture(scope="module")
def baselines(small_ppca):
    """New random masks of the test rows, and SCA's and the DE's KL to the exact posterior."""
    model, train, test = small_ppca
    sampler = functools.partial(random_mask, p_missing=0.5)
    mask = sampler(test.shape, generator=torch.Generator().manual_seed(9))
    de = pgm3d.DenoisingEncoder.fit(
        model, train, sampler, generator=torch.Generator().manual_seed(1)
    )
    kl = {m: _kl(model, complete(model, test, mask, m).z, test, mask) for m in ("sca", "fca")}
    kl["de"] = _kl(model, complete(model, test, mask, de).z, test, mask)
    return mask, kl


def test_the_natural_family_reaches_the_exact_posterior_under_new_masks(small_ppca, baselines):
    """Trained on random masks, the natural-parameter autoguide (exact for factor analysis under
    any pattern) ends within 0.15 nats of the exact posterior on new masks (0.075 measured;
    SCA 13.4, FCA 4.4, DE 11.9; K = 3, D = 12)."""
    model, train, test = small_ppca
    mask, kl = baselines
    natural = _kl(model, _trained(model, train, "natural"), test, mask)
    assert natural < 0.15 and natural < min(kl.values()) / 20, (natural, kl)


@pytest.mark.slow
def test_reading_the_mask_is_what_brings_the_guide_close(small_ppca, baselines):
    """Thesis ch. 4's point, measured: the mask-aware full-covariance autoguide beats the
    mask-blind one (0.29 against 1.9 measured), and both beat SCA and the DE."""
    model, train, test = small_ppca
    mask, kl = baselines
    aware = _kl(model, _trained(model, train, "full"), test, mask)
    blind = _kl(model, _trained(model, train, "full", aware=False), test, mask)
    assert aware < blind / 3 and blind < min(kl["sca"], kl["de"]), (aware, blind, kl)


def test_bad_requests():
    with pytest.raises(ValueError, match="unknown guide family 'gaussian'; choose one of: diag"):
        AutoGuide(Mixture(), "gaussian")
    x = torch.randn(6, 2)

    def one_dim(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z[:, None], 1.0).to_event(1), obs=x)

    with pytest.raises(ContractError, match="inverse autoregressive flow needs a latent of at"):
        log_likelihood(auto(one_dim, "flow"), x)
    assert log_likelihood(auto(one_dim, "flow", flow="spline"), x, num_samples=3).shape == (6,)

    def counts(x):
        with pyro.plate("data", x.shape[0]):
            n = pyro.sample("n", dist.Poisson(3.0))
            pyro.sample("x", dist.Normal(n[:, None], 1.0).to_event(1), obs=x)

    with pytest.raises(ContractError, match="discrete support .* Categorical and Bernoulli"):
        log_likelihood(auto(counts), x)


def test_an_autoguided_run_resumes_bit_for_bit(digits01, tmp_path):
    train, _ = digits01
    options = dict(objective="iwae", num_particles=2, batch_size=50, seed=3, progress=False)
    options["mask_sampler"] = functools.partial(random_mask, p_missing=0.3)

    def pair():
        pyro.clear_param_store()
        torch.manual_seed(0)
        return auto(VAE(z_dim=3, hidden_dim=16).model, "lowrank", hidden=(16,))

    whole = pair()
    fit(whole, train, epochs=3, checkpoint=tmp_path / "a.pt", **options)
    first = pair()
    fit(first, train, epochs=1, checkpoint=tmp_path / "b.pt", **options)
    resumed = pair()  # a new process: new modules, an empty param store
    fit(resumed, train, epochs=3, checkpoint=tmp_path / "b.pt", resume=True, **options)
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_image_rows_are_read_by_a_convolutional_trunk(digits01):
    from pgm3d.models import SceneVAE

    train, _ = digits01
    pyro.clear_param_store()
    torch.manual_seed(0)
    pair = auto(VAE(z_dim=3, hidden_dim=16).model, "diag", shape=(1, 8, 8), hidden=(32,))
    h = fit(pair, train, "elbo", epochs=4, batch_size=50, lr=3e-3, progress=False)
    assert h.bound[-1] > h.bound[0]
    trunk = guide_of(pair).encoder.trunk
    assert isinstance(trunk[0], torch.nn.Conv2d) and trunk[0].in_channels == 2  # data, mask
    # a pgm3d model says its rows are images: the trunk is chosen from its row_shape
    scenes = SceneVAE(4, image_size=16, width=4, channels=4)
    x = (torch.rand(3, 3 * 16 * 16, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    pair = auto(scenes, "lowrank", hidden=(16,))
    assert torch.isfinite(log_likelihood(pair, x, num_samples=4)).all()
    assert guide_of(pair).encoder.trunk[0].in_channels == 6  # RGB and its mask


def test_a_better_family_shrinks_the_iwae_gap_on_a_fixed_vae():
    """A VAE trained with a diagonal autoguide, then frozen: a flow guide trained on it brings
    the bound at K = 1 closer to the bound at K = 2,000 (their gap estimates KL(q || p(z|x)))
    than the diagonal guide it was trained with (measured over seeds 0-2: 0.16-0.26 against
    0.25-0.35 nats per digit)."""
    from pgm3d.data import open_data
    from pgm3d.models import VAE as PgmVAE

    split = open_data("digits", seed=0)
    train, test = split.train[:600].float(), split.test[:200].float()
    pyro.clear_param_store()
    torch.manual_seed(0)
    vae = PgmVAE(64, 4, hidden=(64,))
    diag = auto(vae, "diag", hidden=(64,))
    fit(diag, train, "elbo", epochs=20, lr=3e-3, progress=False)
    torch.manual_seed(0)
    flow = AutoGuide(vae, "flow", hidden=(64,))
    flow(train[:2])
    fit(vae, train, "elbo", guide=flow, parameters=flow.parameters(), epochs=20, lr=3e-3,
        progress=False)  # fmt: skip

    def gap(guide):
        pyro.set_rng_seed(0)
        with torch.no_grad():
            one = torch.stack(
                [log_likelihood(vae, test, guide=guide, num_samples=1) for _ in range(20)]
            )
            return (log_likelihood(vae, test, guide=guide, num_samples=2000) - one.mean(0)).mean()

    g_diag, g_flow = gap(guide_of(diag)), gap(flow)
    assert 0 < g_flow < g_diag, (g_flow, g_diag)
