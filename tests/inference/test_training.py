import pytest
import torch

from pgm3d import FactorAnalysis
from pgm3d.inference import OBJECTIVES, FitHistory, fit
from pgm3d.models import VAE

F64 = torch.float64


@pytest.fixture
def data():
    fa = FactorAnalysis.random(6, 2, generator=torch.Generator().manual_seed(0))
    return fa.sample(256, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("objective", ["elbo", "meanfield", "iwae", "dreg", "rws"])
def test_every_objective_trains_a_vae(data, objective):
    torch.manual_seed(0)
    vae = VAE(6, 2, hidden=(32,))
    h = fit(
        vae, data, objective, num_particles=4, epochs=15, batch_size=64, lr=1e-2, progress=False
    )
    assert isinstance(h, FitHistory) and len(h.bound) == 15 and h.steps == 60
    assert h.bound[-1] > h.bound[0] + 1.0, h.bound


def test_fit_is_reproducible_from_its_seed(data):
    params = []
    for _ in range(2):
        torch.manual_seed(0)
        vae = VAE(6, 2, hidden=(8,))
        fit(vae, data, "iwae", num_particles=3, epochs=2, seed=7, progress=False)
        params.append(torch.cat([p.detach().flatten() for p in vae.parameters()]))
    torch.testing.assert_close(params[0], params[1], rtol=0, atol=0)


def test_kl_warmup_is_linear_and_callbacks_can_stop(data):
    vae = VAE(6, 2, hidden=(8,))
    seen = []

    def stop_after_three(epoch, history):
        seen.append(epoch)
        return epoch == 2

    h = fit(
        vae,
        data,
        "elbo",
        kl_weight=0.5,
        kl_warmup=8,
        epochs=10,
        batch_size=64,
        callbacks=[stop_after_three],
        progress=False,
    )
    assert h.stopped_early and seen == [0, 1, 2]
    # 4 steps per epoch: the weight reaches 0.5 after 8 steps and stays there
    assert h.kl_weight == pytest.approx([0.25, 0.5, 0.5])


def test_the_learning_rate_decays_by_a_factor_per_epoch(data, monkeypatch):
    vae = VAE(6, 2, hidden=(8,))
    seen = []

    class Spy(torch.optim.Adam):  # records the rate of every step
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", Spy)
    fit(vae, data, epochs=3, batch_size=128, lr=0.01, lr_decay=0.5, progress=False)
    assert seen == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])


def test_fit_accepts_a_mask_and_an_objective_object(data):
    vae = VAE(6, 2, hidden=(8,))
    mask = torch.rand(data.shape, generator=torch.Generator().manual_seed(2)) < 0.7
    objective = OBJECTIVES["dreg"](vae, num_particles=2)
    h = fit(vae, torch.where(mask, data, torch.nan), objective, mask=mask, epochs=2, progress=False)
    assert len(h.bound) == 2 and all(torch.isfinite(torch.tensor(h.bound)))


def test_fit_rejects_bad_arguments(data):
    vae = VAE(6, 2, hidden=(8,))
    for kwargs, match in [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"lr_decay": 1.5}, "lr_decay"),
        ({"kl_warmup": -1}, "kl_warmup"),
        ({"num_particles": 0}, "num_particles"),
        ({"objective": "vi"}, "unknown objective 'vi'.*elbo"),
        ({"parameters": []}, "nothing to optimise"),
    ]:
        with pytest.raises(ValueError, match=match):
            fit(vae, data, **{"progress": False, **kwargs})
    bad = data.clone()
    bad[3, 1] = torch.nan  # NaN means missing: fine without a mask ...
    fit(VAE(6, 2, hidden=(8,)), bad, epochs=1, progress=False)
    with pytest.raises(ValueError, match="data has a NaN"):  # ... not where a mask says observed
        fit(vae, bad, mask=torch.ones_like(bad, dtype=torch.bool), progress=False)
    bad[3, 1] = torch.inf
    with pytest.raises(ValueError, match=r"data has a NaN or infinite value .*row 4, column 2"):
        fit(vae, bad, progress=False)
    with pytest.raises(ValueError, match="columns"):
        fit(vae, data[:, :5], progress=False)
    with pytest.raises(ValueError, match=r"float64.*convert"):
        fit(vae, data.double(), progress=False)
    with pytest.raises(ValueError, match=r"parameters are on cpu but data is on meta"):
        fit(vae, torch.empty(4, 6, device="meta"), progress=False)


@pytest.mark.gpu
@pytest.mark.parametrize("objective", ["elbo", "iwae", "dreg", "rws"])
def test_fit_on_a_gpu(data, objective):
    vae = VAE(6, 2, hidden=(8,))
    h = fit(vae, data, objective, num_particles=2, epochs=2, device="cuda", progress=False)
    assert next(vae.parameters()).device.type == "cuda" and len(h.bound) == 2


def _overfitting_vae_run(data, callbacks=lambda vae: [], epochs=60):
    """32 training rows and a big network at a high rate: it overfits within a few epochs."""
    torch.manual_seed(0)
    vae = VAE(6, 2, hidden=(64, 64))
    cbs = callbacks(vae)
    h = fit(vae, data[:32], "elbo", epochs=epochs, batch_size=32, lr=3e-2, seed=3,
            callbacks=cbs, progress=False)  # fmt: skip
    return vae, h, cbs


def test_early_stopping_keeps_the_best_validation_parameters_and_stops(data):
    from pgm3d.inference import EarlyStopping

    _, h, (stop,) = _overfitting_vae_run(
        data, lambda vae: [EarlyStopping(vae, data[128:], patience=5, num_samples=4)]
    )
    epochs = [e for e, _ in stop.scores]
    assert epochs == list(range(1, len(h.bound) + 1))
    best = max(v for _, v in stop.scores)
    assert stop.best == best and dict(stop.scores)[stop.best_epoch] == best
    # validation peaks, then stops improving for `patience` evaluations
    assert h.stopped_early and len(h.bound) == stop.best_epoch + 5 < 60
    assert stop.score() < best  # the last parameters are worse ...
    stop.restore()
    assert stop.score() == best  # ... and the best ones come back (common random numbers)


def test_early_stopping_does_not_change_the_training_path(data):
    from pgm3d.inference import EarlyStopping

    plain, _, _ = _overfitting_vae_run(data, epochs=6)
    watched, _, _ = _overfitting_vae_run(
        data, lambda vae: [EarlyStopping(vae, data[128:], patience=100, num_samples=2)], epochs=6
    )
    for a, b in zip(plain.parameters(), watched.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"patience": 0}, "patience"), ({"every": 1.5}, "every"), ({"min_delta": -1.0}, "min_delta")],
)
def test_early_stopping_rejects_bad_settings(data, kwargs, match):
    from pgm3d.inference import EarlyStopping

    with pytest.raises(ValueError, match=match):
        EarlyStopping(VAE(6, 2), data, **kwargs)


def test_checks_run_in_the_first_epoch_and_where_rows_change(data, monkeypatch):
    """Pyro's validation runs through the first epoch (every row once), then stands down for
    fixed rows but not for fresh ones; the caller's setting is restored; no step re-checks its
    batch (the rows were checked whole)."""
    import pyro
    import pyro.distributions as dist

    import pgm3d._validation as validation

    seen, scans = [], []
    real = validation.check_observed_finite

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.loc = torch.nn.Parameter(torch.zeros(data.shape[1]))

        def model(self, x):
            seen.append(dist.is_validation_enabled())
            with pyro.plate("rows", x.shape[0]):
                pyro.sample("x", dist.Normal(self.loc, 1.0).to_event(1), obs=x)

        def guide(self, x):
            pass

    def counting(*args, **kw):
        scans.append(args[0].shape[0])
        return real(*args, **kw)

    monkeypatch.setattr(validation, "check_observed_finite", counting)
    fit(Probe(), data[:40], "elbo", epochs=3, batch_size=20, progress=False)
    assert seen[-6:] == [True, True, False, False, False, False]
    assert 20 not in scans  # the 40 rows were scanned whole, no batch of 20 again
    assert dist.is_validation_enabled()
    seen.clear()
    fit(Probe(), data[:40], "elbo", epochs=2, batch_size=20, progress=False,
        fresh=lambda epoch: data[40:80])  # fmt: skip
    assert seen[-4:] == [True] * 4


def test_a_context_computed_with_gradients_is_taken_as_data():
    """A context straight from a network (requires grad) trains like its detached copy."""
    import pyro
    import pyro.distributions as dist

    net = torch.nn.Linear(3, 2)
    h = net(torch.randn(40, 3))  # requires grad
    x = torch.randn(40, 2)

    class Conditional(torch.nn.Module):
        pgm3d_contract = {"obs": "x", "plate": "data", "data_arg": "x", "context": ("h",)}

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def model(self, x, mask=None, h=None):
            with pyro.plate("data", x.shape[0]):
                pyro.sample("x", dist.Normal(self.lin(h), 1.0).to_event(1), obs=x)

        def guide(self, x, mask=None, h=None):
            pass

    states = []
    for ctx in (h, h.detach()):
        torch.manual_seed(0)
        m = Conditional()
        fit(m, x, "elbo", context={"h": ctx}, epochs=3, batch_size=10, progress=False)
        states.append(m.lin.weight.detach().clone())
    torch.testing.assert_close(states[0], states[1], rtol=0, atol=0)
    assert net.weight.grad is None  # nothing flowed back into the network that made h
