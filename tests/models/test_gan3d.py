"""3D-GAN / 3D-VAE-GAN: shapes, the paper's architecture, the D-update rule, the Pyro model."""

import pyro.poutine as poutine
import pytest
import torch

from pgm3d.data import voxel_classes
from pgm3d.inference import complete, d_should_update, fit_gan
from pgm3d.models import GAN3D, MODELS, VSL


def _unchanged(before, module) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


@pytest.fixture(scope="module")
def grids():
    return VSL.rows(voxel_classes(2, resolution=32, seed=0).voxels)  # (20, 32768)


def test_shapes_at_both_resolutions():
    for R, n_hidden in ((32, 3), (64, 4)):
        gan = GAN3D(R, latent_dim=8, width=1 / 16).eval()
        z = torch.randn(3, 8)
        assert gan.decode(z).shape == (3, R**3)
        assert gan.decode(torch.randn(2, 3, 8)).shape == (2, 3, R**3)
        x = (torch.rand(3, R**3) < 0.2).float()
        assert len(gan.discriminator.hidden(gan.grid(x))) == n_hidden
        assert gan.discriminator(gan.grid(x)).shape == (3, 1)
        assert gan.features(x).shape[0] == 3 and gan.sample(2).shape == (2, R, R, R)
    assert MODELS["gan"] is GAN3D


def test_samples_are_probabilities_or_bernoulli_draws_of_them():
    gan = GAN3D(32, width=1 / 16)
    probs = gan.sample(3, generator=torch.Generator().manual_seed(0), mean=True)
    draws = gan.sample(3, generator=torch.Generator().manual_seed(0), mean=False)
    assert ((probs > 0) & (probs < 1)).all() and set(draws.unique().tolist()) <= {0.0, 1.0}
    # the same z: the draws' occupancy rate follows the probabilities
    assert abs(draws.mean() - probs.mean()) < 0.01


def test_the_papers_generator_and_discriminator():
    gan = GAN3D()  # 64^3, 200-d z, full width
    convs = [m for m in gan.generator.net if isinstance(m, torch.nn.ConvTranspose3d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 1]
    assert all(c.kernel_size == (4, 4, 4) for c in convs)
    assert [c.stride[0] for c in convs] == [1, 2, 2, 2, 2]
    assert convs[0].in_channels == 200
    d = [b[0] for b in gan.discriminator.blocks]
    assert [c.out_channels for c in d] == [64, 128, 256, 512]
    assert all(isinstance(b[-1], torch.nn.LeakyReLU) for b in gan.discriminator.blocks)
    # features: layers 2-4, max-pooled to 2^3: (128 + 256 + 512) * 8
    assert gan.features(torch.zeros(1, 64**3)).shape == (1, 7168)


def test_the_discriminator_is_updated_only_below_80_percent_accuracy():
    real, fake = torch.tensor([2.0, 1.0, 3.0, -1.0]), torch.tensor([-2.0, -1.0, -3.0, 1.0])
    update, accuracy = d_should_update(real, fake)  # 3/4 right on each side
    assert accuracy == 0.75 and update
    update, accuracy = d_should_update(real.abs(), -fake.abs())  # all right
    assert accuracy == 1.0 and not update
    assert d_should_update(real, fake, threshold=0.7) == (False, 0.75)


def test_fit_gan_skips_discriminator_steps_when_it_is_accurate(grids):
    torch.manual_seed(0)
    gan = GAN3D(32, latent_dim=8, width=1 / 16)
    before = [p.detach().clone() for p in gan.discriminator.parameters()]
    g_before = [p.detach().clone() for p in gan.generator.parameters()]
    history = fit_gan(gan, grids, epochs=1, batch_size=10, d_threshold=1e-9, progress=False)
    assert history.d_updates == [0.0] and history.steps == 2
    assert _unchanged(before, gan.discriminator)
    assert not _unchanged(g_before, gan.generator)
    history = fit_gan(gan, grids, epochs=1, batch_size=10, d_threshold=1.0, progress=False)
    assert history.d_updates == [1.0]  # accuracy < 100% on this batch: D learns
    assert not _unchanged(before, gan.discriminator)
    assert not gan.training  # left in eval mode for sampling and features


def test_vae_gan_adds_an_encoder_and_its_terms(grids):
    torch.manual_seed(0)
    gan = GAN3D(32, latent_dim=8, encoder=True, width=1 / 16)
    loc, scale = gan.encode(grids[:3])
    assert loc.shape == scale.shape == (3, 8) and (scale > 0).all()
    history = fit_gan(gan, grids, epochs=2, batch_size=10, progress=False)
    assert len(history.g_loss) == 2 and all(torch.isfinite(torch.tensor(history.g_loss)))
    with pytest.raises(ValueError, match="no encoder"):
        GAN3D(32, latent_dim=8, width=1 / 16).encode(grids[:1])


def test_the_generator_as_a_pyro_model_masks_missing_voxels_and_completes(grids):
    torch.manual_seed(0)
    gan = GAN3D(32, latent_dim=8, width=1 / 16).eval()
    x, mask = grids[:2], torch.rand(2, 32**3) < 0.5
    guide = poutine.trace(gan.guide).get_trace(x, mask)

    def log_px(data):
        tr = poutine.trace(poutine.replay(gan.model, trace=guide)).get_trace(data, mask)
        tr.compute_log_prob()
        return tr.nodes["x"]["log_prob"]

    torch.testing.assert_close(log_px(torch.where(mask, x, torch.nan)), log_px(x))
    assert torch.isfinite(log_px(x)).all()
    done = complete(gan, x, mask, "importance", num_proposals=20, num_samples=4, chains=2)
    assert torch.equal(done.x[mask], x[mask])


def test_bad_input(grids):
    with pytest.raises(ValueError, match="resolution must be 64 or 32"):
        GAN3D(30)
    with pytest.raises(ValueError, match="width must be positive"):
        GAN3D(32, width=0)
    with pytest.raises(ValueError, match="data rows have 32768 voxels, the model 262144"):
        fit_gan(GAN3D(64, latent_dim=2, width=1 / 64), grids)
    with pytest.raises(ValueError, match="d_threshold"):
        fit_gan(GAN3D(32, latent_dim=2, width=1 / 16), grids, d_threshold=0)
