"""Perspective transformer nets (Yan et al. 2016): the paper's shapes, and 3D recovered from
silhouettes alone."""

import pytest
import torch

from pgm3d.data import primitives
from pgm3d.data.views import render_views
from pgm3d.evaluation import occupancy_iou
from pgm3d.models.ptn import LOSSES, PTN, train_ptn


def test_the_papers_network_maps_an_image_to_a_32_cube():
    net = PTN()  # the paper's sizes
    assert net(torch.zeros(2, 32, 32)).shape == (2, 32, 32, 32)
    assert net.encoder[-2].out_features == 512 and net.decoder[0].out_channels == 256
    assert net.decoder[2].out_channels == 96 and net.decoder[4].kernel_size == (6, 6, 6)
    assert set(LOSSES) == {"proj", "comb", "vol"}


def test_projection_loss_alone_recovers_3d():
    """PTN-Proj never sees a volume, yet after 60 steps on the 8 silhouettes of 4 shapes its
    grids overlap the true volumes far more than at the start (IoU 0.54-0.70 measured, from 0:
    the grid starts sparse, below the 0.5 threshold)."""
    shapes = primitives(2, 32, seed=0, classes=("cube", "cylinder"))
    views = render_views(shapes, views=8)
    torch.manual_seed(0)
    with torch.no_grad():
        start = occupancy_iou(PTN(0.25)(views.images[:, 3]), shapes.voxels).mean()
    model, history = train_ptn(views, "proj", width=0.25, epochs=60, lr=1e-3, batch_size=4)
    with torch.no_grad():
        iou = occupancy_iou(model(views.images[:, 3]), shapes.voxels)
    assert history.loss[-1] < 0.6 * history.loss[0]
    assert iou.min() > 0.4 and iou.mean() > start + 0.3


def test_bad_inputs_are_refused():
    shapes = primitives(1, 16, seed=0, classes=("cube",))
    with pytest.raises(ValueError, match="PTN predicts 32³ grids"):
        train_ptn(render_views(shapes, views=2), "proj")
    with pytest.raises(ValueError, match="loss must be one of"):
        train_ptn(render_views(shapes, views=2), "both")
    with pytest.raises(ValueError, match="images must be \\(B, 32, 32\\)"):
        PTN(0.25)(torch.zeros(2, 16, 16))
    with pytest.raises(ValueError, match="width must be > 0"):
        PTN(0.0)
    with pytest.raises(ValueError, match="occupancy must be in"):
        PTN(0.25, occupancy=1.0)


def test_the_grid_starts_sparse_and_volume_loss_does_not_empty_it():
    """From PyTorch's default initialisation every voxel starts near 0.5 and the squared error
    of a mostly empty grid drove all of them to 0 (CNN-Vol's IU was 0); the output bias starts
    at the log-odds of ``occupancy``, and a short CNN-Vol run keeps voxels on."""
    torch.manual_seed(0)
    x = torch.rand(4, 32, 32)
    with torch.no_grad():
        assert PTN(0.25)(x).mean() == pytest.approx(0.05, abs=0.02)
        assert PTN(0.25, occupancy=None)(x).mean() == pytest.approx(0.5, abs=0.1)
    shapes = primitives(2, 32, seed=0, classes=("cube", "cylinder"))
    views = render_views(shapes, views=4)
    model, history = train_ptn(views, "vol", width=0.25, epochs=30, lr=1e-3, batch_size=4)
    with torch.no_grad():
        iou = occupancy_iou(model(views.images[:, 0]), shapes.voxels)
    assert history.loss[-1] < 0.5 * history.loss[0] and iou.min() > 0.3
