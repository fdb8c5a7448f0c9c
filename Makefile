# Two commands a new user needs: `make demo` (install, then the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
# CPU-only pins for this kind of machine (see constraints/cpu.txt); set CONSTRAINTS= on a GPU box.
CONSTRAINTS ?= constraints/cpu.txt
OUT ?= runs/demo
QUICK ?=
PY := $(VENV)/bin/python
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

.PHONY: install test test-slow demo run bench bench-gpu lint clean docs

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check $(PIP_C) -e ".[dev]"

test: install
	$(PY) -m pytest

test-slow: install
	$(PY) -m pytest -m slow

# the end-to-end demo: runs/demo/report.html (QUICK=1: a one-minute smoke run)
demo: install
	$(VENV)/bin/pgm3d demo --out $(OUT) --overwrite $(if $(QUICK),--quick,)

run: demo

bench: install
	$(PY) benchmarks/missing_fa.py
	$(PY) benchmarks/inference.py
	$(PY) benchmarks/fit_step.py
	$(PY) benchmarks/shapes.py
	$(PY) benchmarks/shapevae.py
	$(PY) benchmarks/vsl.py
	$(PY) benchmarks/surfaces.py
	$(PY) benchmarks/lightning_ddp.py
	$(PY) benchmarks/data_at_scale.py
	$(PY) benchmarks/samplers.py
	$(PY) benchmarks/fa_fit.py
	$(PY) benchmarks/adam_denormals.py
	$(VENV)/bin/pgm3d bench --out runs/bench --overwrite

# the device benchmark in one table (on a CUDA machine; DEVICE=cpu measures the CPU)
DEVICE ?= cuda
bench-gpu: install
	PYTHON=$(abspath $(PY)) benchmarks/gpu.sh --device $(DEVICE)

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info

# the API reference from the docstrings: docs/_build/html/index.html
docs: install
	$(PY) -m pip install --quiet --disable-pip-version-check $(PIP_C) -e ".[docs]"
	$(PY) -m sphinx -q -b html docs docs/_build/html
