"""The 3D-VAE-GAN's image encoder (Wu et al. 2016, single-image reconstruction)."""

import pytest
import torch

from pgm3d.data import voxel_classes
from pgm3d.data.views import render_views
from pgm3d.evaluation import voxel_average_precision
from pgm3d.inference import fit_gan, log_likelihood
from pgm3d.models import GAN3D
from pgm3d.models.gan3d import ImageEncoder


@pytest.fixture(scope="module")
def data():
    shapes = voxel_classes(3, 32, seed=0, classes=["chair", "table"], rotate=False, progress=False)
    return shapes, render_views(shapes, views=3)


def test_the_papers_image_encoder_layers():
    enc = ImageEncoder(64, 400)
    kernels = [m.kernel_size for m in enc.net if isinstance(m, torch.nn.Conv2d)]
    strides = [m.stride for m in enc.net if isinstance(m, torch.nn.Conv2d)]
    assert kernels[:3] == [(11, 11), (5, 5), (5, 5)] and strides[:3] == [(4, 4), (2, 2), (2, 2)]
    assert enc.eval()(torch.zeros(2, 64, 64)).shape == (2, 400)


def test_fit_gan_trains_the_image_encoder_and_the_pair_takes_the_image(data):
    shapes, views = data
    x = shapes.voxels.reshape(len(shapes.voxels), -1).float()
    torch.manual_seed(0)
    gan = GAN3D(32, 8, encoder="image", width=0.125, image_size=32)
    before = [p.detach().clone() for p in gan.encoder.parameters()]
    history = fit_gan(gan, x, images=views.images, epochs=2, batch_size=3, progress=False)
    assert history.steps == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.encoder.parameters(), strict=True))
    rec = gan.reconstruct(views.images[:, 0])
    assert rec.shape == (6, 32, 32, 32) and ((rec >= 0) & (rec <= 1)).all()
    ap = voxel_average_precision(rec, shapes.voxels)
    assert ap.shape == (6,) and ((ap > 0) & (ap <= 1)).all()
    ll = log_likelihood(gan, x[:2], num_samples=3, context={"image": views.images[:2, 0]})
    assert torch.isfinite(ll).all()


def test_missing_or_misplaced_images_are_refused(data):
    shapes, views = data
    x = shapes.voxels.reshape(len(shapes.voxels), -1).float()
    with pytest.raises(ValueError, match="pass images="):
        fit_gan(GAN3D(32, 8, encoder="image", width=0.125, image_size=32), x, epochs=1)
    with pytest.raises(ValueError, match="build the GAN3D with encoder='image'"):
        fit_gan(GAN3D(32, 8, width=0.125), x, images=views.images, epochs=1)
    with pytest.raises(ValueError, match="encoder must be False, True or 'image'"):
        GAN3D(32, encoder="pixels")
    with pytest.raises(ValueError, match="image_size must be a multiple of 16"):
        ImageEncoder(24, 4)


def test_average_precision_against_a_closed_case():
    truth = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    truth[0, 0, 0, 0] = True
    perfect = truth.double() * 0.9 + 0.05
    assert voxel_average_precision(perfect, truth).item() == pytest.approx(1.0)
    worst = 1 - perfect  # the true voxel ranked last of 8: precision 1/8 at its recall
    assert voxel_average_precision(worst, truth).item() == pytest.approx(1 / 8)


def test_the_largest_connected_component_drops_floating_bits():
    from pgm3d.evaluation import largest_connected_component

    grid = torch.zeros(2, 8, 8, 8)
    grid[0, 1:4, 1:4, 1:4] = 0.9  # 27 voxels
    grid[0, 6, 6, 6] = 0.8  # a stray voxel
    grid[0, 4, 4, 4] = 0.7  # touches the block at a corner: 26-connected, kept
    kept = largest_connected_component(grid)
    assert kept[0].sum() == 28 and not kept[0, 6, 6, 6] and kept[0, 4, 4, 4]
    assert not kept[1].any()  # nothing above the threshold
