"""pgm3d's logger: stages with their times, the command line's stderr log, and silence for a
library user who has not asked for it."""

import logging

import pytest

from pgm3d._log import log_to_stderr, logger, stage
from pgm3d.cli import main


def test_a_stage_logs_its_start_and_time_and_records_it(caplog):
    times = {}
    with caplog.at_level(logging.INFO, logger="pgm3d"), stage("fitting", times):
        pass
    assert caplog.records[0].getMessage() == "fitting ..."
    assert caplog.records[1].getMessage().startswith("fitting: done in ")
    assert set(times) == {"fitting"} and times["fitting"] >= 0


def test_a_failed_stage_says_it_stopped_and_records_nothing(caplog):
    times = {}
    with caplog.at_level(logging.INFO, logger="pgm3d"), pytest.raises(KeyError):
        with stage("loading", times):
            raise KeyError("x")
    assert "loading: stopped after" in caplog.text and times == {}


def test_the_library_is_silent_until_configured(capsys):
    with stage("quiet work"):
        pass
    assert capsys.readouterr().err == ""
    with log_to_stderr(), stage("loud work"):
        pass
    err = capsys.readouterr().err
    assert err.startswith("pgm3d ") and "loud work: done in" in err
    assert [type(h) for h in logger.handlers] == [logging.NullHandler]  # removed again


def test_the_command_logs_its_stages_to_stderr_unless_quiet(tmp_path, capsys):
    argv = ["fit", "--model", "vae", "--data", "digits", "--latent-dim", "2", "--hidden", "8"]
    argv += ["--epochs", "1", "--iwae-samples", "5", "--ll-rows", "5"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    for line in ("building the model", "training vae (1 epochs): done in", "pgm3d fit: done in"):
        assert line in err
    assert main([*argv, "--quiet", "--out", str(tmp_path / "b")]) == 0
    assert "done in" not in capsys.readouterr().err
