"""Typed settings: one dataclass per command and experiment, each default written once with its
help text, every value checked when the object is made.

A command's settings are a subclass of :class:`Settings` whose fields are made by
:func:`option`::

    @dataclass
    class FitSettings(Settings):
        epochs: int = option(50, "passes over the training rows")
        model: str | None = option(None, "registry name", choices=MODELS.names)

The ``pgm3d`` command builds its options from those fields (:mod:`pgm3d.cli.generate`): the
flag ``--epochs``, its type, choices and ``--help`` text with the default all come from the
field, and a config file's values go through the same checks. From Python the same object is
made directly, ``FitSettings(epochs=5)``, or from a preset, ``ShapesSettings.quick(epochs=2)``.

Numbers are checked against one table, :data:`SETTINGS`, keyed by name, so ``epochs`` means
"at least one" wherever it appears; a choice is checked against its list (a callable, such as a
registry, is read when checked, so registering a model adds it to the choices).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from pgm3d._validation import check_device, check_float, check_int, check_seed
from pgm3d.registry import Registry, did_you_mean

__all__ = [
    "SETTINGS",
    "Setting",
    "Settings",
    "check_run",
    "check_setting",
    "option",
]


@dataclass(frozen=True)
class Setting:
    """What one numeric setting may hold: an int or a finite float in a range."""

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

#: every numeric setting of the commands and experiments, by name
SETTINGS: dict[str, Setting] = {
    **dict.fromkeys(
        (
            "epochs batch_size n_train n_test points_per_part resolution latent_dim hidden "
            "part_dim num_particles iwae_samples ll_rows checkpoint_every rows chains thin "
            "num_samples num_proposals figure_rows num steps repeats masks_per_row "
            "completion_shapes n_per_class cnn_epochs max_sprites n_count num_objects "
            "object_dim width channels vae_epochs gap_samples gap_rows completion_rows "
            "latent_dims embed_epochs fa_part_dim ll_shapes normal_shapes samples kl_map_scenes "
            "devices ridge_features"
        ).split(),
        _COUNT,
    ),
    **dict.fromkeys(("kl_warmup", "warmup", "plus_masks", "sbc"), _STEPS),
    **dict.fromkeys(("lr", "lr_g", "lr_d", "natural_lr", "gan_width"), _RATE),
    **dict.fromkeys(("kl_weight", "kl_beta"), _WEIGHT),
    **dict.fromkeys(("test_fraction", "p_missing"), _FRACTION),
    "lr_decay": Setting(float, 0.0, 1.0, low_open=True),
    "explained_variance": _FRACTION,
}


def check_setting(name: str, value):
    """``value`` checked against :data:`SETTINGS` (elements of a list one by one); names not in
    the table pass unchanged.

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


def option(
    default: Any,
    help: str,
    *,
    kind: type | None = None,
    choices: Sequence[str] | Callable[[], Sequence[str]] | Registry | None = None,
    many: bool = False,
    shown: str | None = None,
    short: str | None = None,
    required: bool = False,
) -> Any:
    """A field of a :class:`Settings` dataclass.

    :param default: the value when none is given (the one place it is written).
    :param str help: what the setting does, for ``--help`` and the docs (the default is added).
    :param type kind: ``int``, ``float``, ``str``, ``bool`` or ``Path``; by default the type of
        ``default`` (give it when the default is None).
    :param choices: the values allowed, a callable returning them, or a :class:`Registry`
        (its names, read when a value is checked: a model registered later is a choice).
    :param bool many: a tuple of ``kind`` (``--latent-dims 8 64``).
    :param str shown: how ``--help`` shows the default, when ``repr`` would not say it (None
        meaning "the model's own", say).
    :param str short: a one-letter flag besides the long one (``-n``).
    :param bool required: the command line must give it (a path with no sensible default).
    """
    if kind is None:
        sample = default[0] if many and default else default
        if sample is None:
            raise TypeError(f"option({default!r}, {help!r}): give kind= when the default is None")
        kind = type(sample)
    meta = {
        "help": help,
        "kind": kind,
        "choices": choices,
        "many": many,
        "shown": shown,
        "short": short,
        "required": required,
    }
    return field(default=default, metadata=meta)


def choices_of(f: dataclasses.Field) -> list[str] | None:
    """The fixed choices of a settings field, or None (no choices, or a registry's names,
    which are checked by looking them up so the registry's message lists them)."""
    c = f.metadata.get("choices")
    if c is None or isinstance(c, Registry):
        return None
    return list(c() if callable(c) else c)


def _check_one(f: dataclasses.Field, value):
    kind, name = f.metadata["kind"], f.name
    registry = f.metadata.get("choices")
    if isinstance(registry, Registry):
        registry[value]  # "unknown model 'vea' (did you mean 'vae'?); choose one of: ..."
        return value
    choices = choices_of(f)
    if choices is not None:
        if value not in choices:
            raise ValueError(
                f"{name} must be one of: {', '.join(map(str, choices))}; got {value!r}"
                + did_you_mean(value, map(str, choices))
            )
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be true or false, got {value!r}")
        return value
    if kind is Path:
        if not isinstance(value, str | Path):
            raise TypeError(f"{name} must be a path, got {type(value).__name__}")
        return Path(value)
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
        return value
    if name in SETTINGS:
        return check_setting(name, value)
    if kind is int:
        return check_int(value, name, low=None)
    return check_float(value, name)


def check_field(f: dataclasses.Field, value):
    """``value`` for the settings field ``f``, checked (a list becomes a tuple)."""
    if value is None:
        return None
    if f.metadata.get("many"):
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            value = (value,)
        if not value:
            raise ValueError(f"{f.name} needs at least one value")
        return tuple(_check_one(f, v) for v in value)
    return _check_one(f, value)


@dataclass
class Settings:
    """The base of every command's and experiment's settings.

    Subclasses are dataclasses of :func:`option` fields; making one checks every field, so a
    settings object that exists holds valid values. :attr:`QUICK` holds the overrides of the
    quick preset (a smoke test of about a minute), where a command has one.
    """

    #: overrides of the defaults for :meth:`quick`
    QUICK: ClassVar[dict] = {}

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("required"):
                raise ValueError(f"{type(self).__name__} needs {f.name}: {f.metadata['help']}")
            setattr(self, f.name, check_field(f, value))

    @classmethod
    def _known(cls, given) -> None:
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            hint = did_you_mean(unknown[0], names)
            raise ValueError(
                f"unknown settings {unknown}{hint} for {cls.__name__}; valid: {sorted(names)}"
            )

    @classmethod
    def full(cls, **overrides):
        """The defaults (the papers' settings, for an experiment), with ``overrides``; a None
        override keeps the default.

        :raises ValueError: a name that is not a setting (with the closest one), or a bad value.
        :raises TypeError: a value of the wrong type.
        """
        cls._known(overrides)
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def quick(cls, **overrides):
        """The quick preset (:attr:`QUICK`) with ``overrides`` (see :meth:`full`)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls.full(**{**cls.QUICK, **given})

    @classmethod
    def preset(cls, quick: bool = False, **overrides):
        """:meth:`quick` or :meth:`full`."""
        return cls.quick(**overrides) if quick else cls.full(**overrides)

    def replace(self, **changes):
        """A copy with ``changes`` (None included: it is a value here), checked as
        :meth:`full` checks them."""
        self._known(changes)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """The settings as a plain dict (field order)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
