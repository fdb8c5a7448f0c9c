#!/usr/bin/env bash
# The device benchmark in one command (issue 19): on a CUDA machine it measures the GPU; with
# `--device cpu` (what the tests run, at `--size tiny`) the CPU. Installs nothing.
#   benchmarks/gpu.sh [--device cuda] [--size full] [--dtypes float32 bfloat16]
set -euo pipefail
cd "$(dirname "$0")"
exec "${PYTHON:-python}" gpu.py "$@"
