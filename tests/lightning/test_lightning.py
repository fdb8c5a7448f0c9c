"""pgm3d.lightning in one process: rows from tensors, arrays and memory maps; the module trains
any objective, saves through pgm3d.save, runs pgm3d's callbacks; bad settings are refused."""

import numpy as np
import pytest
import torch

L = pytest.importorskip("lightning")

from pgm3d.lightning import (  # noqa: E402
    ObjectiveModule,
    Rows,
    RowsDataModule,
    collate_rows,
    fit_lightning,
)
from pgm3d.models import VAE  # noqa: E402
from pgm3d.saving import load  # noqa: E402


def _trainer(**kw):
    base = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**{**base, **kw})


def test_rows_read_nan_as_missing_and_zero_fill_them():
    x = torch.tensor([[1.0, float("nan")], [3.0, 4.0]], dtype=torch.float64)
    rows = Rows(x)
    assert rows[0]["mask"].tolist() == [True, False]
    assert rows[0]["x"].tolist() == [1.0, 0.0] and rows[0]["x"].dtype == torch.float64
    assert "mask" not in rows[1]
    batch = collate_rows([rows[0], rows[1]])
    assert batch["mask"].tolist() == [[True, False], [True, True]]


def test_rows_from_a_memory_mapped_npy_match_the_array(tmp_path):
    data = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", data)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    rows = Rows(mapped, context={"c": np.arange(50)})
    assert isinstance(mapped, np.memmap)
    item = rows[7]
    assert torch.equal(item["x"], torch.from_numpy(data[7]))
    assert item["context"]["c"].item() == 7


def test_rows_refuse_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        Rows(torch.zeros(3))
    with pytest.raises(ValueError, match="mask has shape"):
        Rows(torch.zeros(3, 2), mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="context 'c' has 2 rows"):
        Rows(torch.zeros(3, 2), context={"c": torch.zeros(2)})
    with pytest.raises(TypeError, match="mmap_mode"):
        RowsDataModule("data.npy")


def test_module_trains_a_vae_and_saves_a_file_pgm3d_loads(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(200, 12)
    model = VAE(12, 3, (16,))
    history = fit_lightning(
        model,
        x,
        "iwae",
        num_particles=3,
        epochs=4,
        batch_size=50,
        lr=1e-2,
        strategy="auto",
        devices=1,
        save_to=tmp_path / "m.pt",
    )
    assert len(history.bound) == 4 and history.steps == 16
    assert history.bound[-1] > history.bound[0]
    again = load(tmp_path / "m.pt")
    for a, b in zip(again.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_pgm3d_callbacks_see_the_history_and_can_stop():
    seen = []

    def stop_after_two(epoch, history):
        seen.append((epoch, len(history.bound), history.kl_weight[-1]))
        return epoch == 1

    history = fit_lightning(
        VAE(6, 2, (8,)),
        torch.rand(40, 6),
        epochs=10,
        batch_size=20,
        kl_warmup=4,
        strategy="auto",
        devices=1,
        callbacks=[stop_after_two],
    )
    assert history.stopped_early and len(history.bound) == 2
    assert seen == [(0, 1, 0.5), (1, 2, 1.0)]  # warm-up over 4 steps, 2 steps an epoch


def test_masked_rows_train_on_the_observed_entries_only():
    torch.manual_seed(0)
    x = torch.rand(60, 5)
    x[::3, 1] = float("nan")
    module = ObjectiveModule(VAE(5, 2, (8,)), "elbo", seed=0)
    data = RowsDataModule(x, batch_size=30)
    _trainer(max_epochs=1).fit(module, data)
    assert module.num_rows == 60
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in module.parameters())


def test_the_module_needs_a_batch_to_trace_and_a_known_objective():
    with pytest.raises(ValueError, match="unknown objective"):
        ObjectiveModule(VAE(4, 2, (8,)), "nope")
    module = ObjectiveModule(VAE(4, 2, (8,)))
    loader = torch.utils.data.DataLoader(
        Rows(torch.rand(8, 4)), batch_size=4, collate_fn=collate_rows
    )
    with pytest.raises(ValueError, match="traces the pair on a batch"):
        _trainer(max_epochs=1).fit(module, loader)
    # with an example batch, a plain DataLoader trains (N from its dataset)
    module = ObjectiveModule(VAE(4, 2, (8,)), example={"x": torch.rand(4, 4)})
    _trainer(max_epochs=1).fit(module, loader)
    assert module.num_rows == 8


def test_fit_lightning_refuses_a_batch_that_does_not_split():
    with pytest.raises(ValueError, match="does not split over 2 processes"):
        fit_lightning(VAE(4, 2, (8,)), torch.rand(8, 4), batch_size=5, devices=2)


def test_held_out_rows_are_scored_each_epoch():
    torch.manual_seed(0)
    module = ObjectiveModule(VAE(6, 2, (8,)), "elbo")
    data = RowsDataModule(torch.rand(60, 6), batch_size=20, validation=torch.rand(10, 6))
    trainer = _trainer(max_epochs=2)
    trainer.fit(module, data)
    assert "val_bound" in trainer.callback_metrics
    assert torch.isfinite(trainer.callback_metrics["val_bound"])
