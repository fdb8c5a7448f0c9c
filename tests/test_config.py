"""Config files and run folders."""

import math

import pytest

from pgm3d.config import RunFolderError, claim_run_folder, read_config, write_config


def test_toml_round_trip_of_every_value_type(tmp_path):
    config = {
        "command": "fit",
        "name": 'a "quoted" path\\x',
        "n": 3,
        "lr": 1e-05,
        "big": float("inf"),
        "flag": True,
        "dims": [8, 64],
        "none": None,
    }
    path = write_config(tmp_path / "c.toml", config, comment="two\nlines")
    back = read_config(path)
    assert back == {k: v for k, v in config.items() if v is not None}
    assert path.read_text().startswith("# two\n# lines\n")
    write_config(tmp_path / "nan.toml", {"x": float("nan")})
    assert math.isnan(read_config(tmp_path / "nan.toml")["x"])


def test_a_command_table_overrides_the_top_level_and_dashes_become_underscores(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        "epochs = 5\nbatch-size = 10\n[fit]\nepochs = 7\n[experiment.shapes]\nlr = 0.1\n"
    )
    assert read_config(path, "fit") == {"epochs": 7, "batch_size": 10}
    assert read_config(path, "experiment.shapes") == {"epochs": 5, "batch_size": 10, "lr": 0.1}
    assert read_config(path) == {"epochs": 5, "batch_size": 10}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("c.toml", "epochs = = 3", "cannot read config"),
        ("c.yaml", "epochs: [1, 2", "cannot read config"),
        ("c.json", "[1, 2]", "must be a table of options"),
        ("c.ini", "epochs=3", "use a .toml, .yaml, .yml or .json file"),
    ],
)
def test_unreadable_configs_are_refused(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        read_config(tmp_path / name)


def test_run_folders_keep_one_run(tmp_path):
    out = tmp_path / "run"
    config = {"command": "fit", "epochs": 3, "quiet": True}
    claim_run_folder(out, config)
    assert "quiet" not in (out / "config.toml").read_text()  # how it is shown is not the run
    claim_run_folder(out, {**config, "quiet": False})  # the same run
    with pytest.raises(RunFolderError, match="epochs: 3 there, 4 now"):
        claim_run_folder(out, {**config, "epochs": 4})
    claim_run_folder(out, {**config, "epochs": 4}, resume=True)  # resuming may extend
    assert read_config(out / "config.toml")["epochs"] == 4
    claim_run_folder(out, {**config, "epochs": 9, "lr": 1.0}, overwrite=True)
    with pytest.raises(RunFolderError, match="nothing to resume"):
        claim_run_folder(tmp_path / "empty", config, resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        claim_run_folder(tmp_path / "file", config)
