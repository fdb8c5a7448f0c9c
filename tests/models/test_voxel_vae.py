"""The convolutional voxel VAE, the volume experiment's non-sequential baseline."""

import pyro
import pytest
import torch

from pgm3d.data import primitives
from pgm3d.inference import complete, fit, log_likelihood
from pgm3d.models import MODELS, VoxelVAE


def test_registered_and_trained_by_every_pathwise_objective():
    assert MODELS["voxel-vae"] is VoxelVAE
    x = VoxelVAE.rows(primitives(8, 16, seed=0).voxels)
    for objective, particles in (("elbo", 1), ("iwae", 3)):
        torch.manual_seed(0)
        m = VoxelVAE(16, latent_dim=8, channels=(8, 16))
        h = fit(m, x, objective, num_particles=particles, epochs=20, batch_size=20, lr=3e-3,
                progress=False)  # fmt: skip
        assert h.bound[-1] > h.bound[0] + 100, h.bound
    pyro.set_rng_seed(0)
    assert log_likelihood(m, x[:4], num_samples=8).shape == (4,)
    mask = torch.rand(4, 16**3, generator=torch.Generator().manual_seed(0)) < 0.5
    done = complete(m, x[:4], mask, method="pseudo_gibbs", num_samples=3, seed=0)
    torch.testing.assert_close(done.x[mask], x[:4][mask])
    grids, z = m.sample(3, mean=True, return_latents=True)
    assert grids.shape == (3, 16, 16, 16) and z.shape == (3, 8)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="multiple of 4"):
        VoxelVAE(30)
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        VoxelVAE(16, latent_dim=0)
