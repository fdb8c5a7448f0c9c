"""The device benchmark (benchmarks/gpu.sh) runs on this machine's CPU at its tiny size and
prints its whole table, so it is ready for the day a GPU is lent."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_device_benchmark_runs_on_the_cpu():
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(ROOT / "benchmarks" / "gpu.sh"), "--device", "cpu", "--size", "tiny"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for row in ("SVI step, pgm3d vs plain PyTorch", "fit, VAE (digits)", "fit, vsl",
                "IWAE log-likelihood", "complete, hmc", "complete, exact (PPCA)",
                "half precision refused"):  # fmt: skip
        assert row in done.stdout, row
