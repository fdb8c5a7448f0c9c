"""The figures of `pgm3d complete` on rows of numbers, and the symmetry histogram's axis."""

import torch

from pgm3d.viz.runs import completion_figure


def test_completion_of_plain_rows_draws_imputed_against_true(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 5, generator=g)
    kept = torch.rand(30, 5, generator=g) > 0.4
    filled = {"mean": torch.where(kept, x, 0.0), "exact": torch.where(kept, x, x + 0.1)}
    assert completion_figure(tmp_path / "c.png", x, x, kept, filled)  # a tensor: plain rows
    assert (tmp_path / "c.png").stat().st_size > 0
