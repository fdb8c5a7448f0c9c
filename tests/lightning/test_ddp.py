"""DDP through Lightning: two CPU processes (gloo) end with identical parameters, equal to one
process's at the same effective batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning")
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name("ddp_script.py")


def _train(out: Path, strategy: str, devices: int, batch: int, epochs: int = 3) -> list[dict]:
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), strategy, str(devices), str(batch), str(epochs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [load_file(str(out / f"rank{r}.safetensors")) for r in range(devices)]


def test_two_processes_match_one_at_the_same_effective_batch(tmp_path):
    (one,) = _train(tmp_path / "one", "auto", 1, batch=32)
    rank0, rank1 = _train(tmp_path / "ddp", "ddp", 2, batch=16)
    assert set(one) == set(rank0) == set(rank1)
    # the param-store site trained too (its gradient is averaged by the module, not by DDP)
    assert abs(float(one["noise"]) - 1.0) > 1e-3
    for name in one:
        assert (rank0[name] == rank1[name]).all(), name  # DDP keeps the ranks identical
        diff = (rank0[name] - one[name]).abs().max().item()
        assert diff < 1e-5, f"{name}: {diff}"


def test_pgm3d_fit_with_strategy_ddp_writes_one_run_from_the_first_process(tmp_path):
    out = tmp_path / "run"
    # Bernoulli pixels: the VAE then holds a Gaussian noise scale no step uses
    argv = "fit --data digits --model vae --latent-dim 2 --hidden 16 --epochs 2 --batch-size 64"
    argv += " --likelihood bernoulli"
    argv += " --strategy ddp --devices 2 --accelerator cpu --ll-rows 10 --iwae-samples 10 --out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-m", "pgm3d", *argv.split(), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "ddp, 2 device(s) (Lightning)"
    assert metrics["steps"] == 2 * 23  # 1,437 training rows, 64 a step over both processes
    assert len((out / "train_log.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert {p.name for p in tmp_path.iterdir()} == {"run"}  # nothing else written
    from pgm3d.saving import load

    assert load(out).latent_dim == 2
