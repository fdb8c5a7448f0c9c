"""The steps a user runs on their own data and models, one module per ``pgm3d`` command:
:mod:`~pgm3d.tasks.fit`, :mod:`~pgm3d.tasks.complete`, :mod:`~pgm3d.tasks.evaluate`,
:mod:`~pgm3d.tasks.sample` and :mod:`~pgm3d.tasks.bench`.

Each is a settings dataclass (:class:`~pgm3d.settings.Settings`, every default written once
with its help) and a function ``run_X(settings, out, *, seed, device, progress) -> metrics``
that writes ``metrics.json``, ``table.md`` and figures into ``out``. :data:`TASKS` names them
with what the command line needs, and the ``pgm3d`` command is generated from it.
"""

from pgm3d.registry import Registry
from pgm3d.saving import CHECKPOINT_FILE
from pgm3d.tasks.bench import BenchSettings, run_bench
from pgm3d.tasks.complete import InferenceSettings, run_complete
from pgm3d.tasks.evaluate import EvaluateSettings, run_evaluate
from pgm3d.tasks.fit import DEFAULT_MODELS, FitSettings, run_fit
from pgm3d.tasks.sample import SampleSettings, run_sample

#: the top-level commands: their function, settings class and help; ``checkpoint``: a file
#: whose presence means unfinished work (the run folder is then claimed with ``--resume``)
TASKS: Registry = Registry("command")
TASKS.register(
    "fit",
    settings=FitSettings,
    help="fit a model to data, with checkpoints and --resume",
    description="Build a model by registry name, fit it (SGD with any objective for the VAEs, "
    "closed form or EM for the linear models), save model.pt (pgm3d.load) and measure its "
    "test log-likelihood.",
    checkpoint=CHECKPOINT_FILE,
)(run_fit)
TASKS.register(
    "complete",
    settings=InferenceSettings,
    help="fill in hidden parts or entries with interchangeable back ends",
    description="Hide parts (shapes) or entries (rows) of test data and complete them with "
    "each back end; imputation error, timings, a figure.",
)(run_complete)
TASKS.register(
    "evaluate",
    settings=EvaluateSettings,
    help="test log-likelihood and the posterior comparison table",
    description="Test log-likelihood, then the posterior comparison of the inference layer "
    "(imputation error, distance to the exact posterior, PSIS k-hat, R-hat, ESS).",
)(run_evaluate)
TASKS.register(
    "sample",
    settings=SampleSettings,
    help="draw samples from a saved model",
    description="Draw samples from a saved model (a model file or a `pgm3d fit` folder): "
    "decoder means by default, --noise to add observation noise; writes samples.npz, a figure "
    "for shapes, voxels, scenes and images, and metrics.json.",
)(run_sample)
TASKS.register(
    "bench",
    settings=BenchSettings,
    help="training and completion throughput on this device",
    description="Steps per second of every objective and rows per second of every completion "
    "back end, for one model.",
)(run_bench)

__all__ = [
    "DEFAULT_MODELS",
    "TASKS",
    "BenchSettings",
    "EvaluateSettings",
    "FitSettings",
    "InferenceSettings",
    "SampleSettings",
    "run_bench",
    "run_complete",
    "run_evaluate",
    "run_fit",
    "run_sample",
]
