"""Object counting by a KL threshold."""

import pytest
import torch

from pgm3d.evaluation import count_accuracy, count_confusion, kl_count_threshold


def test_the_threshold_separates_used_from_unused_objects():
    # used objects carry 5-9 nats, unused ones 0-0.5: any threshold in between counts exactly
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 4, (200,), generator=g)
    used = torch.arange(5) < counts[:, None]
    kl = torch.where(used, 5 + 4 * torch.rand(200, 5, generator=g), 0.5 * torch.rand(200, 5))
    kl = kl.sort(-1, descending=True).values
    threshold, accuracy = kl_count_threshold(kl, counts)
    assert accuracy == 1.0 and 0.5 <= threshold <= 5  # between the two groups
    assert count_accuracy(kl, counts, threshold) == 1.0
    table = count_confusion(kl, counts, threshold, max_count=3)
    assert table.shape == (4, 6) and torch.equal(table.diag(), torch.bincount(counts, minlength=4))


def test_the_chosen_threshold_maximises_accuracy_over_a_fine_grid():
    g = torch.Generator().manual_seed(1)
    counts = torch.randint(0, 4, (300,), generator=g)
    kl = (torch.arange(5) < counts[:, None]) * 3.0 + 2.0 * torch.rand(300, 5, generator=g)
    threshold, accuracy = kl_count_threshold(kl, counts)
    grid = torch.linspace(-1, 6, 2001)
    brute = max(count_accuracy(kl, counts, float(t)) for t in grid)
    assert accuracy == pytest.approx(brute) and count_accuracy(kl, counts, threshold) == accuracy


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"kl must be \(N, K\)"):
        kl_count_threshold(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="no scenes"):
        count_accuracy(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), 1.0)
