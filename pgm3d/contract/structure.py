"""What tracing a model/guide pair finds (:class:`Structure`), and the error every break of the
contract raises (:class:`ContractError`)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PARTICLES", "PGM3D", "ContractError", "Structure"]

#: the name of the outer plate of vectorised particles
PARTICLES = "particles"


class ContractError(ValueError):
    """A model, guide, context or mask that breaks the model contract, raised before any
    training or sampling starts; the message names the site or argument and what to do."""


@dataclass(frozen=True)
class Structure:
    """What tracing a model/guide pair once found.

    :ivar str obs: the observed site that holds the data.
    :ivar str plate: the data plate (one entry per row).
    :ivar str layout: ``"vectorized"`` (particles are an outer plate) or ``"rows"``
        (particles are copies of the batch along the data plate).
    :ivar int nesting: deepest plate nesting of model and guide (``max_plate_nesting``).
    :ivar local_latents: latent sites inside the data plate, in model order.
    :ivar global_latents: latent sites outside it.
    :ivar latent_dims: local latent name -> ``(event_dim, dim of the data plate)``.
    :ivar other_plates: local latent name -> the other vectorised plates it lies in.
    :ivar discrete: guide sites with a discrete support -> their distribution's class name.
    :ivar not_reparam: guide sites without a reparameterised sampler -> class name.
    :ivar params: names of the ``pyro.param`` sites the pair uses.
    :ivar obs_row_shape: the observed value's shape per row.
    :ivar bool holds_data: the observed site holds the data entry for entry (so completed
        values can be written into it).
    :ivar coupled: why the observed site's entries cannot be masked one by one (``None``
        when they can).
    :ivar int data_dim: columns of the data the pair was traced with.
    """

    obs: str = "x"
    plate: str = "data"
    layout: str = "vectorized"
    nesting: int = 1
    local_latents: tuple[str, ...] = ()
    global_latents: tuple[str, ...] = ()
    latent_dims: dict = field(default_factory=dict)
    other_plates: dict = field(default_factory=dict)
    discrete: dict = field(default_factory=dict)
    not_reparam: dict = field(default_factory=dict)
    params: tuple[str, ...] = ()
    obs_row_shape: tuple[int, ...] = ()
    holds_data: bool = True
    coupled: str | None = None
    data_dim: int | None = None

    def refuse_coupled(self, mask) -> None:
        """Raise if ``mask`` hides entries of a site that cannot be masked per entry."""
        if self.coupled is not None and mask is not None and not bool(mask.all()):
            raise ContractError(self.coupled)

    def refuse_other_plates(self, what: str) -> None:
        """Raise if a local latent lies in plates besides the data plate (``what`` needs one
        latent vector per row and site)."""
        if self.other_plates:
            where = "; ".join(f"{n!r} in {', '.join(p)}" for n, p in self.other_plates.items())
            raise ContractError(
                f"{what} take one latent vector per row, but the model's latent sites also "
                f"lie in other plates ({where})"
            )

    def refuse_unless_holds_data(self, what: str) -> None:
        """Raise if the observed site is not the data entry for entry."""
        if not self.holds_data:
            raise ContractError(
                f"{what} writes completed values into the observed site {self.obs!r}, which "
                f"does not hold the data entry for entry (per row it holds "
                f"{self.obs_row_shape}, computed from the data); observe the data argument "
                "itself to complete it"
            )


#: the structure of a pgm3d model, assumed where no probe ran (direct calls of the internals)
PGM3D = Structure()
