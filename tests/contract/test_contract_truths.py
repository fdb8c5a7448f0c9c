"""The contract against closed forms (float64): the library's masking and filling, the param
store trained, and context minibatched with its rows."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from torch.distributions import constraints

from pgm3d import FactorAnalysis
from pgm3d.contract import as_model
from pgm3d.data import random_mask
from pgm3d.inference import OBJECTIVES, complete, fit, log_likelihood

F64 = torch.float64


class BareFA(torch.nn.Module):
    """Factor analysis written with no thought of missing data: ``model(x)`` observes all of
    ``x``. Its guide is the exact posterior given the entries it is told are observed (the
    optional ``mask`` keyword)."""

    def __init__(self, fa: FactorAnalysis):
        super().__init__()
        self.fa = fa

    def model(self, x):
        W, mu, psi = self.fa.W, self.fa.mu, self.fa.psi
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(W.shape[1]), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ W.T + mu, psi.sqrt()).to_event(1), obs=x)

    def guide(self, x, mask=None):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", self.fa.exact_posterior(x, mask))


@pytest.fixture(scope="module")
def case():
    g = torch.Generator().manual_seed(0)
    fa = FactorAnalysis.random(8, 2, generator=g, dtype=F64)
    x = fa.sample(30, generator=g)
    mask = random_mask(x.shape, 0.4, generator=g)
    mask[:, 0] = True  # every row keeps an entry
    return fa, x, mask


def test_a_model_that_never_heard_of_masks_is_marginalised_by_the_library(case):
    """With 40% of the entries missing, pgm3d masks ``model(x)``'s observation per entry: its
    importance-weighted log-likelihood equals the exact marginal of the observed entries for
    every K (the guide is the exact posterior, so every weight is that marginal)."""
    fa, x, mask = case
    hidden = torch.where(mask, x, torch.nan)
    exact = fa.log_likelihood(x, mask)
    for K in (1, 50):
        est = log_likelihood(BareFA(fa), hidden, mask, num_samples=K)
        torch.testing.assert_close(est, exact, rtol=1e-10, atol=1e-10)


def test_importance_completion_of_the_bare_model_is_the_exact_conditional(case):
    fa, x, mask = case
    ref = complete(fa, x, mask, "exact").x  # E[x_m | x_v] in closed form
    done = complete(BareFA(fa), x, mask, "importance", num_proposals=4000, seed=0)
    scale = (ref - fa.mu.detach())[~mask].pow(2).mean().sqrt()
    err = (done.x - ref)[~mask].pow(2).mean().sqrt() / scale
    assert err < 0.03, err
    assert torch.equal(done.x[mask], x[mask])


def test_every_objective_with_the_exact_guide_gives_the_exact_masked_bound(case):
    fa, x, mask = case
    for name in OBJECTIVES.names():
        loss = OBJECTIVES[name](BareFA(fa), num_particles=3)(x, mask)
        assert loss.item() == pytest.approx(-fa.log_likelihood(x, mask).sum().item(), rel=1e-10)


def test_no_nan_reaches_user_code(case):
    """Missing entries arrive filled: zeros by default, or the ``fill`` given to wrap."""
    import pgm3d

    fa, x, mask = case
    seen = []

    class Spy(BareFA):
        def guide(self, x, mask=None):
            seen.append(x.clone())
            return super().guide(x, mask)

    hidden = torch.where(mask, x, torch.nan)
    log_likelihood(Spy(fa), hidden, mask, num_samples=2)
    assert all(torch.isfinite(v).all() for v in seen)
    assert (seen[-1][~mask] == 0).all() and torch.equal(seen[-1][mask], x[mask])
    means = x.nanmean(0)
    log_likelihood(pgm3d.wrap(Spy(fa), fill=means), hidden, mask, num_samples=2)
    torch.testing.assert_close(seen[-1], torch.where(mask, x, means))


# ------------------------------------------------------------------------ the param store
def scale_model(x):
    noise = pyro.param("noise", torch.tensor(1.0, dtype=F64), constraint=constraints.positive)
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Normal(torch.zeros(3, dtype=F64), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(z, noise).to_event(1), obs=x)


def scale_guide(x):
    a = pyro.param("a", torch.tensor(0.5, dtype=F64))
    b = pyro.param("b", torch.tensor(1.0, dtype=F64), constraint=constraints.positive)
    with pyro.plate("data", x.shape[0]):
        pyro.sample("z", dist.Normal(a * x, b).to_event(1))


@pytest.mark.parametrize("objective", ["meanfield", "iwae"])
def test_a_plain_function_model_trains_its_param_store_to_the_closed_form(objective):
    """x = z + noise, z ~ N(0, 1): the maximum-likelihood noise variance is mean(x^2) - 1,
    and the optimal guide is the exact posterior N(x / (1 + s^2), s^2 / (1 + s^2))."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 3, generator=g, dtype=F64) * (1 + 0.5**2) ** 0.5
    pyro.clear_param_store()
    fit((scale_model, scale_guide), x, objective, num_particles=8, epochs=150,
        batch_size=500, lr=0.05, lr_decay=0.97, progress=False)  # fmt: skip
    s2 = pyro.param("noise").item() ** 2
    closed = float(x.pow(2).mean()) - 1
    assert abs(s2 - closed) < 0.01, (s2, closed)
    assert pyro.param("a").item() == pytest.approx(1 / (1 + closed), abs=0.01)
    assert pyro.param("b").item() ** 2 == pytest.approx(closed / (1 + closed), abs=0.01)


def test_a_pyro_param_inside_a_modules_model_is_trained():
    class WithParam(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.loc = torch.nn.Parameter(torch.zeros((), dtype=F64))

        def model(self, x):
            scale = pyro.param(
                "scale", torch.tensor(3.0, dtype=F64), constraint=constraints.positive
            )
            with pyro.plate("data", x.shape[0]):
                pyro.sample("x", dist.Normal(self.loc, scale).expand([2]).to_event(1), obs=x)

        def guide(self, x):
            pass

    pyro.clear_param_store()
    x = 1.0 + 0.5 * torch.randn(500, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    m = WithParam()
    fit(m, x, "elbo", epochs=300, batch_size=500, lr=0.05, progress=False)
    assert m.loc.item() == pytest.approx(x.mean().item(), abs=0.01)
    assert pyro.param("scale").item() == pytest.approx(float(x.std(unbiased=False)), abs=0.01)


# ------------------------------------------------------------------------------- context
class Regression(torch.nn.Module):
    """y = a c + z + e with a context c per row, z ~ N(0, 1), e ~ N(0, s^2); the guide is the
    exact posterior of z, so every bound equals log p(y | c) exactly."""

    def __init__(self, s=0.5):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(1, dtype=F64))
        self.s = s

    def model(self, y, c):
        with pyro.plate("data", y.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros_like(y), 1.0).to_event(1))
            pyro.sample("y", dist.Normal(self.a * c + z, self.s).to_event(1), obs=y)

    def guide(self, y, c):
        v = self.s**2 / (1 + self.s**2)
        with pyro.plate("data", y.shape[0]):
            pyro.sample("z", dist.Normal((y - self.a * c) / (1 + self.s**2), v**0.5).to_event(1))


def test_context_is_minibatched_with_its_rows():
    g = torch.Generator().manual_seed(2)
    c = torch.randn(400, 1, generator=g, dtype=F64)
    y = 1.7 * c + (1 + 0.25) ** 0.5 * torch.randn(400, 1, generator=g, dtype=F64)
    model = Regression()
    objective = OBJECTIVES["iwae"](model, num_particles=2)
    full = objective(y, context={"c": c})
    parts = [
        objective(y[i : i + 40], context={"c": c[i : i + 40]}, scale=10.0)
        for i in range(0, 400, 40)
    ]
    torch.testing.assert_close(torch.stack(parts).mean(), full)  # a partition of the rows
    fit(model, y, "elbo", context={"c": c}, epochs=200, batch_size=40, lr=0.05,
        lr_decay=0.98, progress=False)  # fmt: skip
    closed = float((c * y).sum() / (c * c).sum())  # least squares: the MLE of a
    assert model.a.item() == pytest.approx(closed, abs=0.01)
    # the conditional log-likelihood is the closed form N(y; a c, 1 + s^2)
    exact = dist.Normal(model.a.detach() * c, (1 + 0.25) ** 0.5).log_prob(y).sum(-1)
    torch.testing.assert_close(log_likelihood(model, y, context={"c": c}, num_samples=3), exact)


def test_the_structure_is_found_without_help():
    pair = as_model(Regression())
    y = torch.randn(5, 1, dtype=F64)
    s = pair.structure(y, None, pair.context_of({"c": torch.randn(5, 1, dtype=F64)}, y))
    assert (s.obs, s.plate, s.local_latents, s.layout) == ("y", "data", ("z",), "vectorized")


def test_a_pair_of_functions_resumes_bit_for_bit(tmp_path):
    """The checkpoint holds the param store's tensors: a run resumed in a fresh param store
    ends where an uninterrupted one does."""
    x = torch.randn(90, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    options = dict(objective="iwae", num_particles=2, batch_size=20, seed=1, progress=False)

    def params():
        return {n: pyro.param(n).detach().clone() for n in ("noise", "a", "b")}

    pyro.clear_param_store()
    fit((scale_model, scale_guide), x, epochs=4, checkpoint=tmp_path / "a.pt", **options)
    uninterrupted = params()
    pyro.clear_param_store()
    fit((scale_model, scale_guide), x, epochs=2, checkpoint=tmp_path / "b.pt", **options)
    pyro.clear_param_store()  # as in a new process
    fit((scale_model, scale_guide), x, epochs=4, checkpoint=tmp_path / "b.pt", resume=True,
        **options)  # fmt: skip
    for name, value in params().items():
        assert torch.equal(value, uninterrupted[name]), name
