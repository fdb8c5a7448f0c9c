"""Run configurations: read YAML/TOML/JSON files, write the effective config as TOML, and keep
one run per output folder.

A config file holds the options of one command by their long names (``epochs = 50`` or
``batch-size = 64``), either at the top level or in a table named after the command
(``[fit]``, ``[experiment.shapes]``), which wins over the top level.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pgm3d._io import atomic_write, atomic_write_text

__all__ = [
    "CONFIG_FILE",
    "RunFolderError",
    "claim_run_folder",
    "read_config",
    "run_config",
    "run_folder",
    "write_config",
]

CONFIG_FILE = "config.toml"
#: options that change how a run is shown or started, not what it computes
VOLATILE = frozenset({"quiet", "overwrite", "resume", "config", "progress", "trust_file"})


class RunFolderError(ValueError):
    """The output folder holds another run (or files that are not a pgm3d run)."""


def read_config(path: str | Path, section: str | None = None) -> dict:
    """Read a ``.toml``, ``.yaml``/``.yml`` or ``.json`` config file.

    :param section: a dotted table name (``"experiment.shapes"``) whose entries override the
        top-level ones; other tables are ignored.
    :returns: a flat dict with ``-`` in names turned into ``_``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as e:
                raise ImportError("YAML configs need PyYAML: pip install pyyaml") from e
            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ValueError("use a .toml, .yaml, .yml or .json file")
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"cannot read config {path}: {e}") from None
    except Exception as e:  # yaml's own errors, without importing yaml at module level
        raise ValueError(f"cannot read config {path}: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config {path} must be a table of options, got {type(data).__name__}")
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    table = data
    for key in (section or "").split(".") if section else []:
        table = table.get(key, {}) if isinstance(table, dict) else {}
    if table is not data and isinstance(table, dict):
        flat.update({k: v for k, v in table.items() if not isinstance(v, dict)})
    return {k.replace("-", "_"): v for k, v in flat.items()}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def run_config(command: str, settings, **common) -> dict:
    """The configuration a run records, in ``config.toml`` and in its model file and
    checkpoints: the command, the common options (``out``, ``seed``, ``device`` ...) and every
    setting of its :class:`~pgm3d.settings.Settings`."""
    return {"command": command, **common, **settings.as_dict()}


def write_config(path: str | Path, config: dict, comment: str | None = None) -> Path:
    """Write a flat config as TOML (None values are left out: TOML has no null)."""
    lines = [f"# {line}" for line in (comment or "").splitlines()]
    lines += [f"{k} = {_toml_value(v)}" for k, v in config.items() if v is not None]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def plain(config: dict) -> dict:
    """The config as TOML will read it back: no None, tuples as lists, paths as strings."""
    out = {}
    for k, v in config.items():
        if v is None:
            continue
        if isinstance(v, tuple):
            v = list(v)
        elif not isinstance(v, (bool, int, float, str, list)):
            v = str(v)
        out[k] = v
    return out


def claim_run_folder(
    out: str | Path,
    config: dict,
    *,
    overwrite: bool = False,
    resume: bool = False,
    checkpoint: str | None = None,
) -> Path:
    """Make ``out`` the folder of the run ``config`` and save the config there.

    A folder that is empty or holds the same run (same config, up to :data:`VOLATILE` options;
    on ``resume`` also up to ``epochs``, which may grow) is used as it is — unless it holds
    the run's ``checkpoint``: training again from the start would overwrite it, so that takes
    ``resume`` (continue) or ``overwrite`` (discard it: the only way to).

    :raises RunFolderError: ``out`` holds a different run or files that are not a pgm3d run
        (unless ``overwrite``), a checkpoint (unless ``resume`` or ``overwrite``), or
        ``resume`` finds no run to resume. Nothing is written then.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    saved = out / CONFIG_FILE
    new = plain(config)
    # "out" too: a run folder that was moved or copied is still the same run
    ignore = VOLATILE | {"out"} | ({"epochs"} if resume else set())
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        if not saved.is_file():
            raise RunFolderError(
                f"{out} is not empty and holds no pgm3d run ({CONFIG_FILE}); choose another "
                "--out or pass --overwrite"
            )
        old = read_config(saved)
        keys = (set(old) | set(new)) - ignore
        differ = sorted(k for k in keys if old.get(k) != new.get(k))
        if differ:
            detail = "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in differ)
            raise RunFolderError(
                f"{out} holds a different run ({detail}); choose another --out or pass --overwrite"
            )
        if checkpoint is not None and not resume and (out / checkpoint).is_file():
            raise RunFolderError(_checkpoint_refusal(out, checkpoint))
    elif resume and not saved.is_file():
        raise RunFolderError(f"nothing to resume in {out}: it holds no {CONFIG_FILE}")
    if overwrite and checkpoint is not None and not resume:
        from pgm3d.saving import MODEL_FILE

        for name in (checkpoint, MODEL_FILE):  # the old run's, discarded as --overwrite asked
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    stored = {k: v for k, v in new.items() if k not in VOLATILE}
    write_config(saved, stored, "the effective configuration of this run (pgm3d ... --config it)")
    return out


def _checkpoint_refusal(out: Path, checkpoint: str) -> str:
    from pgm3d.saving import MODEL_FILE

    if (out / MODEL_FILE).is_file():
        return (
            f"{out} holds this run, finished ({MODEL_FILE}, {checkpoint}); training it again "
            "from the start would overwrite both: to train it longer, pass --resume with more "
            "--epochs; to start over, pass --overwrite"
        )
    return (
        f"{out} holds an unfinished run ({checkpoint}, no {MODEL_FILE}); starting again would "
        "overwrite its checkpoint: continue it with --resume, or discard it with --overwrite"
    )


@contextmanager
def run_folder(out: str | Path, config: dict, **claim) -> Iterator[Path]:
    """:func:`claim_run_folder` for the length of a run that may be refused: if the run fails
    before writing anything but the config, the config (and the folder, if the claim made it)
    is removed again, so a refused run leaves no trace and the corrected command is accepted;
    in a folder that held a run, a failed run puts that run's config back.

    :param claim: ``overwrite``, ``resume``, ``checkpoint`` (see :func:`claim_run_folder`).
    """
    out = Path(out)
    existed = out.is_dir()
    fresh = not existed or not any(out.iterdir())
    saved = out / CONFIG_FILE
    old = saved.read_bytes() if saved.is_file() else None
    out = claim_run_folder(out, config, **claim)
    try:
        yield out
    except BaseException:
        if fresh and {p.name for p in out.iterdir()} <= {CONFIG_FILE}:
            saved.unlink(missing_ok=True)
            if not existed:
                out.rmdir()
        elif old is not None and saved.read_bytes() != old:
            atomic_write(saved, lambda f: f.write(old))  # the run it describes is still there
        raise
