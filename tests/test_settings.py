"""Typed settings and the command line generated from them: one place per default, the same
checks from Python, the command line and config files, and new commands by registration."""

from dataclasses import dataclass, fields

import pytest

from pgm3d.cli import build_parser, main
from pgm3d.cli.generate import settings_from_args
from pgm3d.experiments import EXPERIMENTS
from pgm3d.models import MODELS, PPCA
from pgm3d.settings import Settings, option
from pgm3d.tasks import TASKS


def _entries():
    yield from ((TASKS, name, [name]) for name in TASKS)
    yield from ((EXPERIMENTS, name, ["experiment", name]) for name in EXPERIMENTS)


REQUIRED = ["--run", "some/run"]  # the tasks on a saved model need one


@pytest.mark.parametrize("registry, name, argv", list(_entries()), ids=lambda v: str(v))
def test_no_options_give_the_dataclass_defaults_and_quick_its_preset(registry, name, argv):
    cls = registry.info(name)["settings"]
    extra = REQUIRED if any(f.metadata.get("required") for f in fields(cls)) else []
    given = {"run": "some/run"} if extra else {}
    args = build_parser().parse_args([*argv, *extra])
    assert settings_from_args(cls, args) == cls.full(**given)
    if cls.QUICK:
        args = build_parser().parse_args([*argv, *extra, "--quick"])
        assert settings_from_args(cls, args) == cls.quick(**given)


def _leaf(argv):
    parser = build_parser()
    for word in argv:
        parser = next(a for a in parser._actions if a.dest in ("command", "experiment"))
        parser = parser.choices[word]
    return parser


@pytest.mark.parametrize("registry, name, argv", list(_entries()), ids=lambda v: str(v))
def test_help_shows_each_default_from_its_field(registry, name, argv):
    cls = registry.info(name)["settings"]
    actions = {a.dest: a for a in _leaf(argv)._actions}
    for f in fields(cls):
        text = actions[f.name].help
        assert f.metadata["help"].split(":")[0].replace("%", "%%") in text
        if f.metadata["shown"]:
            assert f"({f.metadata['shown']}" in text
        elif f.default is not None and f.metadata["kind"] is not bool:
            shown = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else None
            shown = shown or (f"{f.default:g}" if isinstance(f.default, float) else f.default)
            assert f"({shown}" in text, (f.name, text)


def test_a_config_file_is_checked_by_the_same_types(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("epochs = 0\n")
    assert main(["fit", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "epochs = 0: must be >= 1, got 0" in capsys.readouterr().err
    config.write_text('methods = ["magic"]\nrun = "r"\n')
    code = main(["complete", "--run", "r", "--config", str(config), "--out", str(tmp_path / "o")])
    assert code == 2 and "unknown completion method 'magic'" in capsys.readouterr().err
    config.write_text('[experiment.shapes]\nlatent-dims = [4, "x"]\n')
    assert main(["experiment", "shapes", "--config", str(config)]) == 2
    assert "latent_dims = [4, 'x']: must be an integer" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_settings_convert_lists_paths_and_refuse_bad_values(tmp_path):
    from pgm3d.experiments import ShapesSettings
    from pgm3d.tasks import InferenceSettings

    s = ShapesSettings(latent_dims=[4, 16])
    assert s.latent_dims == (4, 16) and ShapesSettings(latent_dims=4).latent_dims == (4,)
    with pytest.raises(ValueError, match="latent_dims needs at least one value"):
        ShapesSettings(latent_dims=[])
    with pytest.raises(ValueError, match="latent_dims must be >= 1"):
        ShapesSettings(latent_dims=(8, 0))
    run = InferenceSettings(run=str(tmp_path))
    assert run.run == tmp_path and run.methods is None
    with pytest.raises(ValueError, match="unknown completion method 'mgw' \\(did you mean 'mwg'"):
        run.replace(methods=("mgw",))
    with pytest.raises(TypeError, match="noise must be true or false"):
        TASKS.info("sample")["settings"](run="r", noise="yes")


@dataclass
class ToySettings(Settings):
    """A toy experiment's settings."""

    QUICK = {"size": 2}

    size: int = option(10, "how many")
    name: str = option("a", "a label", choices=("a", "b"))


def run_toy(settings, out, *, seed=0, device="cpu", progress=None):
    from pgm3d.tasks.results import markdown_table, write_results

    metrics = {"total": settings.size * 2, "name": settings.name, "seconds": 0.0}
    write_results(out, metrics, markdown_table(("what", "value"), [("total", metrics["total"])]))
    return metrics


def test_a_new_experiment_is_one_file_plus_one_registration_line(tmp_path, capsys):
    EXPERIMENTS.register("toy", settings=ToySettings, help="a toy", description="A toy.")(run_toy)
    try:
        with pytest.raises(SystemExit):
            main(["experiment", "toy", "--help"])
        assert "how many (10; --quick 2)" in capsys.readouterr().out
        out = tmp_path / "toy"
        assert main(["experiment", "toy", "--quick", "--name", "b", "--out", str(out)]) == 0
        assert "| total | 4 |" in capsys.readouterr().out
        assert 'command = "experiment toy"' in (out / "config.toml").read_text()
        assert "size = 2" in (out / "config.toml").read_text()
    finally:
        EXPERIMENTS.unregister("toy")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["experiment", "toy"])


def test_a_new_model_for_fit_is_its_class_plus_its_registration(tmp_path):
    class ToyPPCA(PPCA):
        """PPCA under another name: a user's model class."""

    MODELS.register("toy-ppca")(ToyPPCA)
    try:
        out = tmp_path / "fit"
        argv = ["fit", "--model", "toy-ppca", "--data", "digits", "--latent-dim", "3"]
        assert main([*argv, "--quiet", "--out", str(out)]) == 0
        import pgm3d

        assert type(pgm3d.load(out)).__name__ == "ToyPPCA"
    finally:
        MODELS.unregister("toy-ppca")
