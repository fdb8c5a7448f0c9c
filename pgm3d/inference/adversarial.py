"""``fit_gan``: adversarial training of :class:`~pgm3d.models.GAN3D` (Wu et al. 2016)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyro
import torch
from torch.nn import functional as F

from pgm3d._progress import progress_bar
from pgm3d._validation import as_data, check_device

__all__ = ["GANHistory", "d_should_update", "fit_gan"]


@dataclass
class GANHistory:
    """Per epoch means of what :func:`fit_gan` did.

    :ivar d_loss: discriminator loss (over the steps that updated D; NaN if none did).
    :ivar g_loss: generator loss (adversarial, plus the VAE-GAN's weighted KL and
        reconstruction terms).
    :ivar d_accuracy: the discriminator's accuracy on real and generated grids, before its step.
    :ivar d_updates: share of steps in which D was updated.
    """

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    d_accuracy: list[float] = field(default_factory=list)
    d_updates: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def d_should_update(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, threshold: float = 0.8
) -> tuple[bool, float]:
    """Wu et al.'s rule: update the discriminator only while its accuracy on the current batch
    (real grids called real, generated ones called fake, each half weighted equally) is below
    ``threshold``, so it does not overpower the generator early on.

    :returns: ``(update, accuracy)``.
    """
    accuracy = 0.5 * (
        (real_logits > 0).float().mean().item() + (fake_logits < 0).float().mean().item()
    )
    return accuracy < threshold, accuracy


def fit_gan(
    gan,
    data,
    *,
    epochs: int = 10,
    batch_size: int = 100,
    lr_g: float = 0.0025,
    lr_d: float = 1e-5,
    lr_e: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    d_threshold: float = 0.8,
    kl_weight: float = 5.0,
    recon_weight: float = 1e-4,
    seed: int = 0,
    device=None,
    progress: bool | None = None,
    callbacks=(),
    images=None,
) -> GANHistory:
    """Train a 3D-GAN (or, with an encoder, a 3D-VAE-GAN) with the paper's settings.

    Each step draws ``z ~ N(0, I)`` for a batch, updates D on real vs generated grids with the
    binary cross-entropy when :func:`d_should_update` allows, then updates G (and the encoder)
    to make D call its grids real; the VAE-GAN adds ``kl_weight`` times the KL of
    ``q(z | x)`` to the prior and ``recon_weight`` times the squared error of ``G(E(x))``
    (alpha_1 = 5, alpha_2 = 1e-4 in the paper). Leaves the model in eval mode.

    :param float lr_e: the VAE-GAN encoder's learning rate (at G's 0.0025 its KL diverged in
        our runs).
    :param gan: a :class:`~pgm3d.models.GAN3D`.
    :param data: ``(N, R³)`` rows of 0/1 (``VSL.rows(voxels)``).
    :param callbacks: called as ``cb(epoch, history)``; returning True stops.
    :param images: for a GAN with an image encoder (``encoder="image"``): ``(N, S, S)`` one
        image per shape, or ``(N, V, S, S)`` views of each (a random view per shape and step).
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not 0 < d_threshold <= 1:
        raise ValueError(f"d_threshold must be in (0, 1], got {d_threshold}")
    if device is not None:
        gan.to(check_device(device))
    ref = next(gan.parameters())
    x = as_data(data, "data", device=ref.device).to(ref.dtype)
    if x.shape[-1] != gan.data_dim:
        raise ValueError(f"data rows have {x.shape[-1]} voxels, the model {gan.data_dim}")
    image_encoder = getattr(gan, "image_encoder", False)
    if image_encoder:
        if images is None:
            raise ValueError("this GAN3D encodes images: pass images= (one or more per shape)")
        images = torch.as_tensor(images).to(ref)
        if images.dim() == 3:
            images = images.unsqueeze(1)
        if images.dim() != 4 or images.shape[0] != x.shape[0]:
            raise ValueError(f"images must be ({x.shape[0]}, [V,] S, S), got {tuple(images.shape)}")
    elif images is not None:
        raise ValueError("images= trains an image encoder: build the GAN3D with encoder='image'")
    groups = [{"params": list(gan.generator.parameters()), "lr": lr_g}]
    if gan.encoder is not None:
        groups.append({"params": list(gan.encoder.parameters()), "lr": lr_e})
    opt_g = torch.optim.Adam(groups, betas=betas)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr_d, betas=betas)
    pyro.set_rng_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    N, B = x.shape[0], min(batch_size, x.shape[0])
    history = GANHistory()
    start = time.perf_counter()
    gan.train()
    for epoch in progress_bar(range(epochs), desc="fit_gan", progress=progress):
        sums = {"d_loss": [], "g_loss": [], "d_accuracy": [], "d_updates": []}
        for rows in torch.randperm(N, generator=shuffle).to(x.device).split(B):
            real = gan.grid(x[rows])
            z = torch.randn(len(rows), gan.latent_dim, dtype=x.dtype, device=x.device)
            fake = gan.generator(z)
            real_logits = gan.discriminator(real)
            fake_logits = gan.discriminator(fake.detach())
            update, accuracy = d_should_update(real_logits, fake_logits, d_threshold)
            if update:
                d_loss = F.binary_cross_entropy_with_logits(
                    real_logits, torch.ones_like(real_logits)
                ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
                sums["d_loss"].append(d_loss.item())
            logits = gan.discriminator(fake)
            g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            if gan.encoder is not None:
                if image_encoder:
                    view = torch.randint(images.shape[1], (len(rows),), generator=shuffle)
                    loc, scale = gan.encode(None, image=images[rows.cpu(), view])
                else:
                    loc, scale = gan.encode(x[rows])
                z_enc = loc + scale * torch.randn_like(loc)
                kl = 0.5 * (loc.pow(2) + scale.pow(2) - 1 - 2 * scale.log()).sum(-1).mean()
                recon = (gan.generator(z_enc) - real).pow(2).flatten(1).sum(-1).mean()
                g_loss = g_loss + kl_weight * kl + recon_weight * recon
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            history.steps += 1
            sums["g_loss"].append(g_loss.item())
            sums["d_accuracy"].append(accuracy)
            sums["d_updates"].append(float(update))
        for key, values in sums.items():
            mean = sum(values) / len(values) if values else float("nan")
            getattr(history, key).append(mean)
        if any(cb(epoch, history) for cb in callbacks):
            break
    history.seconds = time.perf_counter() - start
    gan.eval()
    return history
