"""The models of ``examples/`` (Pyro's VAE and CVAE as Pyro writes them, a plain-function
model, a model with a global latent, a mixture with a discrete latent), importable by name."""

import sys
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

F64 = torch.float64


@pytest.fixture(scope="session")
def digits01():
    """sklearn's digits in [0, 1]: 200 training and 40 test rows, float32."""
    from pgm3d.data import open_data

    split = open_data("digits", seed=0)
    return (split.train[:200].float() + 1) / 2, (split.test[:40].float() + 1) / 2
