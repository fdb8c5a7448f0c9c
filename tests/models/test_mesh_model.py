"""Rezende et al.'s mesh model: a black-box renderer, trained by VIMCO."""

import pyro
import pytest
import torch
import trimesh

from pgm3d.contract import ContractError
from pgm3d.data.mesh import Mesh
from pgm3d.data.render import Camera, render_meshes
from pgm3d.inference import OBJECTIVES, fit, log_likelihood
from pgm3d.models.mesh_model import MeshModel, icosphere

CAMERA = Camera(0.0, 0.5, scale=1.2)


def _ellipsoids(n, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    sphere = trimesh.creation.icosphere(subdivisions=2)
    images = []
    for _ in range(n):
        axes = 0.35 + 0.5 * torch.rand(3, generator=g, dtype=torch.float64)
        mesh = Mesh(torch.as_tensor(sphere.vertices) * axes, torch.as_tensor(sphere.faces))
        images.append(render_meshes(mesh, CAMERA, size)[0])
    return torch.stack(images).reshape(n, -1).float()


def test_the_renderer_agrees_with_the_mesh_renderer():
    m = MeshModel(16, camera=CAMERA)
    radial = torch.zeros(1, len(m.template))  # the template: radius 0.6
    v, f = icosphere(2)
    truth = render_meshes(Mesh(0.6 * v, f), CAMERA, 16)[0].reshape(-1).float()
    assert torch.equal(m.render(radial)[0], truth)
    assert not m.render(radial.requires_grad_()).requires_grad  # a black box


def test_vimco_trains_the_mesh_model_through_the_black_box():
    """20 epochs of VIMCO (K = 8) on 48 ellipsoid silhouettes, an 80-face template: the bound
    (K = 10) rose from -59.6 to -45.4 nats (measured; with the 320-face template and 64
    silhouettes for 30 epochs, -76.3 to -59.9)."""
    x = _ellipsoids(48)
    torch.manual_seed(0)
    m = MeshModel(16, latent_dim=4, hidden=64, camera=CAMERA, subdivisions=1)
    pyro.set_rng_seed(0)
    before = float(log_likelihood(m, x, num_samples=10).mean())
    fit(m, x, "vimco", num_particles=8, epochs=20, batch_size=24, lr=1e-3, progress=False)
    pyro.set_rng_seed(0)
    after = float(log_likelihood(m, x, num_samples=10).mean())
    assert after > before + 5, (before, after)


def test_pathwise_objectives_refuse_the_black_box():
    x = _ellipsoids(4)
    with pytest.raises(ContractError, match="site 'mesh'"):
        OBJECTIVES["iwae"](MeshModel(16, latent_dim=2, hidden=8), num_particles=2)(x)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="jitter must be > 0"):
        MeshModel(16, jitter=0.0)
    assert MeshModel(16).sample(2, mean=True).shape == (2, 16, 16)
