"""Bad models and bad inputs: one clear error each, raised before any training or sampling."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from discrete_latent import Mixture, simulate

import pgm3d
from pgm3d.contract import ContractError
from pgm3d.inference import complete, fit, log_likelihood

F64 = torch.float64


class Tiny(torch.nn.Module):
    """A one-latent model whose pieces the tests below break one at a time."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3, dtype=F64))

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(()), 1.0))
            pyro.sample("x", dist.Normal(z[:, None] * self.w, 1.0).to_event(1), obs=x)

    def guide(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x.mean(-1), 1.0))


def x5():
    return torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(0))


def refused_before_training(model, match, **fit_options):
    """``fit`` raises ``match`` and no parameter moved."""
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=match):
        fit(model, fit_options.pop("data", x5()), epochs=1, progress=False, **fit_options)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_a_model_argument_pgm3d_cannot_fill():
    class NeedsY(Tiny):
        def model(self, x, y):
            return super().model(x)

    refused_before_training(NeedsY(), r"model\(x, y\) needs argument\(s\) \['y'\].*context")


def test_two_observed_sites_neither_the_data():
    class Split(Tiny):
        def model(self, x):
            with pyro.plate("data", x.shape[0]):
                z = pyro.sample("z", dist.Normal(x.new_zeros(()), 1.0))
                loc = z[:, None] * self.w
                pyro.sample("a", dist.Normal(loc[:, :1], 1.0).to_event(1), obs=x[:, :1])
                pyro.sample("b", dist.Normal(loc[:, 1:], 1.0).to_event(1), obs=x[:, 1:])

    refused_before_training(
        Split(), r"several observed sites \['a', 'b'\], none of them the data.*obs="
    )
    fit(pgm3d.wrap(Split(), obs="b"), x5(), epochs=1, progress=False)  # named: fine


def test_a_context_with_the_wrong_number_of_rows():
    class Conditional(Tiny):
        def model(self, x, c):
            return super().model(x + c)

        def guide(self, x, c):
            return super().guide(x)

    refused_before_training(
        Conditional(), "context 'c' has 3 rows but the data has 5", context={"c": torch.zeros(3, 3)}
    )
    c = torch.zeros(5, 3, dtype=F64)
    c[1, 2] = torch.nan
    refused_before_training(
        Conditional(), "context 'c' has a NaN or infinite value in row 1", context={"c": c}
    )
    refused_before_training(
        Conditional(), r"model\(x, c\) has no argument 'd'", context={"d": torch.zeros(5, 3)}
    )


def test_a_mask_for_a_likelihood_whose_entries_are_coupled():
    class Coupled(Tiny):
        def model(self, x):
            with pyro.plate("data", x.shape[0]):
                z = pyro.sample("z", dist.Normal(x.new_zeros(()), 1.0))
                cov = torch.eye(3, dtype=F64) + 0.5
                pyro.sample("x", dist.MultivariateNormal(z[:, None] * self.w, cov), obs=x)

    mask = torch.ones(5, 3, dtype=torch.bool)
    mask[0, 1] = False
    refused_before_training(
        Coupled(), "MultivariateNormal likelihood, whose entries are coupled.*complete rows",
        mask=mask,
    )  # fmt: skip
    with pytest.raises(ContractError, match="coupled"):
        complete(Coupled(), x5(), mask, "importance")
    fit(Coupled(), x5(), epochs=1, progress=False)  # complete rows are fine


def test_guides_that_miss_or_invent_sites():
    class Missing(Tiny):
        def guide(self, x):
            pass

    class Extra(Tiny):
        def guide(self, x):
            with pyro.plate("data", x.shape[0]):
                pyro.sample("z", dist.Normal(x.mean(-1), 1.0))
                pyro.sample("w", dist.Normal(0.0, 1.0))

    refused_before_training(Missing(), r"does not sample the model's latent site\(s\) \['z'\]")
    refused_before_training(Extra(), r"samples site\(s\) \['w'\] that the model does not have")


def test_plates_pgm3d_cannot_minibatch():
    class Fixed(Tiny):
        def model(self, x):
            with pyro.plate("data", 1000, subsample=torch.arange(x.shape[0])):
                z = pyro.sample("z", dist.Normal(x.new_zeros(()), 1.0))
                pyro.sample("x", dist.Normal(z[:, None] * self.w, 1.0).to_event(1), obs=x)

    class Sequential(Tiny):
        def model(self, x):
            for i in pyro.plate("data", x.shape[0]):
                pyro.sample(f"x_{i}", dist.Normal(0.0, 1.0).expand([3]).to_event(1), obs=x[i])

        def guide(self, x):
            pass

    refused_before_training(Fixed(), "subsamples 5 of 1000 rows itself.*pyro.plate\\('data'")
    refused_before_training(
        Sequential(), "observed sites .* none of them the data|iterated sequentially"
    )


def test_things_that_are_not_models():
    with pytest.raises(ContractError, match="Linear has no model"):
        fit(torch.nn.Linear(3, 3), x5(), progress=False)
    with pytest.raises(ContractError, match="needs its guide"):
        log_likelihood(Tiny().model, x5())
    with pytest.raises(ContractError, match=r"must be \(model, guide\)"):
        log_likelihood((Tiny().model,), x5())
    with pytest.raises(ContractError, match="has no argument 'ys' \\(data_arg\\)"):
        fit(pgm3d.wrap(Tiny(), data_arg="ys"), x5(), progress=False)


# -------------------------------------------------------------------- discrete latents
@pytest.fixture(scope="module")
def mixture_rows():
    return simulate(300)


@pytest.mark.parametrize("objective", ["iwae", "dreg", "meanfield"])
def test_pathwise_objectives_refuse_a_discrete_latent_before_training(mixture_rows, objective):
    torch.manual_seed(0)
    refused_before_training(
        Mixture(), "site 'c' \\(Categorical\\) cannot be reparameterised; use 'rws' or 'elbo'",
        objective=objective, data=mixture_rows,
    )  # fmt: skip


def test_nuts_refuses_a_discrete_latent_before_sampling(mixture_rows, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("MCMC ran")

    monkeypatch.setattr(pyro.infer.MCMC, "run", never)
    torch.manual_seed(0)
    with pytest.raises(ContractError, match="site 'c' \\(Categorical\\) is discrete"):
        complete(Mixture(), mixture_rows[:4], None, "nuts")


def test_a_mixture_trained_by_rws_completes_to_the_exact_conditional(mixture_rows):
    """RWS trains the discrete latent's guide (score-free); importance completion of hidden
    entries then matches the mixture's exact E[x_m | x_v]."""
    torch.manual_seed(0)
    gmm = Mixture()
    h = fit(gmm, mixture_rows, "rws", num_particles=8, epochs=30, lr=0.03, progress=False)
    assert h.bound[-1] > h.bound[0] + 1.0
    test = simulate(40, seed=1)
    mask = torch.ones_like(test, dtype=torch.bool)
    mask[::2, 1] = False
    with torch.no_grad():
        ref = gmm.conditional_mean(test, mask)
    done = complete(gmm, test, mask, "importance", num_proposals=500, seed=0)
    assert (done.x - ref)[~mask].abs().max() < 0.05


def test_saving_a_pair_of_functions_is_refused_with_what_to_do(tmp_path):
    def model(x):
        s = pyro.param("s", torch.tensor(1.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(0.0, s).expand([3]).to_event(1), obs=x)

    def guide(x):
        pass

    x = torch.randn(4, 3)
    fit((model, guide), x, epochs=1, progress=False)
    with pytest.raises(ValueError, match="param store.*get_param_store\\(\\).save"):
        pgm3d.save(pgm3d.wrap(model, guide), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="param store"):
        pgm3d.save((model, guide), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_rws_refuses_a_global_latent_it_cannot_differentiate():
    class CoinBias(Tiny):
        """A global Bernoulli switch (outside the data plate), drawn once per step."""

        def model(self, x):
            flip = pyro.sample("flip", dist.Bernoulli(torch.tensor(0.5, dtype=F64)))
            with pyro.plate("data", x.shape[0]):
                pyro.sample("x", dist.Normal(flip * self.w, 1.0).to_event(1), obs=x)

        def guide(self, x):
            pyro.sample("flip", dist.Bernoulli(torch.sigmoid(self.w.sum())))

    refused_before_training(
        CoinBias(), "global site 'flip' \\(Bernoulli\\) cannot be reparameterised", objective="rws"
    )
    fit(CoinBias(), x5(), "elbo", epochs=1, progress=False)  # the score-function ELBO is fine


def test_data_of_another_width_than_the_model_was_traced_with():
    pair = pgm3d.wrap(Tiny())
    fit(pair, x5(), epochs=1, progress=False)
    with pytest.raises(ValueError, match="4 columns but the model's data dimension is 3"):
        log_likelihood(pair, torch.zeros(2, 4, dtype=F64))
