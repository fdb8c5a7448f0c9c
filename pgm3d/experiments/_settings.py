"""Settings of experiments and workflows: defaults overridden by what the caller gave."""

from __future__ import annotations

__all__ = ["merge_settings"]


def merge_settings(defaults: dict, overrides: dict) -> dict:
    """``defaults`` updated with ``overrides`` (a None value keeps the default).

    :raises ValueError: an override that is not a setting, naming the valid ones.
    """
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; valid: {sorted(defaults)}")
    return {**defaults, **{k: v for k, v in overrides.items() if v is not None}}
