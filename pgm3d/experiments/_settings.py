"""Settings of experiments and workflows: defaults overridden by what the caller gave, every
value checked (type, range, finiteness) against one table that the command line shares.

One table, :data:`SETTINGS`, says what each named setting may hold; :func:`merge_settings`
checks a workflow's or experiment's overrides against it, and the ``pgm3d`` command makes the
same checks the types of its options, so a bad value is refused with its name the same way
from the API, the command line and a config file — before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgm3d._validation import check_device, check_float, check_int, check_seed

__all__ = ["SETTINGS", "Setting", "check_run", "check_setting", "merge_settings"]


@dataclass(frozen=True)
class Setting:
    """What one setting may hold: an int or a finite float in a range."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, name: str, value):
        if self.kind is int:
            return check_int(value, name, low=self.low, high=self.high)
        return check_float(
            value,
            name,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            high_open=self.high_open,
        )


_COUNT = Setting(int, 1)  # sizes, counts, epochs: at least one
_STEPS = Setting(int, 0)  # warm-ups, optional extras: zero allowed
_RATE = Setting(float, 0.0, low_open=True)  # learning rates, widths: positive
_WEIGHT = Setting(float, 0.0)  # KL weights: zero allowed
_FRACTION = Setting(float, 0.0, 1.0, low_open=True, high_open=True)

#: every numeric setting of the workflows and experiments, by name
SETTINGS: dict[str, Setting] = {
    **dict.fromkeys(
        (
            "epochs batch_size n_train n_test points_per_part resolution latent_dim hidden "
            "part_dim num_particles iwae_samples ll_rows checkpoint_every rows chains thin "
            "num_samples num_proposals figure_rows num steps repeats masks_per_row "
            "completion_shapes n_per_class cnn_epochs max_sprites n_count num_objects "
            "object_dim width channels vae_epochs gap_samples gap_rows completion_rows "
            "latent_dims embed_epochs fa_part_dim ll_shapes normal_shapes samples kl_map_scenes"
        ).split(),
        _COUNT,
    ),
    **dict.fromkeys(("kl_warmup", "warmup", "plus_masks"), _STEPS),
    **dict.fromkeys(("lr", "lr_g", "lr_d", "natural_lr", "gan_width"), _RATE),
    **dict.fromkeys(("kl_weight", "kl_beta"), _WEIGHT),
    **dict.fromkeys(("test_fraction", "p_missing"), _FRACTION),
    "lr_decay": Setting(float, 0.0, 1.0, low_open=True),
    "explained_variance": _FRACTION,
}


def check_setting(name: str, value):
    """``value`` checked against :data:`SETTINGS` (elements of a list one by one); names not in
    the table pass unchanged (strings, choices and paths are checked where they are used).

    :raises TypeError: a value of the wrong type (``epochs = 1.5``, ``true``).
    :raises ValueError: out of range, NaN or infinite.
    """
    spec = SETTINGS.get(name)
    if spec is None or value is None:
        return value
    if isinstance(value, list | tuple):
        return type(value)(spec.check(name, v) for v in value)
    return spec.check(name, value)


def check_run(seed, device) -> None:
    """The options every run takes: a seed every generator accepts, a device that exists."""
    check_seed(seed)
    check_device(device)


def merge_settings(defaults: dict, overrides: dict) -> dict:
    """``defaults`` updated with ``overrides`` (a None value keeps the default), each checked
    by :func:`check_setting`.

    :raises ValueError: an override that is not a setting (naming the valid ones), or a value
        out of range.
    :raises TypeError: a value of the wrong type.
    """
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; valid: {sorted(defaults)}")
    checked = {k: check_setting(k, v) for k, v in overrides.items() if v is not None}
    return {**defaults, **checked}
