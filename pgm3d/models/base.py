r"""The interface pgm3d's models share: the :class:`Model` protocol.

Every registered model (:data:`~pgm3d.models.MODELS`) is a :class:`Model`, and the library
talks to it only through this interface — the registry builds it with :meth:`Model.from_data`,
the commands read data into it with :meth:`Model.data_rows`, pick its training with
:attr:`Model.trained_by` and its completion back ends from :attr:`Model.completion_methods`,
draw from it with :meth:`Model.sample`, and measure it with :meth:`Model.exact_log_likelihood`
and :meth:`Model.observed_entries`. The Pyro side is the model contract of
:mod:`pgm3d.contract`: ``model(x, mask=None)`` and ``guide(x, mask=None)`` observe the site
``"x"`` inside ``pyro.plate("data", B)`` (:attr:`Model.pgm3d_contract`).

A user's model needs none of this: any object with ``model`` and ``guide`` methods (or a pair of
functions) goes through the same entry points via :func:`pgm3d.wrap`, and
:func:`completion_methods` says which back ends apply to it.
"""

from __future__ import annotations

import functools
import inspect

import torch

from pgm3d.data.datasets import DATA_KINDS, data_kind

__all__ = [
    "DATA_KINDS",
    "LINEAR_METHODS",
    "SAMPLERS",
    "Model",
    "check_n",
    "completion_methods",
    "data_kind",
    "draw_observations",
    "grid_rows",
]

#: the sample-based completion back ends, which apply to any model/guide pair
SAMPLERS = ("pseudo_gibbs", "mwg", "importance", "nuts")
#: the closed-form back ends of linear-Gaussian models
LINEAR_METHODS = ("exact", "fca", "sca", "mean")


def check_n(n) -> int:
    """Validate a number of samples."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return n


def grid_rows(voxels: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Flatten ``(N, R, R, R)`` occupancy grids to ``(N, R³)`` rows of 0/1 (the rows of the
    voxel models)."""
    if voxels.dim() != 4:
        raise ValueError(f"voxels must be (N, R, R, R), got {tuple(voxels.shape)}")
    return voxels.reshape(voxels.shape[0], -1).to(dtype)


def draw_observations(px, *, mean: bool = False, generator=None) -> torch.Tensor:
    """Draws of a Bernoulli or Normal observation distribution from a seeded ``generator``
    (Pyro's ``sample`` takes none), or its mean with ``mean=True``. The uniforms or normals are
    drawn on the generator's device and moved to the distribution's."""
    if mean:
        return px.mean
    like = px.probs if isinstance(px, torch.distributions.Bernoulli) else px.loc
    device = generator.device if generator is not None else like.device
    shape, dtype = like.shape, like.dtype
    if isinstance(px, torch.distributions.Bernoulli):
        u = torch.rand(shape, generator=generator, dtype=dtype, device=device).to(like.device)
        return (u < px.probs).to(dtype)
    noise = torch.randn(shape, generator=generator, dtype=dtype, device=device).to(like.device)
    return px.loc + px.scale * noise


def flat_rows(data) -> tuple[torch.Tensor, torch.Tensor]:
    """Any dataset as flat rows and their observation mask (NaN = missing in plain rows)."""
    kind = data_kind(data)
    if kind == "views":  # the rows are the shapes; their images are a context
        return flat_rows(data.shapes)
    if kind == "shapes":
        return data.flat(), data.flat_mask()
    if kind in ("voxels", "scenes"):
        x = data.voxels.reshape(data.voxels.shape[0], -1) if kind == "voxels" else data.rows()
        x = x.to(torch.float32) if not x.is_floating_point() else x
        return x, torch.ones_like(x, dtype=torch.bool)
    x = torch.as_tensor(data)
    return x, ~torch.isnan(x)


def _recording(init):
    """Wrap a constructor so the outermost call records its arguments (what a model file
    stores to build the model again; :mod:`pgm3d.saving`)."""
    sig = inspect.signature(init)

    @functools.wraps(init)
    def constructor(self, *args, **kwargs):
        if "_init_args" not in self.__dict__:
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            recorded = dict(bound.arguments)
            recorded.pop(next(iter(sig.parameters)))  # self
            for name, p in sig.parameters.items():
                if p.kind is p.VAR_KEYWORD:
                    recorded.update(recorded.pop(name, {}))
            self.__dict__["_init_args"] = recorded
        init(self, *args, **kwargs)

    return constructor


class Model:
    """Mixin of pgm3d's models (with ``PyroModule`` or ``nn.Module``).

    Each subclass's constructor records the arguments of the call that built the model
    (:attr:`init_args`): a model file stores them (and the tensors) instead of a pickled
    object, and :func:`pgm3d.load` calls the constructor again with them.

    :cvar pgm3d_contract: where the adapter finds the data: the observed site ``"x"`` in the
        plate ``"data"``, passed as the argument ``x``.
    :cvar str data_kind: the data it models (a key of :data:`DATA_KINDS`).
    :cvar str trained_by: ``"sgd"`` (:func:`~pgm3d.inference.fit`), ``"adversarial"``
        (:func:`~pgm3d.inference.fit_gan`), ``"em"`` or ``"closed-form"`` (when built).
    :cvar completion_methods: the completion back ends that apply to it.
    """

    pgm3d_contract = {"obs": "x", "plate": "data", "data_arg": "x"}
    data_kind = "rows"
    trained_by = "sgd"
    completion_methods: tuple[str, ...] = SAMPLERS

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__init__)

    @property
    def init_args(self) -> dict:
        """The arguments the model was constructed with, by name."""
        return dict(self.__dict__.get("_init_args", {}))

    def extra_state(self) -> dict:
        """Plain (JSON) facts a model file keeps beside the tensors and the constructor's
        arguments: state set after construction that is not a parameter or buffer."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what :meth:`extra_state` returned."""

    @classmethod
    def accepts(cls, kind: str) -> bool:
        """Whether it models data of this kind (row models take any data, flattened)."""
        return kind == cls.data_kind or (cls.data_kind == "rows" and kind == "shapes")

    @classmethod
    def from_data(cls, data, **options) -> Model:
        """A model sized for (and, unless it is trained by SGD, fitted to) ``data``; the
        options are :func:`~pgm3d.models.build_model`'s."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from data by name")

    def _reference(self) -> torch.Tensor:
        tensors = (*self.parameters(), *self.buffers())
        return next(t for t in tensors if t.is_floating_point())

    def data_rows(self, data) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``x (N, D)`` and observation mask of a dataset, on the model's device and
        dtype: the input of :meth:`model` and of every back end."""
        ref = self._reference()
        x, mask = flat_rows(data)
        x, mask = x.to(ref), mask.to(ref.device)
        if x.shape[-1] != self.data_dim:
            raise ValueError(
                f"the data have {x.shape[-1]} columns, the model takes {self.data_dim}"
            )
        return x, mask

    @property
    def row_shape(self) -> tuple[int, ...] | None:
        """The shape one row is a flattening of — ``(C, H, W)`` images or ``(C, R, R, R)``
        voxel grids — or ``None`` for rows with no such layout (autoguides read grids with a
        convolutional trunk)."""
        return None

    def default_kl_weight(self) -> float:
        """The KL weight :math:`\\alpha` its paper trains with (1: the ELBO)."""
        return 1.0

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        return_latents: bool = False,
    ):
        """``n`` draws from the model in its data's layout (rows; grids for voxel models),
        or with ``mean=True`` the observation means at the drawn latents; with
        ``return_latents`` also the latents."""
        raise NotImplementedError

    def exact_log_likelihood(self, x, mask, existence=None) -> torch.Tensor | None:
        """:math:`\\log p(x_v)` per row in closed form, or ``None`` if there is none."""
        return None

    def observed_entries(self, mask: torch.Tensor, existence=None) -> torch.Tensor:
        """Per row, the number of observed entries a log-likelihood per dimension divides by."""
        return mask.sum(-1)


def completion_methods(model) -> tuple[str, ...]:
    """The completion back ends that apply to ``model``: its own list for a pgm3d model, the
    samplers for any other model/guide pair."""
    from pgm3d.contract import WrappedModel

    if isinstance(model, WrappedModel):
        model = model.source if model.source is not None else model
    if isinstance(model, Model):
        return model.completion_methods
    is_pair = isinstance(model, WrappedModel | tuple) or callable(getattr(model, "model", None))
    return SAMPLERS if is_pair else ()
