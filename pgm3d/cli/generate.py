"""Command-line options generated from :class:`~pgm3d.settings.Settings` dataclasses.

Each field becomes ``--field-name``: its type, choices and ``--help`` text (with the default,
and the quick preset's value where it differs) come from the field, so a default is written
once, in the dataclass. Parsing checks numbers as the dataclass does (``--epochs 0`` is a usage
error); names looked up in a registry (``--model``, ``--methods``) are checked when the
settings are made, so the registry's message — the valid names and the closest one — is the
one a user sees.

Why a small generator on argparse rather than jsonargparse (which LightningCLI uses): pgm3d's
settings are flat dataclasses of scalars, tuples and paths, which take some 100 lines here;
argparse keeps the conventions the CLI already has (no abbreviations, "did you mean" for
options, commands and choices, one error line for bad input) and adds no dependency whose
parsing and error messages would change under us. Config files are read by
:func:`pgm3d.config.read_config` and checked by the same converters.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path

from pgm3d.registry import Registry
from pgm3d.settings import Settings, check_field, choices_of

__all__ = ["add_settings", "settings_from_args"]

_WHAT = {int: "an integer", float: "a number"}
_METAVARS = {int: "N", float: "X", Path: "PATH"}


def _shown(value) -> str:
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _help(f, cls: type[Settings]) -> str:
    """The field's help with its default (``shown`` where given) and its quick value."""
    meta = f.metadata
    default = meta["shown"]
    if default is None and meta["kind"] is not bool and f.default is not None:
        default = _shown(f.default)
    if f.name in cls.QUICK and cls.QUICK[f.name] != f.default:
        default = f"{default}; --quick {_shown(cls.QUICK[f.name])}"
    help = meta["help"]
    if isinstance(meta["choices"], Registry):
        help = f"{help}: {', '.join(meta['choices'].names())}"
    help = help.replace("%", "%%")
    return f"{help} ({default})" if default is not None else help


def _converter(f):
    """An argparse ``type``: a command-line string (or a config file's value, as it is) to
    the field's type, checked; a bad value becomes argparse's usage error."""
    kind = f.metadata["kind"]

    def convert(value):
        if isinstance(value, str) and kind in _WHAT:
            try:
                value = kind(value.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(f"must be {_WHAT[kind]}, got {value!r}") from None
        try:
            checked = check_field(f, value)
        except (TypeError, ValueError) as e:
            # argparse names the option already: "argument --epochs: must be >= 1, got 0"
            raise argparse.ArgumentTypeError(str(e).removeprefix(f"{f.name} ")) from None
        return checked[0] if f.metadata["many"] else checked

    convert.__name__ = f.name  # argparse's "invalid <name> value"
    return convert


def add_settings(parser: argparse.ArgumentParser, cls: type[Settings], title="settings"):
    """An option per field of ``cls`` on ``parser``; every default is None (the dataclass
    holds the real one), so :func:`settings_from_args` knows what the user gave."""
    group = parser.add_argument_group(title)
    for f in fields(cls):
        if f.default is MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} needs a default (use option())")
        meta = f.metadata
        flags = [f"--{f.name.replace('_', '-')}"]
        if meta.get("short"):
            flags.insert(0, f"-{meta['short']}")
        kw = {"dest": f.name, "default": None, "help": _help(f, cls)}
        if meta["kind"] is bool:
            # a setting on by default needs a way off: --name / --no-name
            kw["action"] = argparse.BooleanOptionalAction if f.default else "store_true"
        else:
            # names: a registry's checked when the settings are made (its own message), fixed
            # choices by argparse; numbers and paths checked here
            named = isinstance(meta["choices"], Registry) or choices_of(f) is not None
            # fixed numeric choices (--quadrants 1 2 3) compare as numbers, not strings
            numeric = meta["kind"] in (int, float) and not isinstance(meta["choices"], Registry)
            kw["type"] = (meta["kind"] if numeric else str) if named else _converter(f)
            kw["choices"] = choices_of(f)
            if meta["many"]:
                kw["nargs"] = "+"
            if isinstance(meta["choices"], Registry):
                kw["metavar"] = "NAME"
            elif kw["choices"] is None:
                kw["metavar"] = _METAVARS.get(meta["kind"])
        if meta.get("required"):
            kw["required"] = True
        group.add_argument(*flags, **kw)


def settings_from_args(cls: type[Settings], args: argparse.Namespace) -> Settings:
    """The settings the command line (and a config file under it) gave: the quick preset
    with ``--quick``, else the defaults, with each option that was given in their place.

    :raises ValueError: a registry name that does not exist, or another bad value.
    """
    given = {f.name: getattr(args, f.name, None) for f in fields(cls)}
    if "quick" in given:  # a command whose settings hold "quick" itself (the demo)
        return cls.full(**given)
    return cls.preset(bool(getattr(args, "quick", False)), **given)
