import math

import pytest
import torch

from pgm3d import linalg
from pgm3d.linalg import masked_gram, unique_rows


@pytest.mark.parametrize("D", [1, 63, 64, 200])
def test_unique_rows_groups_exactly(D):
    g = torch.Generator().manual_seed(D)
    base = torch.rand(7, D, generator=g) < 0.5
    mask = base[torch.randint(0, 7, (50,), generator=g)]
    patterns, inverse = unique_rows(mask)
    assert torch.equal(patterns[inverse], mask)
    assert patterns.shape[0] == torch.unique(mask, dim=0).shape[0]


def test_unique_rows_survives_hash_collisions(monkeypatch):
    # every key collides: the word-by-word check must catch it and regroup exactly
    monkeypatch.setattr(
        linalg, "_hash_multipliers", lambda n, device: torch.zeros(n, dtype=torch.long)
    )
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(30, 130, generator=g) < 0.5
    mask[5] = mask[3]
    patterns, inverse = unique_rows(mask)
    assert torch.equal(patterns[inverse], mask)
    assert patterns.shape[0] == 29


def test_unique_rows_rejects_non_bool():
    with pytest.raises(ValueError, match="bool"):
        unique_rows(torch.ones(3, 4))


@pytest.mark.parametrize("U", [3, 40])
@pytest.mark.parametrize("sparse", [None, False, True])
def test_masked_gram_is_weighted_gram_of_selected_rows(U, sparse):
    g = torch.Generator().manual_seed(1)
    W = torch.randn(25, 4, generator=g, dtype=torch.float64)
    w = torch.rand(25, generator=g, dtype=torch.float64)
    # selection rates from 5% to 95%: the packed path builds some rows, downdates others
    S = torch.rand(U, 25, generator=g) < torch.linspace(0.05, 0.95, U)[:, None]
    Q = masked_gram(W, w, S, diagonal=2.0, sparse=sparse)
    for u in range(U):
        Ws = W[S[u]]
        ref = Ws.T @ (Ws * w[S[u], None]) + 2.0 * torch.eye(4, dtype=torch.float64)
        torch.testing.assert_close(Q[u], ref)
    torch.testing.assert_close(Q, Q.mT)


def test_unique_rows_numbers_patterns_by_first_occurrence():
    mask = torch.tensor([[1, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.bool)
    patterns, inverse = unique_rows(mask)
    assert inverse.tolist() == [0, 1, 0, 2]
    assert torch.equal(patterns, mask[[0, 1, 3]])
    distinct = torch.rand(20, 30, generator=torch.Generator().manual_seed(2)) < 0.5
    assert torch.equal(unique_rows(distinct)[1], torch.arange(20))


def test_streaming_log_sum_exp_matches_the_direct_computation():
    from pgm3d.linalg import StreamingLogSumExp

    g = torch.Generator().manual_seed(3)
    log_w = 50 * torch.randn(300, 4, generator=g, dtype=torch.float64)  # would overflow exp
    values = torch.randn(300, 4, 2, generator=g, dtype=torch.float64)
    acc = StreamingLogSumExp()
    for start in range(0, 300, 64):
        acc.update(log_w[start : start + 64], values[start : start + 64])
    torch.testing.assert_close(acc.log_mean_exp(), torch.logsumexp(log_w, 0) - math.log(300))
    w = torch.softmax(log_w, 0)
    torch.testing.assert_close(acc.weighted_mean(), (w[..., None] * values).sum(0))


def test_masked_gram_stays_within_its_memory_budget_in_chunks(monkeypatch):
    """With the packed matrix over budget (tiny here) the chunked product gives the same."""
    import pgm3d.linalg

    g = torch.Generator().manual_seed(3)
    W = torch.randn(30, 6, generator=g, dtype=torch.float64)
    w = torch.rand(30, generator=g, dtype=torch.float64)
    S = torch.rand(50, 30, generator=g) < 0.6
    full = masked_gram(W, w, S, diagonal=1.0)
    monkeypatch.setattr(pgm3d.linalg, "PACKED_BYTES", 6 * 30 * 8 * 7)  # 7 rows per chunk
    torch.testing.assert_close(masked_gram(W, w, S, diagonal=1.0), full)
