# Two commands a new user needs: `make run` (install, then the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
# CPU-only pins for this kind of machine (see constraints/cpu.txt); set CONSTRAINTS= on a GPU box.
CONSTRAINTS ?= constraints/cpu.txt
OUT ?= runs/missing-fa
DATASET ?= digits
PY := $(VENV)/bin/python
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

.PHONY: install test test-slow run bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check $(PIP_C) -e ".[dev]"

test: install
	$(PY) -m pytest

test-slow: install
	$(PY) -m pytest -m slow

run: install
	$(VENV)/bin/pgm3d experiment missing-fa --dataset $(DATASET) --out $(OUT)

bench: install
	$(PY) benchmarks/missing_fa.py
	$(PY) benchmarks/inference.py
	$(PY) benchmarks/shapes.py
	$(PY) benchmarks/shapevae.py

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info
