r"""The model contract: what pgm3d accepts as a model, and the one adapter every entry point uses.

A *model* is what a Pyro user writes, unchanged:

1. a pgm3d model (:class:`pgm3d.models.Model`);
2. any object with ``model`` and ``guide`` methods — a ``PyroModule``, or an ``nn.Module``
   with ``pyro.module(...)`` calls inside, as Pyro's examples write them;
3. a ``(model, guide)`` pair of plain functions whose parameters live in Pyro's param store.

Every entry point (:func:`~pgm3d.inference.fit`, :func:`~pgm3d.inference.log_likelihood`,
:func:`~pgm3d.inference.complete`, :func:`~pgm3d.evaluation.evaluate_posteriors`, the
diagnostics) passes what it is given through :func:`as_model`, which returns a
:class:`WrappedModel`; :func:`wrap` builds one explicitly when the defaults below need help.

How a pair is read (by tracing it once, before any expensive work):

- **the data argument** is the model's first positional parameter that is not ``mask`` and
  not a context name, or the one named by ``data_arg=``; the guide gets the data under the
  same name if it has it, else as its first positional parameter;
- **the observed site** is the model's one observed ``pyro.sample(..., obs=...)`` site
  (``pyro.deterministic`` sites do not count), or the one named by ``obs=``; any other
  observed sites are scored too but never masked or imputed;
- **the data plate** is the vectorised ``pyro.plate`` around the observed site named
  ``"data"``, else the one whose size is the number of rows, or the one named by ``plate=``.
  Latent sites inside it are *local* (one per row); sites outside it are *global*;
- **context**: row-aligned tensors passed to the model and guide besides the data (a tensor,
  or a dict of named tensors, given to each entry point as ``context=``), minibatched with
  the data and never scored or imputed. A dict's keys are argument names; a single tensor
  goes to the name given by ``wrap(context=...)``, or to the one argument left besides the
  data when ``data_arg=`` names the data;
- **missing data** is the library's job: where ``mask`` is False, the data handed to the
  model and guide is filled (``fill``, zero by default — no NaN ever reaches user code), and
  the observed site's log-density is masked per entry by an effect handler
  (:class:`~pgm3d.handlers.MaskObserved`), so a model that never heard of masks marginalises
  the missing entries exactly. A model or guide with a ``mask`` parameter also receives the
  mask (to condition on the pattern);
- **parameters** are whatever the pair creates: the parameters of the modules it belongs to
  and every ``pyro.param`` site (Pyro's param store), trained together;
- **particles** are a vectorised plate outside the model, or — for models that cannot
  broadcast over one (Pyro's CVAE indexes with a batch-shaped mask) — copies of the batch
  laid out as extra rows (:attr:`Structure.layout`). The probe decides; ``vectorize=`` forces.
"""

from pgm3d.contract.adapter import Bound, WrappedModel, as_model, wrap
from pgm3d.contract.structure import PARTICLES, PGM3D, ContractError, Structure

__all__ = [
    "PARTICLES",
    "PGM3D",
    "Bound",
    "ContractError",
    "Structure",
    "WrappedModel",
    "as_model",
    "wrap",
]
