import runpy
import warnings
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PGM3D_EXAMPLES_OUT", str(tmp_path))  # figures go to a temporary folder
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # e.g. EM that did not converge
        runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("\n") >= 5, out  # each example prints its comparison
