"""Pyro's example VAE and CVAE, written as Pyro writes them (``examples/pyro_vae.py``,
``examples/pyro_cvae.py``), through every entry point with no edit beyond pgm3d's arguments."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro_cvae import CVAE, BaselineNet, quadrant_pairs
from pyro_vae import PIXELS, VAE

import pgm3d
from pgm3d.contract import ContractError, as_model
from pgm3d.data import random_mask
from pgm3d.evaluation import evaluate_posteriors, psis_khat
from pgm3d.inference import OBJECTIVES, complete, fit, log_likelihood

OBJECTIVE_NAMES = OBJECTIVES.names()


def fresh_vae(seed=0):
    pyro.clear_param_store()
    torch.manual_seed(seed)
    return VAE(z_dim=4, hidden_dim=32)


def test_the_contract_reads_pyros_vae():
    x = torch.rand(5, PIXELS)
    s = as_model(fresh_vae()).structure(x)
    assert (s.obs, s.plate, s.layout) == ("obs", "data", "vectorized")
    assert s.local_latents == ("latent",) and s.global_latents == ()
    assert s.holds_data and s.coupled is None
    # pyro.module registers the encoder and decoder: their parameters are the module's own
    assert set(s.params) >= {"decoder$$$fc1.weight", "encoder$$$fc1.weight"}


@pytest.mark.parametrize("objective", OBJECTIVE_NAMES)
def test_pyros_vae_trains_with_every_objective(digits01, objective):
    train, _ = digits01
    vae = fresh_vae()
    before = [p.detach().clone() for p in vae.parameters()]
    h = fit(vae, train, objective, num_particles=3, epochs=6, batch_size=50, lr=1e-2,
            progress=False)  # fmt: skip
    assert h.bound[-1] > h.bound[0] + 2.0, h.bound
    assert all(not torch.equal(a, b) for a, b in zip(before, vae.parameters(), strict=True))


def test_the_library_masks_as_the_six_hand_edits_did(digits01):
    """Pyro's VAE fed half-hidden digits through pgm3d gives, draw for draw, the numbers of the
    VAE edited by hand to take a mask (mask argument, masked likelihood, zero-filled data): the
    library did the masking and the filling, nothing else."""
    _, test = digits01
    x = test[:12]
    mask = random_mask(x.shape, 0.5, generator=torch.Generator().manual_seed(0))
    hidden = torch.where(mask, x, torch.nan)

    class HandMasked(VAE):
        def model(self, x, mask=None):
            mask = torch.ones_like(x, dtype=torch.bool) if mask is None else mask
            pyro.module("decoder", self.decoder)
            with pyro.plate("data", x.shape[0]):
                z_loc = torch.zeros(x.shape[0], self.z_dim)
                z = pyro.sample("latent", dist.Normal(z_loc, 1.0).to_event(1))
                loc = self.decoder(z)
                px = dist.Bernoulli(loc, validate_args=False).mask(mask).to_event(1)
                pyro.sample("obs", px, obs=torch.nan_to_num(x) * mask)

        def guide(self, x, mask=None):
            mask = torch.ones_like(x, dtype=torch.bool) if mask is None else mask
            pyro.module("encoder", self.encoder)
            with pyro.plate("data", x.shape[0]):
                z_loc, z_scale = self.encoder(torch.nan_to_num(x) * mask)
                pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))

    vae = fresh_vae()
    hand = HandMasked(z_dim=4, hidden_dim=32)
    hand.load_state_dict(vae.state_dict())
    results = []
    for model in (vae, hand):
        pyro.set_rng_seed(3)
        ll = log_likelihood(model, hidden, mask, num_samples=50)
        pyro.set_rng_seed(3)
        done = complete(model, hidden, mask, "mwg", warmup=3, thin=1, num_samples=4)
        results.append((ll, done.x))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    # and the hidden values never mattered: other junk there, same numbers
    junk = torch.where(mask, x, 7.0)
    pyro.set_rng_seed(3)
    torch.testing.assert_close(log_likelihood(vae, junk, mask, num_samples=50), results[0][0])


@pytest.mark.parametrize("method", ["pseudo_gibbs", "mwg", "importance", "nuts", "hmc"])
def test_pyros_vae_is_completed_by_every_sampler(digits01, method):
    train, test = digits01
    vae = fresh_vae()
    fit(vae, train, "elbo", epochs=3, batch_size=50, lr=1e-2, progress=False)
    x = test[:4]
    mask = random_mask(x.shape, 0.5, generator=torch.Generator().manual_seed(1))
    opts = {"num_proposals": 100} if method == "importance" else {"warmup": 5, "thin": 1}
    done = complete(vae, torch.where(mask, x, torch.nan), mask, method, chains=2,
                    num_samples=5, seed=0, **opts)  # fmt: skip
    assert torch.equal(done.x[mask], x[mask]) and torch.isfinite(done.x).all()
    assert ((done.x >= 0) & (done.x <= 1)).all()  # Bernoulli means: pixel probabilities
    assert done.samples["latent"].shape == (2, 5, 4, 4)


def test_pyros_vae_through_the_diagnostics_and_the_comparison_table(digits01):
    _, test = digits01
    vae = fresh_vae()
    mask = random_mask(test.shape, 0.5, generator=torch.Generator().manual_seed(2))
    k = psis_khat(vae, test, mask, num_samples=50)
    assert k.shape == (40,) and torch.isfinite(k).all()
    table = evaluate_posteriors(
        vae,
        test,
        mask,
        ["exact", "importance"],
        x_true=test,
        options={"importance": {"num_proposals": 50, "seed": 0}},
    )
    # the closed form does not apply to this model: its row says why, the other row stands
    assert "exact" in table.errors and "linear-Gaussian" in table.errors["exact"]
    assert "importance" not in table.errors and table.rows["importance"]["mse"] > 0
    assert "failed: ValueError" in table.to_markdown()


# ------------------------------------------------------------------------------------ CVAE
@pytest.fixture(scope="module")
def quadrants(digits01):
    train, test = digits01
    return quadrant_pairs(train), quadrant_pairs(test[:6])


def fresh_cvae(z_dim=4, seed=0):
    pyro.clear_param_store()
    torch.manual_seed(seed)
    return CVAE(z_dim, 32, 32, BaselineNet(32, 32))


def test_the_contract_reads_pyros_cvae(quadrants):
    (xs, ys), _ = quadrants
    pair = as_model(fresh_cvae())
    s = pair.structure(ys[:8], None, pair.context_of({"xs": xs[:8]}, ys[:8]))
    assert (s.obs, s.plate) == ("y", "data")
    # its likelihood indexes the batch with a mask of its own shape: particles go as rows
    assert s.layout == "rows"
    assert not s.holds_data  # "y" holds the output quadrants only
    assert pair._resolve(("xs",))[0].data_arg == "ys"


@pytest.mark.parametrize("objective", OBJECTIVE_NAMES)
def test_pyros_cvae_trains_with_every_objective(quadrants, objective):
    (xs, ys), _ = quadrants
    cvae = fresh_cvae()
    h = fit(cvae, ys, objective, context={"xs": xs}, num_particles=3, epochs=5,
            batch_size=50, lr=1e-2, progress=False)  # fmt: skip
    assert h.bound[-1] > h.bound[0] + 1.0, h.bound


def _quadrature_cll(cvae, xs, ys, coarse=201, fine=301):
    """log p(y | x) = log of the integral over z of p(z | x) p(y | x, z), on a grid around the
    posterior (2-D z), computed with the CVAE's networks directly, not through pgm3d."""
    out = (xs == -1).view(-1, PIXELS)
    with torch.no_grad():
        y_hat = cvae.baseline_net(xs).view(xs.shape)
        loc, scale = cvae.prior_net(xs, y_hat)  # (B, 2)

    def log_joint(z):  # z (B, G, 2) -> (B, G)
        with torch.no_grad():
            probs = cvae.generation_net(z).clamp(1e-7, 1 - 1e-7)
        y = ys[:, None, :].expand_as(probs)
        lik = torch.where(out[:, None], y * probs.log() + (1 - y) * (1 - probs).log(), 0.0)
        prior = dist.Normal(loc[:, None], scale[:, None]).log_prob(z).sum(-1)
        return prior + lik.sum(-1)

    def grid(centre, half, n):  # (B, 2), (B, 2) -> points (B, n*n, 2), log cell area (B,)
        u = torch.linspace(-1.0, 1.0, n)
        uu = torch.stack(torch.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
        cell = (2 * half / (n - 1)).log().sum(-1)
        return centre[:, None] + half[:, None] * uu, cell

    z, cell = grid(loc, 7 * scale, coarse)
    w = torch.softmax(log_joint(z), -1)[..., None]
    mean = (w * z).sum(1)
    sd = ((w * (z - mean[:, None]) ** 2).sum(1)).sqrt().clamp_min(14 * scale / coarse)
    z, cell = grid(mean, 9 * sd, fine)
    return torch.logsumexp(log_joint(z), -1) + cell


def test_pyros_cvae_conditional_log_likelihood_matches_quadrature(quadrants):
    (xs, ys), (xt, yt) = quadrants
    cvae = fresh_cvae(z_dim=2)
    fit(cvae, ys, "iwae", context={"xs": xs}, num_particles=4, epochs=20, batch_size=50,
        lr=1e-2, progress=False)  # fmt: skip
    pyro.set_rng_seed(0)
    cll = log_likelihood(cvae, yt, context={"xs": xt}, num_samples=10000)
    reference = _quadrature_cll(cvae, xt, yt)
    # rows span -25 to -18 nats; measured gaps 0.01-0.03 (importance-sampling noise)
    assert (cll - reference).abs().max() < 0.05, (cll, reference)


def test_the_cvae_with_hidden_outputs_is_refused_clearly(quadrants):
    (xs, ys), _ = quadrants
    cvae = fresh_cvae()
    mask = torch.ones_like(ys, dtype=torch.bool)
    mask[:, 0] = False
    with pytest.raises(ContractError, match="not the data's .* entry for entry"):
        log_likelihood(cvae, ys[:4], mask[:4], context={"xs": xs[:4]})
    with pytest.raises(ContractError, match="does not hold the data entry for entry"):
        complete(cvae, ys[:4], None, "importance", context={"xs": xs[:4]})


def test_a_single_context_tensor_needs_its_argument_named(quadrants):
    """``model(xs, ys)``: a lone context tensor could be either argument, so pgm3d asks; named
    through ``wrap(data_arg=...)`` it goes where the dict would have put it."""
    (xs, ys), _ = quadrants
    cvae = fresh_cvae()
    with pytest.raises(ContractError, match="a single context tensor needs to know"):
        log_likelihood(cvae, ys[:3], context=xs[:3])
    pyro.set_rng_seed(0)
    named = log_likelihood(pgm3d.wrap(cvae, data_arg="ys"), ys[:3], context=xs[:3], num_samples=20)
    pyro.set_rng_seed(0)
    as_dict = log_likelihood(cvae, ys[:3], context={"xs": xs[:3]}, num_samples=20)
    torch.testing.assert_close(named, as_dict)
