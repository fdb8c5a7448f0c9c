"""The ``pgm3d`` command: every subcommand, configs, run folders, bad input, kill and resume."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import pgm3d
from pgm3d.cli import build_parser, main
from pgm3d.saving import read_checkpoint

COMMANDS = ["demo", "fit", "complete", "evaluate", "sample", "bench", "report", "experiment"]
EXPERIMENT_NAMES = ("missing-fa", "shapes", "classify", "mvae", "autoguides")
SMALL_VAE = ["--model", "vae", "--data", "digits", "--latent-dim", "2", "--hidden", "16"]


def run(*parts) -> int:
    """``main`` on a command line: strings are split at spaces, paths are kept whole."""
    argv = []
    for part in parts:
        argv += part.split() if isinstance(part, str) else [str(part)]
    return main(argv)


@pytest.mark.parametrize(
    "command",
    [[], *([c] for c in COMMANDS), *(["experiment", e] for e in EXPERIMENT_NAMES)],
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    assert "usage: pgm3d" in capsys.readouterr().out


def test_the_parser_names_the_commands_of_the_issue():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A small VAE fitted to digits (3 epochs), shared by the commands that read a run."""
    out = tmp_path_factory.mktemp("fit")
    assert run("fit", *SMALL_VAE, "--epochs 3 --iwae-samples 20 --quiet --out", out) == 0
    return out


def test_fit_writes_the_model_checkpoint_config_log_and_metrics(vae_run):
    names = {p.name for p in vae_run.iterdir()}
    assert {"model.pt", "checkpoint.pt", "config.toml", "metrics.json", "table.md"} <= names
    assert {"train_log.csv", "training_curve.png"} <= names
    metrics = json.loads((vae_run / "metrics.json").read_text())
    assert metrics["objective"] == "elbo" and metrics["steps"] == 3 * 15
    assert metrics["log_likelihood"] == "IWAE bound, K=20"
    assert len((vae_run / "train_log.csv").read_text().splitlines()) == 4
    model = pgm3d.load(vae_run)
    assert isinstance(model, pgm3d.models.VAE) and model.latent_dim == 2
    config = (vae_run / "config.toml").read_text()
    assert 'command = "fit"' in config and 'model = "vae"' in config and "quiet" not in config


def test_a_closed_form_model_is_fitted_without_an_objective(tmp_path, capsys):
    assert run("fit --model ppca --data digits --latent-dim 5 --out", tmp_path / "a") == 0
    assert "test log likelihood nats per dim" in capsys.readouterr().out
    assert isinstance(pgm3d.load(tmp_path / "a"), pgm3d.PPCA)
    assert run("fit --model ppca --data digits --objective iwae --out", tmp_path / "b") == 2
    assert "--objective applies to the models trained by SGD" in capsys.readouterr().err


def test_complete_evaluate_and_sample_read_a_fitted_run(vae_run, tmp_path):
    common = ["--run", vae_run, "--rows 10 --quiet"]
    samplers = "--chains 2 --warmup 4 --thin 1 --num-samples 4"
    assert run("complete", *common, samplers, "--out", tmp_path / "c") == 0
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert set(metrics["completion_mse"]) == {"pseudo_gibbs", "mwg", "importance"}
    assert metrics["hidden_entries"] > 0 and metrics["data"] == "digits"  # from the run
    assert (tmp_path / "c" / "completion.png").stat().st_size > 0
    methods = "--methods mwg importance --iwae-samples 10 --out"
    assert run("evaluate", *common, samplers, methods, tmp_path / "e") == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert set(metrics["posteriors"]) == {"mwg", "importance"}
    assert "max_rhat" in metrics["posteriors"]["mwg"]
    assert (tmp_path / "e" / "trace_rank_mwg.png").stat().st_size > 0  # a sampler with chains
    assert "Reading the table:" in (tmp_path / "e" / "table.md").read_text()
    assert run("sample --run", vae_run / "model.pt", "-n 5 --quiet --out", tmp_path / "s") == 0
    assert (tmp_path / "s" / "samples.png").is_file()


def test_fit_on_incomplete_training_data_the_miwae_setting(tmp_path, capsys):
    small = [*SMALL_VAE, "--epochs 2 --iwae-samples 10 --ll-rows 10 --quiet"]
    miwae = "--objective iwae --num-particles 3 --train-missing 0.5 --out"
    assert run("fit", *small, miwae, tmp_path / "m") == 0
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["training_entries_hidden"] == "50% at random (MCAR)"
    assert metrics["objective"] == "iwae" and metrics["steps"] > 0
    assert run("fit", *small, "--train-missing 1.0 --out", tmp_path / "bad") == 2
    assert "--train-missing must be in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    shapes = "fit --data chairs --n-train 20 --n-test 5 --epochs 1 --train-missing 0.3 --out"
    assert run(shapes, tmp_path / "s") == 2
    assert (
        "--train-missing hides entries of rows of numbers; chairs holds" in capsys.readouterr().err
    )


def test_fit_with_an_autoguide_in_place_of_the_models_guide(tmp_path, capsys):
    small = [*SMALL_VAE, "--epochs 2 --iwae-samples 10 --ll-rows 10 --quiet"]
    assert run("fit", *small, "--guide auto-full --out", tmp_path / "f") == 0
    metrics = json.loads((tmp_path / "f" / "metrics.json").read_text())
    assert metrics["guide"] == "autoguide (full, mask-aware)"
    model = pgm3d.load(tmp_path / "f")
    assert isinstance(model, pgm3d.WrappedModel) and isinstance(model.source, pgm3d.models.VAE)
    assert any(isinstance(p, pgm3d.AutoGuide) for p in model.parts)
    samplers = "--methods importance --num-proposals 20 --rows 5 --quiet --out"
    assert run("complete --run", tmp_path / "f", samplers, tmp_path / "c") == 0
    assert run("fit", *small, "--epochs 3 --guide auto-full --resume --out", tmp_path / "f") == 0
    assert run("fit --model ppca --data digits --guide auto-diag --out", tmp_path / "p") == 2
    assert "--guide applies to the models trained by SGD" in capsys.readouterr().err


def test_complete_on_shapes_drops_parts_and_draws_them(tmp_path):
    data = "--data chairs --n-train 80 --n-test 10 --points-per-part 4"
    fa = "fit --model shapefa --latent-dim 3 --part-dim 2 --quiet"
    assert run(fa, data, "--out", tmp_path / "fa") == 0
    done = run(
        "complete --methods exact fca --quiet --run", tmp_path / "fa", "--out", tmp_path / "c"
    )
    assert done == 0
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["completion_mse"]["exact"] < metrics["completion_mse"]["fca"]
    assert metrics["rows"] == 10  # the run's --n-test
    assert (tmp_path / "c" / "completion.png").is_file()


def test_voxel_models_fit_and_complete_the_hidden_half_of_each_volume(tmp_path):
    data = "--data voxel-classes --n-train 16 --n-test 4 --resolution 32 --epochs 1 --quiet"
    vsl = run(
        "fit --model vsl --batch-size 10 --iwae-samples 4 --ll-rows 2",
        data,
        "--out",
        tmp_path / "vsl",
    )
    assert vsl == 0
    metrics = json.loads((tmp_path / "vsl" / "metrics.json").read_text())
    assert metrics["objective"] == "elbo" and metrics["log_likelihood"] == "IWAE bound, K=4"
    argv = "complete --methods pseudo_gibbs --chains 1 --warmup 2 --num-samples 2 --quiet"
    assert run(argv, "--run", tmp_path / "vsl", "--out", tmp_path / "c") == 0
    done = np.load(tmp_path / "c" / "completions.npz")
    hidden = ~done["mask"].reshape(-1, 32, 32, 32)
    assert hidden[:, :16].all() and not hidden[:, 16:].any()  # the front half
    assert (tmp_path / "c" / "completion.png").is_file()
    assert run("sample -n 3 --quiet --run", tmp_path / "vsl", "--out", tmp_path / "s") == 0
    assert np.load(tmp_path / "s" / "samples.npz")["x"].shape == (3, 32**3)
    assert (tmp_path / "s" / "samples.png").is_file()
    gan = run(
        "fit --model gan --batch-size 8 --iwae-samples 2 --ll-rows 1", data, "--out", tmp_path / "g"
    )
    assert gan == 0
    log = (tmp_path / "g" / "train_log.csv").read_text().splitlines()
    assert log[0] == "epoch,d_loss,g_loss,d_accuracy,d_updates" and len(log) == 2


def test_the_3d_vae_gan_fits_to_rendered_views_with_its_image_encoder(tmp_path, capsys):
    """``pgm3d fit --model gan --encoder image`` on a voxel set's views: the image encoder is
    trained, the saved model reconstructs shapes from images, and bad pairings are refused."""
    import torch

    import pgm3d

    data = "--data primitives-views --n-train 8 --n-test 2 --epochs 1 --quiet"
    argv = "fit --model gan --encoder image --batch-size 4 --latent-dim 8 --iwae-samples 2"
    assert run(argv, data, "--ll-rows 2 --out", tmp_path / "g") == 0
    metrics = json.loads((tmp_path / "g" / "metrics.json").read_text())
    assert metrics["encoder"] == "image"
    assert np.isfinite(metrics["test_log_likelihood_nats_per_dim"])
    gan = pgm3d.load(tmp_path / "g")
    assert gan.image_encoder and gan.reconstruct(torch.zeros(3, 32, 32)).shape == (3, 32, 32, 32)
    bad = "--data primitives --n-train 8 --n-test 2 --epochs 1 --quiet --model gan --encoder image"
    assert run("fit", bad, "--out", tmp_path / "b") == 2
    assert "give a voxel set's views" in capsys.readouterr().err
    assert run("fit --model vae --encoder image", data, "--out", tmp_path / "v") == 2
    assert "--encoder chooses the GAN's encoder" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "v").exists()


def test_the_multi_entity_vae_fits_to_sprite_scenes_and_samples(tmp_path):
    data = "--data sprites-3 --n-train 32 --n-test 8 --epochs 1 --batch-size 16 --quiet"
    argv = "fit --model mvae --iwae-samples 2 --ll-rows 2"
    assert run(argv, data, "--out", tmp_path / "m") == 0
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["objective"] == "elbo"
    assert run("sample -n 8 --quiet --run", tmp_path / "m", "--out", tmp_path / "s") == 0
    assert np.load(tmp_path / "s" / "samples.npz")["x"].shape == (8, 3 * 64 * 64)
    assert (tmp_path / "s" / "samples.png").is_file()


def test_bench_measures_every_objective_and_back_end(tmp_path):
    assert run("bench", "--quick", "--latent-dim", "2", "--out", tmp_path, "--quiet") == 0
    throughput = json.loads((tmp_path / "metrics.json").read_text())["throughput"]
    names = {k.split(" (")[0] for k in throughput}
    objectives = ("elbo", "meanfield", "enum", "iwae", "dreg", "rws", "vimco")
    assert names == {f"train {o}" for o in objectives} | {
        f"complete {m}" for m in ("pseudo_gibbs", "mwg", "importance")
    }
    assert all(v > 0 for v in throughput.values())


def test_bench_hides_parts_of_shapes_not_their_existence_flags(tmp_path):
    argv = "bench --model shapevae --data chairs --n-train 20 --n-test 4 --points-per-part 2"
    assert run(argv, "--steps 1 --quiet --out", tmp_path) == 0
    assert len(json.loads((tmp_path / "metrics.json").read_text())["throughput"]) == 10


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "--model", "nope"], "unknown model 'nope'; choose one of: fa, ppca, vae"),
        (["fit", *SMALL_VAE, "--objective", "nope"], "unknown objective 'nope'; choose one of"),
        (
            ["fit", "--data", "nope"],
            "unknown data 'nope'; choose one of: airplanes, airplanes_nonl",
        ),
        (["fit", "--data", "missing.npy"], "data file missing.npy does not exist"),
        (["fit", "--model", "shapevae", "--data", "digits"], "models part-segmented shapes"),
        (["fit", "--model", "vsl", "--data", "digits"], "vsl models voxel grids"),
        (
            [
                "fit",
                "--model",
                "gan",
                "--objective",
                "elbo",
                "--data",
                "voxel-classes",
                "--n-train",
                "10",
                "--n-test",
                "2",
            ],
            "--objective does not apply",
        ),
        (["fit", *SMALL_VAE, "--devices", "2"], "--devices and --accelerator apply to Lightning"),
        (
            ["fit", *SMALL_VAE, "--strategy", "ddp", "--devices", "3", "--batch-size", "100"],
            "give a multiple of 3",
        ),
        (["fit", "--model", "ppca", "--data", "digits", "--strategy", "ddp"], "ppca is not one"),
        (["fit", *SMALL_VAE, "--objective", "vimco"], "vimco needs --num-particles >= 2, got 1"),
        (["complete", "--run", "no/such/run"], "no such file"),
        (["fit", "--config", "no.toml"], "config file no.toml does not exist"),
    ],
)
def test_bad_input_fails_with_a_clear_message(argv, message, tmp_path, capsys):
    assert run(*argv, "--out", tmp_path / "out", "--quiet") == 2
    assert message in capsys.readouterr().err


def test_a_lightning_run_on_one_device_and_its_refused_resume(tmp_path, capsys):
    argv = "--epochs 2 --iwae-samples 20 --ll-rows 20 --strategy auto --quiet --out"
    assert run("fit", *SMALL_VAE, argv, tmp_path) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["strategy"] == "auto, 1 device(s) (Lightning)" and metrics["steps"] == 30
    assert run("fit", *SMALL_VAE, argv, tmp_path, "--resume") == 2
    assert "cannot resume yet" in capsys.readouterr().err


def test_an_unknown_completion_method_lists_the_valid_ones(vae_run, tmp_path, capsys):
    assert run("complete", "--run", vae_run, "--methods", "magic", "--out", tmp_path) == 2
    assert "unknown completion method 'magic'; choose one of: exact" in capsys.readouterr().err


def test_an_out_folder_holding_another_run_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    fit = ["fit", "--model", "ppca", "--data", "digits", "--quiet", "--out", out]
    assert run(*fit, "--latent-dim", "3") == 0
    assert run(*fit, "--latent-dim", "3") == 0  # the same run again is fine
    assert run(*fit, "--latent-dim", "4") == 2
    assert "holds a different run (latent_dim: 3 there, 4 now)" in capsys.readouterr().err
    assert run(*fit, "--latent-dim", "4", "--overwrite") == 0
    assert pgm3d.load(out).latent_dim == 4
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert run("fit", "--model", "ppca", "--data", "digits", "--out", foreign) == 2
    assert "holds no pgm3d run" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("suffix", [".toml", ".yaml", ".json"])
def test_a_config_file_sets_options_and_the_command_line_wins(tmp_path, suffix):
    texts = {
        ".toml": 'model = "ppca"\ndata = "digits"\n[fit]\nlatent-dim = 3\nll_rows = 50\n',
        ".yaml": "model: ppca\ndata: digits\nfit:\n  latent-dim: 3\n  ll_rows: 50\n",
        ".json": '{"model": "ppca", "data": "digits", "fit": {"latent-dim": 3, "ll_rows": 50}}',
    }
    config = tmp_path / f"c{suffix}"
    config.write_text(texts[suffix])
    assert run("fit", "--config", config, "--out", tmp_path / "a", "--quiet") == 0
    assert pgm3d.load(tmp_path / "a").latent_dim == 3
    saved = (tmp_path / "a" / "config.toml").read_text()
    assert "latent_dim = 3" in saved and "ll_rows = 50" in saved
    assert run("fit --latent-dim 2 --quiet --config", config, "--out", tmp_path / "b") == 0
    assert pgm3d.load(tmp_path / "b").latent_dim == 2
    # the saved effective config reproduces the run
    again = tmp_path / "a" / "config.toml"
    assert run("fit --quiet --config", again, "--out", tmp_path / "a") == 0


def test_a_config_with_an_unknown_or_invalid_option_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("epoch = 3\n")
    assert run("fit", "--config", bad, "--out", tmp_path / "o") == 2
    assert "unknown options ['epoch'] for `pgm3d fit`; it takes:" in capsys.readouterr().err
    bad.write_text('log = "paper"\n')
    assert run("fit", "--config", bad, "--out", tmp_path / "o") == 2
    assert "log = 'paper': choose one of: csv, tensorboard, none" in capsys.readouterr().err


def test_resume_with_a_corrupt_checkpoint_fails_and_overwrites_nothing(vae_run, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.toml", "checkpoint.pt"):
        (out / name).write_bytes((vae_run / name).read_bytes())
    text = (out / "config.toml").read_text().replace(str(vae_run), str(out))
    (out / "config.toml").write_text(text)
    torn = (out / "checkpoint.pt").read_bytes()[:1000]
    (out / "checkpoint.pt").write_bytes(torn)
    argv = ["fit", *SMALL_VAE, "--epochs", "3", "--iwae-samples", "20", "--out", out]
    assert run(*argv, "--resume", "--quiet") == 2
    assert "checkpoint.pt is not a readable pgm3d file" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == torn
    assert not (out / "model.pt").exists()


def test_resume_needs_a_run_to_resume(tmp_path, capsys):
    assert run("fit", *SMALL_VAE, "--resume", "--out", tmp_path / "new") == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_report_rebuilds_a_self_contained_page(vae_run, tmp_path, capsys):
    assert run("report", vae_run) == 0
    page = (vae_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1  # the training curve, embedded
    assert "<table>" in page and 'src="http' not in page
    assert run("report", tmp_path / "none") == 2
    assert "no such run folder" in capsys.readouterr().err


@pytest.mark.gpu
def test_fit_resume_complete_and_evaluate_on_cuda(tmp_path):
    fit = ["fit", *SMALL_VAE, "--epochs 2 --checkpoint-every 7 --iwae-samples 10 --quiet"]
    assert run(*fit, "--device cuda --out", tmp_path / "ref") == 0
    assert run(*fit, "--device cuda --out", tmp_path / "run") == 0
    assert run(*fit, "--epochs 3 --resume --device cuda --out", tmp_path / "run") == 0
    model = pgm3d.load(tmp_path / "run", device="cuda")
    assert next(model.parameters()).is_cuda
    common = ["--run", tmp_path / "run", "--rows 8 --chains 2 --warmup 4 --num-samples 4 --quiet"]
    assert run("complete --device cuda", *common, "--out", tmp_path / "c") == 0
    assert run("evaluate --device cuda", *common, "--out", tmp_path / "e") == 0


# -- the main job and its checkpoints, in real processes ---------------------------------------

LONG_FIT = [
    *SMALL_VAE,
    "--epochs",
    "12",
    "--batch-size",
    "8",
    "--checkpoint-every",
    "40",
    "--iwae-samples",
    "10",
    "--ll-rows",
    "10",
    "--quiet",
]


def _pgm3d(*argv, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "pgm3d", *map(str, argv)]
    # a shell that runs the tests in the background (`... &`) ignores SIGINT, and the child would
    # inherit that; the command itself must see Ctrl-C as a user's terminal sends it
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    return subprocess.Popen(
        cmd, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=restore, **kwargs
    )


def _wait_for_checkpoint(path: Path, proc: subprocess.Popen, min_steps: int = 200) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        # atomic writes: the file is either absent or whole, never half-written
        if path.is_file() and (steps := read_checkpoint(path)["steps"]) >= min_steps:
            return steps
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def _state(path):
    return pgm3d.load(path).state_dict()


def test_a_killed_fit_resumes_to_the_parameters_of_an_uninterrupted_one(tmp_path):
    reference = _pgm3d("fit", *LONG_FIT, "--out", tmp_path / "ref")
    killed = _pgm3d("fit", *LONG_FIT, "--out", tmp_path / "run")
    steps = _wait_for_checkpoint(tmp_path / "run" / "checkpoint.pt", killed)
    killed.send_signal(signal.SIGKILL)  # no chance to clean up
    killed.wait()
    total = 12 * 180  # 1,438 training digits in batches of 8
    assert steps < total and not (tmp_path / "run" / "model.pt").exists()
    resumed = _pgm3d("fit", *LONG_FIT, "--out", tmp_path / "run", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    a, b = _state(tmp_path / "ref" / "model.pt"), _state(tmp_path / "run" / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_checkpoint(tmp_path / "run" / "checkpoint.pt")["steps"] == total
    log = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    assert log == (tmp_path / "ref" / "train_log.csv").read_text().splitlines()


def test_ctrl_c_during_training_leaves_the_last_checkpoint_intact(tmp_path):
    proc = _pgm3d("fit", *LONG_FIT, "--out", tmp_path)
    _wait_for_checkpoint(tmp_path / "checkpoint.pt", proc, min_steps=40)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert "rerun the same command with --resume" in proc.stderr.read()
    record = read_checkpoint(tmp_path / "checkpoint.pt")
    assert record["steps"] % 40 == 0 and record["steps"] > 0
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_the_quick_demo_writes_the_report_metrics_and_figures(tmp_path):
    assert run("demo", "--quick", "--out", tmp_path, "--quiet") == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["completion_mse"]) >= 4  # at least four back ends
    assert set(metrics["posteriors"]) == {"shapevae", "shapefa"}
    assert metrics["missing_fa"]["test_mse_x100"]["random"]["exact"] > 0
    page = (tmp_path / "report.html").read_text()
    pngs = list(tmp_path.rglob("*.png"))
    assert len(pngs) >= 8 and page.count('<img src="data:image/png;base64,') == len(pngs)
    for heading in ("Summary", "Chairs", "ShapeFA, where the exact posterior", "digits"):
        assert heading in page
    # the shapes turn around, and the posterior tables read themselves
    assert page.count('class="view3d"') >= 2 and "Plotly.newPlot" in page
    assert "Reading the table:" in page


def test_cli_conventions_no_abbreviations_suggestions_and_a_default_model(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--epoch", "3"])  # not taken for --epochs
    assert "unrecognized arguments: --epoch 3 (did you mean '--epochs'?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fti"])
    assert "(did you mean 'fit'?)" in capsys.readouterr().err
    assert run("fit --model vea --quiet --out", tmp_path / "x") == 2
    assert "unknown model 'vea' (did you mean 'vae'?)" in capsys.readouterr().err
    out = tmp_path / "run"
    assert run("fit --data digits --epochs 1 --iwae-samples 5 --ll-rows 10 --quiet --out", out) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "vae" and "default for rows" in metrics["model_chosen"]
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "Draw samples from a saved model" in capsys.readouterr().out


def _subparsers(parser):
    action = next(a for a in parser._actions if a.dest in ("command", "experiment"))
    return action.choices


def test_the_readme_command_table_matches_the_parser():
    """Every command of ``pgm3d`` is in the README's table, and every command and option the
    table shows exists (the table is checked against the parser ``--help`` is made from)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| `pgm3d ([^`]*)` \|", readme, flags=re.M)
    parser = build_parser()
    commands = _subparsers(parser)
    experiments = _subparsers(commands["experiment"])
    shown = set()
    for row in rows:
        words = row.split()
        leaf = commands[words[0]]
        name = words[0]
        if words[0] == "experiment":
            leaf, name = experiments[words[1]], f"experiment {words[1]}"
        shown.add(name)
        flags = {s for a in leaf._actions for s in a.option_strings}
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", row):
            assert flag in flags, f"README: `pgm3d {name}` has no option {flag}"
    everything = {c for c in commands if c != "experiment"}
    everything |= {f"experiment {e}" for e in experiments}
    assert everything == shown, f"README's command table lacks {sorted(everything - shown)}"


def test_evaluate_calibrates_each_method_by_simulation(tmp_path):
    out = tmp_path / "fa"
    assert run("fit --model ppca --data digits --latent-dim 4 --quiet --out", out) == 0
    argv = "--methods exact fca --rows 20 --iwae-samples 10 --sbc 60 --quiet --out"
    assert run("evaluate --run", out, argv, tmp_path / "e") == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["sbc_pvalue"]["exact"] > 0.001  # the exact posterior is calibrated
    assert (tmp_path / "e" / "sbc_exact.png").stat().st_size > 0
    assert (tmp_path / "e" / "khat.png").is_file()
    assert "Simulation-based calibration" in (tmp_path / "e" / "table.md").read_text()
    with pytest.raises(SystemExit):  # a usage error: a count of simulations is >= 0
        run("evaluate --run", out, "--sbc -1 --out", tmp_path / "x")


def test_the_command_starts_without_the_heavy_optional_libraries():
    code = (
        "import sys; from pgm3d.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('matplotlib', 'sklearn', 'arviz', 'trimesh', 'lightning', "
        "'plotly', 'skimage', 'open3d') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # each is imported where it is used
