import pytest
import torch

from pgm3d import linalg
from pgm3d.linalg import pattern_gram, unique_rows


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


@pytest.mark.parametrize("sparse", [False, True])
def test_pattern_gram_is_weighted_gram_of_selected_rows(sparse):
    g = torch.Generator().manual_seed(1)
    W = torch.randn(25, 4, generator=g, dtype=torch.float64)
    w = torch.rand(25, generator=g, dtype=torch.float64)
    S = torch.rand(6, 25, generator=g) < 0.3
    Q = pattern_gram(W, w, S, sparse=sparse)
    for u in range(6):
        Ws = W[S[u]]
        torch.testing.assert_close(Q[u], Ws.T @ (Ws * w[S[u], None]))
    torch.testing.assert_close(Q, Q.mT)
