r"""Unsupervised object counting from per-object KL divergences (thesis ch. 5).

An object latent that explains part of the image moves its posterior away from the prior; an
unused one stays near it. So the number of objects in a scene is estimated as the number of
kept latents whose :math:`\operatorname{KL}(q(z_k \mid x) \,\|\, p(z_k))` exceeds a threshold
:math:`\tau`, chosen to maximise the counting accuracy on training scenes and then applied
unchanged to fresh ones.
"""

from __future__ import annotations

import torch

__all__ = ["count_accuracy", "count_confusion", "kl_count_threshold"]


def _check(kl: torch.Tensor, counts: torch.Tensor) -> None:
    if kl.dim() != 2 or counts.shape != kl.shape[:1]:
        raise ValueError(
            f"kl must be (N, K) and counts (N,), got {tuple(kl.shape)} and {tuple(counts.shape)}"
        )
    if kl.shape[0] == 0:
        raise ValueError("no scenes to count")


def kl_count_threshold(kl: torch.Tensor, counts: torch.Tensor) -> tuple[float, float]:
    """The threshold :math:`\\tau` that maximises the accuracy of
    :math:`\\hat n = \\#\\{k : \\mathrm{KL}_k > \\tau\\}` on these scenes.

    Every distinct count is reached by a threshold between two consecutive sorted KL values
    (or below the smallest), so those midpoints are the only candidates; ties go to the
    smallest such threshold.

    :param kl: ``(N, K)`` KL of each kept object latent.
    :param counts: ``(N,)`` true number of objects.
    :returns: ``(threshold, accuracy)``.
    """
    _check(kl, counts)
    values = kl.detach().flatten().double().unique()  # sorted
    low = values[:1] - 1.0
    candidates = torch.cat([low, (values[:-1] + values[1:]) / 2, values[-1:] + 1.0])
    predicted = (kl.detach().double()[:, :, None] > candidates).sum(1)  # (N, T)
    accuracy = (predicted == counts.to(predicted.device)[:, None]).double().mean(0)
    best = int(accuracy.argmax())
    return float(candidates[best]), float(accuracy[best])


def count_accuracy(kl: torch.Tensor, counts: torch.Tensor, threshold: float) -> float:
    """Share of scenes whose count ``#{k : KL_k > threshold}`` is right."""
    _check(kl, counts)
    return float(((kl > threshold).sum(-1) == counts.to(kl.device)).double().mean())


def count_confusion(
    kl: torch.Tensor, counts: torch.Tensor, threshold: float, max_count: int
) -> torch.Tensor:
    """``(max_count + 1, K + 1)`` long table: row = true count, column = estimated count."""
    _check(kl, counts)
    predicted = (kl > threshold).sum(-1).cpu()
    table = torch.zeros(max_count + 1, kl.shape[1] + 1, dtype=torch.long)
    table.index_put_((counts.cpu().long(), predicted), torch.ones_like(predicted), accumulate=True)
    return table
