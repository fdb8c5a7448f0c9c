"""Bad input, faults and hostile files: each case fails the one expected way, and leaves the
disk as it was (issue 14). Safe files; no lost progress; one meaning of missing; every
option checked; friendly data errors."""

import hashlib
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import pgm3d
from pgm3d.cli import main
from pgm3d.data import open_data
from pgm3d.data.loaders import UnreadableFile, load_voxels, save_voxels
from pgm3d.data.rows import read_rows
from pgm3d.evaluation import log_likelihood_per_dim
from pgm3d.inference import fit, log_likelihood
from pgm3d.models import PPCA, VAE, FactorAnalysis
from pgm3d.saving import CheckpointError
from pgm3d.tasks import FitSettings, InferenceSettings, run_fit

SMALL_VAE = "--model vae --data digits --latent-dim 2 --hidden 8 --iwae-samples 5 --ll-rows 20"


def run(*parts) -> int:
    """The exit status of ``pgm3d`` on a command line (argparse's usage errors included)."""
    argv = []
    for part in parts:
        argv += part.split() if isinstance(part, str) else [str(part)]
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def snapshot(folder: Path) -> dict:
    """Every file under ``folder``: its bytes' hash and its mode."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class Payload:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any code a file may run."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def ppca_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppca")
    assert run("fit --model ppca --data digits --latent-dim 3 --quiet --out", out) == 0
    return out


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    assert run("fit", SMALL_VAE, "--epochs 1 --quiet --out", out) == 0
    return out


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------------- 1. safe loading
def _malicious(path: Path, marker: Path) -> Path:
    torch.save({"format": "pgm3d-model", "version": 1, "model": Payload(marker)}, path)
    return path


def test_loading_a_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = _malicious(tmp_path / "model.pt", marker)
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError, match="a Python pickle: reading it can run any code"):
        pgm3d.load(path)
    with pytest.raises(CheckpointError, match="trust=True"):
        pgm3d.load(tmp_path)  # the folder's model.pt
    assert not marker.exists()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["complete", "evaluate", "sample"])
def test_the_commands_refuse_a_malicious_run_file(command, tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = _malicious(tmp_path / "model.pt", marker)
    before = snapshot(tmp_path)
    assert run(command, "--run", path, "--quiet --out", tmp_path / "out") == 2
    assert "--trust-file" in _error(capsys)
    assert not marker.exists() and not (tmp_path / "out").exists()
    assert snapshot(tmp_path) == before


def test_fit_resume_refuses_a_malicious_checkpoint(vae_run, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.toml").write_bytes((vae_run / "config.toml").read_bytes())
    marker = tmp_path / "pwned"
    _malicious(folder / "checkpoint.pt", marker)
    before = snapshot(folder)
    assert run("fit", SMALL_VAE, "--epochs 1 --resume --quiet --out", folder) == 2
    assert "pickle" in _error(capsys)
    assert not marker.exists()
    assert snapshot(folder) == before


def test_a_0_1_pickle_loads_only_on_trust_with_a_warning(tmp_path):
    model = PPCA.fit(torch.randn(50, 5, dtype=torch.float64), 2)
    path = tmp_path / "old.pt"
    torch.save({"format": "pgm3d-model", "version": 1, "model": model, "info": {"a": 1}}, path)
    with pytest.raises(CheckpointError, match="pgm3d 0.1 file"):
        pgm3d.load(path)
    with pytest.warns(UserWarning, match="unpickling"):
        back, info = pgm3d.load(path, trust=True, with_info=True)
    assert torch.equal(back.W, model.W) and info == {"a": 1}
    torch.save({"format": "pgm3d-model", "version": 1}, tmp_path / "empty.pt")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="holds no model"):
        pgm3d.load(tmp_path / "empty.pt", trust=True)
    pgm3d.save(back, tmp_path / "new.pt")  # saved again in the safe format
    assert torch.equal(pgm3d.load(tmp_path / "new.pt").W, model.W)


def test_a_flipped_byte_in_a_tensor_is_refused_with_the_file_name(ppca_run, tmp_path):
    data = bytearray((ppca_run / "model.pt").read_bytes())
    data[-3] ^= 0x01  # inside the last tensor's bytes
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{path} is corrupted.*checksum"):
        pgm3d.load(path)


def test_truncated_foreign_and_model_less_files_are_refused(ppca_run, tmp_path):
    from pgm3d._records import write_record

    data = (ppca_run / "model.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("hello")
    write_record(tmp_path / "nomodel.pt", {"format": "pgm3d-model", "version": 2})
    write_record(tmp_path / "other.pt", {"something": "else"})
    for name, message in [
        ("half.pt", "not a readable pgm3d file"),
        ("text.pt", "not a readable pgm3d file"),
        ("nomodel.pt", "holds no model"),
        ("other.pt", "not a pgm3d model or checkpoint"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            pgm3d.load(tmp_path / name)


def test_a_model_file_holds_no_code_only_plain_values_and_tensors(ppca_run):
    """Loading calls no constructor a file names: only pgm3d's registry (or ``into=``)."""
    from pgm3d._records import read_record

    record = read_record(ppca_run / "model.pt")
    assert record["model"]["kind"] == "model" and record["model"]["class"] == "ppca"

    def plain(v):
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        if isinstance(v, list | tuple):
            return all(plain(x) for x in v)
        return v is None or isinstance(v, bool | int | float | str | torch.Tensor)

    assert plain(record)


# ---------------------------------------------------------------------------- 2. no lost progress
def test_an_unfinished_run_is_not_restarted_without_resume_or_overwrite(vae_run, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("config.toml", "checkpoint.pt", "train_log.csv"):
        (folder / name).write_bytes((vae_run / name).read_bytes())  # as after a Ctrl-C
    before = snapshot(folder)
    assert run("fit", SMALL_VAE, "--epochs 1 --quiet --out", folder) == 2
    message = _error(capsys)
    assert "unfinished run" in message and "--resume" in message and "--overwrite" in message
    assert snapshot(folder) == before
    assert run("fit", SMALL_VAE, "--epochs 1 --quiet --resume --out", folder) == 0


def test_a_finished_run_is_not_retrained_over_and_overwrite_discards_it(vae_run, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    for p in vae_run.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    before = snapshot(folder)
    assert run("fit", SMALL_VAE, "--epochs 1 --quiet --out", folder) == 2
    assert "finished" in _error(capsys)
    assert snapshot(folder) == before
    assert run("fit", SMALL_VAE, "--epochs 1 --quiet --overwrite --out", folder) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (f"fit {SMALL_VAE} --epochs 0", "--epochs: must be >= 1, got 0"),
        (f"fit {SMALL_VAE} --data nope.npy", "does not exist"),
        (f"fit {SMALL_VAE} --objective nope", "unknown objective"),
        ("fit --model ppca --data digits --kl-weight nan", "--kl-weight: must be a finite"),
        ("fit --model gan --data digits", "gan models voxel grids"),
    ],
)
def test_a_refused_run_leaves_no_trace_and_the_corrected_one_runs(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(argv, "--quiet --out", out) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert run("fit --model ppca --data digits --latent-dim 2 --quiet --out", out) == 0


def test_a_refused_run_in_an_empty_folder_leaves_it_empty(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert run("fit --model ppca --data missing.csv --quiet --out", out) == 2
    assert list(out.iterdir()) == []


def test_files_are_written_with_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert run("fit --model ppca --data digits --latent-dim 2 --quiet --out", tmp_path) == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o640}, modes  # config, model, metrics, table alike


# ---------------------------------------------------------------------------- 3. missing data
@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_an_infinity_in_a_file_is_refused_with_its_row_and_column(suffix, tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4))
    x[1, 0] = np.nan  # missing: fine
    x[3, 2] = -np.inf
    path = tmp_path / f"rows{suffix}"
    if suffix == ".npy":
        np.save(path, x)
    else:
        path.write_text("\n".join(",".join(str(float(v)) for v in row) for row in x))
    with pytest.raises(ValueError, match=rf"{path}, row 4, column 3: -inf"):
        open_data(path)


def test_cli_refuses_an_infinity_naming_the_file(tmp_path, capsys):
    x = np.ones((10, 3))
    x[0, 1] = np.inf
    np.save(tmp_path / "rows.npy", x)
    data = tmp_path / "rows.npy"
    assert run("fit --model ppca --data", data, "--quiet --out", tmp_path / "o") == 2
    assert "rows.npy, row 1, column 2: inf" in _error(capsys)
    assert not (tmp_path / "o").exists()


def test_complex_text_and_all_missing_files_are_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((4, 3)) * (1 + 2j))
    np.save(tmp_path / "s.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(tmp_path / "nan.npy", np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match="c.npy holds complex numbers"):
        read_rows(tmp_path / "c.npy")
    with pytest.raises(ValueError, match="not numbers"):
        read_rows(tmp_path / "s.npy")
    with pytest.raises(ValueError, match="nan.npy has no observed entry"):
        open_data(tmp_path / "nan.npy")


def test_a_row_with_nothing_observed_is_refused_for_training(tmp_path):
    x = torch.randn(30, 4)
    x[[2, 7]] = float("nan")
    with pytest.raises(ValueError, match=r"2 row\(s\) \(3, 8\) of 30 have no observed entry"):
        fit(VAE(4, 2), x, epochs=1, progress=False)
    with pytest.raises(ValueError, match="no observed entry"):
        FactorAnalysis.fit_missing(x.double(), ~x.isnan(), 2)
    path = tmp_path / "rows.npy"
    np.save(path, x.numpy())
    assert open_data(path).empty_rows == (3, 8)
    with pytest.raises(ValueError, match=r"rows 3, 8, counting from 1"):
        run_fit(FitSettings(model="ppca", data=str(path)), tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_row_with_nothing_observed_is_not_scored():
    x = torch.randn(40, 4, dtype=torch.float64)
    model = PPCA.fit(x, 2)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[5] = False
    exact = log_likelihood(model, x, mask, method="exact")
    iwae = log_likelihood(model, x, mask, num_samples=4)
    per_dim, _ = log_likelihood_per_dim(model, x, mask)
    for values in (exact, iwae, per_dim):
        assert values[5].isnan() and values[torch.arange(40) != 5].isfinite().all()


def test_nan_means_missing_in_the_api_without_a_mask():
    from pgm3d.inference import complete

    x = torch.randn(40, 5, dtype=torch.float64)
    model = PPCA.fit(x, 2)
    hidden = x.clone()
    hidden[::3, 1] = float("nan")
    mask = ~hidden.isnan()
    torch.testing.assert_close(
        log_likelihood(model, hidden, method="exact"),
        log_likelihood(model, hidden, mask, method="exact"),
    )
    torch.testing.assert_close(
        complete(model, hidden, method="exact").x, complete(model, hidden, mask, "exact").x
    )
    with pytest.raises(ValueError, match="NaN or infinite value at an observed entry"):
        log_likelihood(model, hidden, torch.ones_like(mask), method="exact")


def test_the_api_refuses_infinities_and_names_positions_from_one():
    x = torch.randn(5, 3)
    x[2, 1] = float("inf")
    with pytest.raises(ValueError, match=r"row 3, column 2, counting from 1"):
        fit(VAE(3, 2), x, epochs=1, progress=False)


# ---------------------------------------------------------------------------- 4. options
@pytest.mark.parametrize(
    "argv, message",
    [
        ("sample --run R -n 0", "argument -n/--num: must be >= 1, got 0"),
        ("sample --run R -n -3", "argument -n/--num: must be >= 1, got -3"),
        ("sample --run R --device foo", "argument --device: 'foo' is not a torch device"),
        ("fit --kl-weight nan", "argument --kl-weight: must be a finite number, got nan"),
        ("fit --lr inf", "argument --lr: must be a finite number, got inf"),
        ("fit --lr 0", "argument --lr: must be > 0.0, got 0.0"),
        ("fit --hidden 0", "argument --hidden: must be >= 1, got 0"),
        ("fit --epochs 1.5", "argument --epochs: must be an integer, got '1.5'"),
        (f"fit --seed {2**70}", "argument --seed: must be in [0, 4294967295]"),
        ("fit --seed -1", "argument --seed: must be in [0, 4294967295]"),
        ("complete --run R --p-missing 1.5", "argument --p-missing: must be in (0.0, 1.0)"),
        ("experiment mvae --lr-decay 0", "argument --lr-decay: must be in (0.0, 1.0]"),
        ("experiment shapes --latent-dims 8 0", "argument --latent-dims: must be >= 1, got 0"),
    ],
)
def test_a_bad_option_is_a_usage_error_before_anything_is_written(argv, message, tmp_path, capsys):
    assert run(argv, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cuda_without_a_device_is_a_usage_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert run("fit --device cuda --out", tmp_path / "o") == 2
    assert "no CUDA device is available" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs = 1.5", "epochs = 1.5: must be an integer, got 1.5"),
        ("epochs = true", "epochs = True: must be an integer, got True"),
        ("epochs = 0", "epochs = 0: must be >= 1, got 0"),
        ("lr = nan", "lr = nan: must be a finite number"),
        ('epochs = "ten"', "epochs = 'ten': must be an integer, got 'ten'"),
        ('seed = "x"', "seed = 'x': must be an integer"),
        ("quiet = 1", "quiet = 1: must be true or false"),
        ("model = 3", "model = 3: must be a string"),
        ('device = "foo"', "device = 'foo': 'foo' is not a torch device"),
        ('log = "paper"', "log = 'paper': choose one of: csv, tensorboard, none"),
    ],
)
def test_a_bad_config_value_names_its_file_and_key(text, message, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(text + "\n")
    assert run("fit --config", config, "--out", tmp_path / "out") == 2
    line = _error(capsys)
    assert f"c.toml: {message}" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"device": "cuda:7"}, ValueError, "device 'cuda:7'"),
        ({"device": "foo"}, ValueError, "not a torch device"),
        ({"lr": float("inf")}, ValueError, "lr must be a finite number"),
        ({"kl_weight": float("nan")}, ValueError, "kl_weight must be a finite number"),
        ({"epochs": 1.5}, TypeError, "epochs must be an integer"),
        ({"epochs": True}, TypeError, "epochs must be an integer"),
        ({"seed": 2**70}, ValueError, "seed must be in"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ],
)
def test_fit_refuses_bad_options_with_its_own_message(options, error, message):
    if torch.cuda.is_available() and options.get("device") == "cuda:7":
        pytest.skip("needs a machine without 8 CUDA devices")
    with pytest.raises(error, match=message):
        fit(VAE(3, 2), torch.randn(8, 3), progress=False, **options)


def test_the_api_refuses_half_precision_and_values_too_large_to_square():
    with pytest.raises(TypeError, match="float16: pgm3d computes in float32 or float64"):
        fit(VAE(3, 2).half(), torch.randn(8, 3).half(), epochs=1, progress=False)
    big = torch.randn(8, 3) * 1e30
    with pytest.raises(ValueError, match="magnitude.*rescale"):
        fit(VAE(3, 2), big, epochs=1, progress=False)
    with pytest.raises(ValueError, match="magnitude"):
        PPCA.fit(big, 1)
    PPCA.fit(big.double(), 1)  # float64 has the room


def test_load_refuses_a_device_that_does_not_exist(ppca_run):
    with pytest.raises(ValueError, match="not a torch device"):
        pgm3d.load(ppca_run, device="foo")


def test_task_settings_are_checked_when_made(tmp_path):
    with pytest.raises(ValueError, match="hidden must be >= 1"):
        FitSettings(model="vae", data="digits", hidden=0)
    with pytest.raises(TypeError, match="epochs must be an integer"):
        FitSettings(model="vae", data="digits", epochs=1.5)
    with pytest.raises(ValueError, match="unknown model 'vea' \\(did you mean 'vae'\\?\\)"):
        FitSettings(model="vea")
    with pytest.raises(ValueError, match="InferenceSettings needs run"):
        InferenceSettings()
    with pytest.raises(ValueError, match="did you mean 'epochs'"):
        FitSettings.full(epoch=3)
    with pytest.raises(TypeError, match="data must be a string"):
        FitSettings(data=3)
    with pytest.raises(ValueError, match="likelihood must be one of: gaussian, bernoulli"):
        FitSettings(likelihood="poisson")
    s = FitSettings(epochs=2)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        s.replace(epochs=0)
    assert s.replace(model="ppca").model == "ppca" and s.model is None


# ---------------------------------------------------------------------------- 5. data files
def test_a_csv_header_is_detected_and_kept_as_column_names(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("height,width,depth\n1.5,2,3\n4,,6\n7,NA,nan\n2,3,4\n1,1,1\n")
    split = open_data(path, test_fraction=0.2)
    assert split.columns == ("height", "width", "depth")
    rows = read_rows(path)
    assert rows.x.shape == (5, 3) and np.isnan(rows.x[1:3, 1]).all() and np.isnan(rows.x[2, 2])


def test_a_text_field_that_is_not_a_number_is_an_error_at_its_position(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n3,x4\n")
    with pytest.raises(ValueError, match=r"rows.csv: row 2 \(after the header\), column 2: 'x4'"):
        read_rows(path)
    path.write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="row 2 has 1 values, expected 2"):
        read_rows(path)


def test_npz_keys_are_read_as_documented(tmp_path):
    x = np.arange(12.0).reshape(4, 3)
    np.savez(tmp_path / "x.npz", x=x, other=np.zeros(2))
    np.savez(tmp_path / "one.npz", data=x)
    np.savez(tmp_path / "two.npz", a=x, b=x)
    assert np.array_equal(read_rows(tmp_path / "x.npz").x, x)
    assert np.array_equal(read_rows(tmp_path / "one.npz").x, x)
    with pytest.raises(ValueError, match=r"two.npz: it holds the arrays \['a', 'b'\]; name"):
        read_rows(tmp_path / "two.npz")


def test_an_unreadable_npy_is_named_in_the_message(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="bad.npy"):
        open_data(tmp_path / "bad.npy")


def test_one_unreadable_file_does_not_abort_a_modelnet_folder(tmp_path):
    root = tmp_path / "ModelNet"
    grid = np.zeros((8, 8, 8), dtype=bool)
    grid[2:6, 2:6, 2:6] = True
    for cls in ("box", "cup"):
        for part in ("train", "test"):
            (root / cls / part).mkdir(parents=True)
            save_voxels(root / cls / part / "a.npy", grid)
    (root / "cup" / "train" / "broken.npy").write_bytes(b"not numpy")
    with pytest.warns(UserWarning, match=r"skipped 1 of 5 unreadable files:\n  .*broken.npy"):
        data = load_voxels(root, progress=False)
    assert len(data) == 4
    with pytest.raises(UnreadableFile, match="broken.npy"):
        load_voxels(root, progress=False, on_error="raise")
    (root / "cup" / "train" / "a.npy").write_bytes(b"not numpy either")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(load_voxels(root, progress=False)) == 3


def test_a_row_with_nothing_observed_warns_when_completed_and_is_refused_in_training():
    from pgm3d.inference import complete, fit
    from pgm3d.models import VAE

    x = torch.rand(5, 4)
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[2] = False
    model = VAE(4, 2)
    with pytest.warns(UserWarning, match=r"1 row\(s\) of 5 have no observed entry \(rows 3"):
        out = complete(model, x, mask, "importance", num_proposals=4, num_samples=2, chains=1)
    assert torch.isfinite(out.x).all()
    with pytest.raises(ValueError, match="no observed entry"):
        fit(model, x, mask=mask, epochs=1, progress=False)
