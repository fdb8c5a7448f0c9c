"""Checkpoints of ``fit``: atomic, resumable bit for bit, refusing corrupt or foreign files."""

import os

import pytest
import torch

import pgm3d
from pgm3d._io import atomic_write
from pgm3d.inference import CSVLog, TensorBoardLog, fit
from pgm3d.models import VAE
from pgm3d.saving import CheckpointError, read_checkpoint


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class _Stop(KeyboardInterrupt):
    """Stands in for Ctrl-C at an epoch's end."""


def _train(path=None, *, resume=False, stop_at=None, epochs=5, objective="iwae", log=None):
    torch.manual_seed(1)
    model = VAE(10, 3, hidden=(16,))
    data = torch.randn(150, 10, generator=torch.Generator().manual_seed(0))

    def stop(epoch, history):
        if epoch == stop_at:
            raise _Stop
        return False

    history = fit(
        model,
        data,
        objective,
        num_particles=3,
        epochs=epochs,
        batch_size=32,  # 5 steps per epoch, the last one short
        checkpoint=path,
        checkpoint_every=3,  # so checkpoints fall mid-epoch
        resume=resume,
        callbacks=[c for c in (stop, log) if c is not None],
        progress=False,
    )
    return model, history


@pytest.mark.parametrize("objective", ["iwae", "elbo"])
def test_a_resumed_run_ends_with_the_parameters_of_an_uninterrupted_one(tmp_path, objective):
    reference, ref_history = _train(objective=objective)
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(_Stop):
        _train(path, stop_at=2, objective=objective)  # interrupted after 15 steps
    assert read_checkpoint(path)["steps"] == 15  # the last multiple of 3 before the stop
    torch.manual_seed(123)  # the resumed run must not depend on the global state it finds
    resumed, history = _train(path, resume=True, objective=objective)
    assert history.steps == ref_history.steps == 25
    assert history.bound == ref_history.bound
    assert _same(reference, resumed)


def test_a_checkpoint_mid_epoch_resumes_the_same_minibatch_order(tmp_path):
    reference, _ = _train(epochs=2)
    path = tmp_path / "c.pt"
    with pytest.raises(_Stop):
        _train(path, stop_at=0, epochs=2)
    record = read_checkpoint(path)
    assert record["steps"] == 3 and record["loop"]["position"] == 96
    resumed, _ = _train(path, resume=True, epochs=2)
    assert _same(reference, resumed)


def test_resuming_a_finished_run_changes_nothing_and_more_epochs_extend_it(tmp_path):
    path = tmp_path / "c.pt"
    done, _ = _train(path, epochs=2)
    again, history = _train(path, resume=True, epochs=2)
    assert history.steps == 10
    assert _same(done, again)
    longer, _ = _train(path, resume=True, epochs=3)
    reference, _ = _train(epochs=3)
    assert _same(reference, longer)


def test_resume_refuses_other_settings(tmp_path):
    path = tmp_path / "c.pt"
    _train(path, epochs=1)
    with pytest.raises(ValueError, match="settings differ.*objective"):
        _train(path, resume=True, objective="elbo")


def test_a_corrupt_checkpoint_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "c.pt"
    _train(path, epochs=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    torn = path.read_bytes()
    with pytest.raises(CheckpointError, match="not a readable pgm3d file"):
        _train(path, resume=True)
    assert path.read_bytes() == torn
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        pgm3d.load(path)


def test_resume_needs_a_checkpoint_file(tmp_path):
    with pytest.raises(ValueError, match="needs the checkpoint"):
        fit(VAE(4, 2), torch.randn(8, 4), resume=True)
    with pytest.raises(FileNotFoundError):
        _train(tmp_path / "missing.pt", resume=True)


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def write(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, write)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_save_and_load_round_trip_a_model_and_the_model_of_a_checkpoint(tmp_path):
    model, _ = _train(tmp_path / "c.pt", epochs=1)
    pgm3d.save(model, tmp_path / "model.pt", {"data": "noise"})
    x = torch.randn(4, 10)
    for path in (tmp_path / "model.pt", tmp_path / "c.pt", tmp_path):
        loaded = pgm3d.load(path)
        assert isinstance(loaded, VAE)
        assert torch.equal(loaded.decoder(x[:, :3]), model.decoder(x[:, :3]))
    _, info = pgm3d.load(tmp_path / "model.pt", with_info=True)
    assert info == {"data": "noise"}
    _, info = pgm3d.load(tmp_path / "c.pt", with_info=True)
    assert info["steps"] == 5 and info["settings"]["objective"] == "IWAE"
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        read_checkpoint(tmp_path / "model.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither"):
        pgm3d.load(tmp_path / "empty")


def test_the_csv_log_keeps_one_row_per_epoch_across_a_resume(tmp_path):
    path, log = tmp_path / "c.pt", CSVLog(tmp_path / "log.csv")
    with pytest.raises(_Stop):
        _train(path, stop_at=2, log=log)
    _train(path, resume=True, log=log)
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,bound,kl_weight"
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4", "5"]


def test_tensorboard_log_needs_tensorboard(tmp_path):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install tensorboard"):
            TensorBoardLog(tmp_path)
    else:
        log = TensorBoardLog(tmp_path)
        _train(epochs=1, log=log)
        assert any(p.name.startswith("events") for p in tmp_path.iterdir())


def _fresh_run(path=None, *, resume=False, stop_at=None, seen=None):
    torch.manual_seed(1)
    model = VAE(10, 3, hidden=(16,))

    def draw(epoch):
        if seen is not None:
            seen.append(epoch)
        return torch.randn(150, 10, generator=torch.Generator().manual_seed(100 + epoch))

    def stop(epoch, history):
        if epoch == stop_at:
            raise _Stop
        return False

    history = fit(model, draw(0), "elbo", fresh=draw, epochs=4, batch_size=32,
                  checkpoint=path, checkpoint_every=3, resume=resume, callbacks=[stop],
                  progress=False)  # fmt: skip
    return model, history


def test_fresh_data_every_epoch_is_drawn_by_epoch_and_resumes_exactly(tmp_path):
    seen = []
    reference, ref_history = _fresh_run(seen=seen)
    assert seen == [0, 1, 2, 3] and ref_history.steps == 20  # epochs 1-3 drew new rows
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(_Stop):
        _fresh_run(path, stop_at=1)
    resumed, history = _fresh_run(path, resume=True)
    assert history.bound == ref_history.bound and _same(reference, resumed)
    # the same run on epoch 0's rows only ends elsewhere: the new rows were used
    torch.manual_seed(1)
    fixed = VAE(10, 3, hidden=(16,))
    data = torch.randn(150, 10, generator=torch.Generator().manual_seed(100))
    fit(fixed, data, "elbo", epochs=4, batch_size=32, progress=False)
    assert not _same(reference, fixed)
    with pytest.raises(ValueError, match=r"fresh\(1\) returned shape \(3, 10\)"):
        fit(VAE(10, 3), data, epochs=2, fresh=lambda e: torch.randn(3, 10), progress=False)
    with pytest.raises(ValueError, match="fresh= takes a function"):
        fit(VAE(10, 3), data, mask=data > 0, fresh=lambda e: data, progress=False)
