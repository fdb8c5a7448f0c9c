"""Data at scale: fit, complete, log_likelihood and evaluate_posteriors on arrays, memory maps,
Datasets and DataLoaders give what they give on the tensor."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from pgm3d import PPCA, complete
from pgm3d.data.batches import Rows, collate_rows, gather_rows, row_batches, unpack_batch
from pgm3d.evaluation import evaluate_posteriors
from pgm3d.inference import fit, log_likelihood
from pgm3d.models import VAE


@pytest.fixture
def table():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 6, generator=g, dtype=torch.float64) @ torch.randn(
        6, 6, generator=g, dtype=torch.float64
    )
    holey = x.clone()
    holey[torch.rand(120, 6, generator=g) < 0.3] = float("nan")
    holey[:, 0] = x[:, 0]  # every row keeps an entry
    return x, holey


def _vae(seed=0):
    torch.manual_seed(seed)
    return VAE(6, 2, (8,)).double()


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_fit_on_a_dataset_or_a_memory_map_equals_fit_on_the_tensor(table, tmp_path):
    _, holey = table
    ref = _vae()
    fit(ref, holey, epochs=3, batch_size=32, seed=1, progress=False)
    on_rows = _vae()
    fit(on_rows, Rows(holey), epochs=3, batch_size=32, seed=1, progress=False)
    assert torch.equal(_params(ref), _params(on_rows))
    np.save(tmp_path / "rows.npy", holey.numpy())
    mapped = np.load(tmp_path / "rows.npy", mmap_mode="r")
    on_map = _vae()
    fit(on_map, Rows(mapped, dtype=torch.float64), epochs=3, batch_size=32, seed=1,
        progress=False)  # fmt: skip
    assert torch.equal(_params(ref), _params(on_map))


def test_fit_on_a_dataset_resumes_exactly(table, tmp_path):
    x, _ = table
    straight = _vae()
    fit(straight, Rows(x), epochs=4, batch_size=50, seed=2, progress=False)
    resumed = _vae()
    ckpt = tmp_path / "c.pt"
    fit(resumed, Rows(x), epochs=2, batch_size=50, seed=2, progress=False, checkpoint=ckpt)
    fit(resumed, Rows(x), epochs=4, batch_size=50, seed=2, progress=False, checkpoint=ckpt,
        resume=True)  # fmt: skip
    assert torch.equal(_params(straight), _params(resumed))


def test_fit_on_a_dataloader_takes_its_batches_and_refuses_resume(table, tmp_path):
    x, _ = table
    loader = DataLoader(TensorDataset(x.float()), batch_size=40, shuffle=True)
    model = VAE(6, 2, (8,))
    history = fit(model, loader, epochs=2, progress=False)
    assert history.steps == 6 and len(history.bound) == 2
    with pytest.raises(ValueError, match="cannot resume exactly: pass its Dataset"):
        fit(model, loader, checkpoint=tmp_path / "c.pt", resume=True)
    with pytest.raises(ValueError, match="give masks and context in its rows"):
        fit(model, loader, mask=torch.ones(120, 6, dtype=torch.bool))


def test_complete_streams_over_batches_and_joins_them(table):
    x, holey = table
    model = PPCA.fit(x, 2)
    whole = complete(model, holey)
    loader = DataLoader(Rows(holey), batch_size=32, collate_fn=collate_rows)
    for given in (loader, Rows(holey), holey.numpy()):
        part = complete(model, given)
        assert torch.allclose(part.x, whole.x) and torch.equal(part.mask, whole.mask)
        assert torch.allclose(part.z.covariance_matrix, whole.z.covariance_matrix)
    drawn = complete(model, loader, method="importance", num_proposals=50, seed=0)
    assert drawn.samples["x"].shape[2] == 120 and drawn.ess.shape == (120,)
    assert drawn.z.batch_shape == (120,)
    with pytest.raises(ValueError, match="give masks and context in its rows"):
        complete(model, loader, torch.ones(120, 6, dtype=torch.bool))


def test_log_likelihood_and_evaluate_posteriors_on_batches(table):
    x, holey = table
    model = PPCA.fit(x, 2)
    whole = log_likelihood(model, holey, method="exact")
    loader = DataLoader(Rows(holey), batch_size=50, collate_fn=collate_rows)
    assert torch.allclose(log_likelihood(model, loader, method="exact"), whole)
    assert torch.allclose(log_likelihood(model, holey.numpy(), method="exact"), whole)
    mask = ~holey.isnan()
    a = evaluate_posteriors(model, holey, mask, ["exact", "fca"], x_true=x)
    b = evaluate_posteriors(model, loader, None, ["exact", "fca"], x_true=x)
    for method in ("exact", "fca"):
        assert a.rows[method]["mse"] == pytest.approx(b.rows[method]["mse"])


def test_rows_in_every_accepted_form():
    x = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(unpack_batch(x)[0], x)
    assert unpack_batch((x,))[1] is None
    m = torch.ones(3, 2, dtype=torch.bool)
    assert torch.equal(unpack_batch({"x": x, "mask": m})[1], m)
    got, mask, ctx = gather_rows(DataLoader(TensorDataset(x, m, torch.arange(3)), batch_size=2))
    assert torch.equal(got, x) and mask.all() and torch.equal(ctx, torch.arange(3))
    assert len(list(row_batches(Rows(x), batch_size=2))) == 2
    with pytest.raises(ValueError, match="needs an 'x' entry"):
        unpack_batch({"rows": x})
    with pytest.raises(ValueError, match=r"\(x\[, mask\[, context\]\]\)"):
        unpack_batch((x, m, x, x))
    with pytest.raises(ValueError, match="has no rows"):
        gather_rows(Rows(torch.zeros(0, 2)))


def test_rows_read_a_batch_at_once_as_they_would_row_by_row(table):
    _, holey = table
    rows = Rows(holey.numpy(), context={"c": np.arange(120)}, dtype=torch.float64)
    idx = [5, 0, 77, 3]
    at_once = collate_rows(rows.__getitems__(idx))
    one_by_one = collate_rows([rows[i] for i in idx])
    assert torch.equal(at_once["x"], one_by_one["x"])
    assert torch.equal(at_once["mask"], one_by_one["mask"])
    assert torch.equal(at_once["context"]["c"], one_by_one["context"]["c"])
