import math

import pytest
import torch

from pgm3d.evaluation import imputation_mse


def test_per_row_mse_on_missing_entries_and_standard_error():
    x = torch.zeros(3, 4, dtype=torch.float64)
    x_hat = torch.tensor(
        [[1.0, 2.0, 9.0, 9.0], [3.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]], dtype=torch.float64
    )
    mask = torch.tensor(
        [[False, False, True, True], [False, True, True, True], [True, True, True, True]]
    )
    err = imputation_mse(x, x_hat, mask)
    torch.testing.assert_close(err.per_row[:2], torch.tensor([2.5, 9.0], dtype=torch.float64))
    assert math.isnan(err.per_row[2])
    assert err.n_rows == 2
    assert err.mean == pytest.approx(5.75)
    assert err.stderr == pytest.approx(torch.tensor([2.5, 9.0]).std().item() / math.sqrt(2))
    assert err.scaled(100) == pytest.approx((575.0, err.stderr * 100))


def test_bad_inputs():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="no missing"):
        imputation_mse(x, x, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="x_hat has shape"):
        imputation_mse(x, torch.zeros(2, 4), torch.ones(2, 3, dtype=torch.bool))
