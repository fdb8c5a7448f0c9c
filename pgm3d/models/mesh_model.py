r"""Rezende et al. 2016's mesh model (supplement §A.5): a latent code deforms a template mesh, a
black-box renderer draws it, and the image likelihood is trained by a multi-sample REINFORCE
estimator with leave-one-out baselines (VIMCO).

.. math::
    z \sim \mathcal{N}(0, I), \qquad
    m \mid z \sim \mathcal{N}\big(g_\theta(z), \sigma^2 I\big), \qquad
    x \mid m \sim \prod_u \mathrm{Bernoulli}\big(\epsilon + (1 - 2\epsilon)\,
        \mathrm{render}(m)_u\big),

with :math:`g_\theta(z)` the radial offsets of an icosphere's vertices (the template), ``render``
the silhouette of the deformed mesh from a fixed camera (:func:`~pgm3d.data.render.render_meshes`
— ray casting with no gradient, a black box to the estimator), :math:`\epsilon` a small floor
so a pixel the mesh misses by a little is not impossible. The guide is
:math:`q(z \mid x)\, q(m \mid z)` with :math:`q(m \mid z) = p(m \mid z)`: "for a fixed set of
latent variables, K realisations of the mesh with a small Gaussian noise" (§A.5). The mesh site
has no reparameterised sampler (no path runs through the renderer), so ``"vimco"`` scores it —
each realisation's learning signal centred by the bound without it — and trains :math:`g_\theta`
and the encoder through :math:`\nabla \log q(m_k \mid z_k)`.

Rows are flattened silhouettes ``(B, S²)`` of 0/1.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from pgm3d._validation import check_inputs
from pgm3d.data.render import Camera, camera_rays, first_hits
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n

__all__ = ["MeshModel", "icosphere"]


class _Jitter(dist.Normal):
    """A Normal without a reparameterised sampler: the rendered mesh is a black box."""

    has_rsample = False

    def rsample(self, sample_shape=()):  # pragma: no cover - never called by Pyro
        raise NotImplementedError("the mesh goes through a black-box renderer: no rsample")


def icosphere(subdivisions: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit icosphere ``(vertices (V, 3), faces (F, 3))`` (trimesh's)."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    return torch.as_tensor(sphere.vertices), torch.as_tensor(sphere.faces)


class MeshModel(Model, PyroModule):
    """A deformable icosphere seen as a silhouette by a black-box renderer.

    :param int image_size: ``S``.
    :param int latent_dim: size of ``z``.
    :param int hidden: width of the encoder's and decoder's layers.
    :param int subdivisions: of the icosphere template (2: 162 vertices, 320 faces).
    :param float jitter: :math:`\\sigma`, the noise of the mesh realisations.
    :param float floor: :math:`\\epsilon`.
    """

    trained_by = "sgd"
    completion_methods = ()

    def __init__(self, image_size: int = 32, latent_dim: int = 8, hidden: int = 128, *,
                 subdivisions: int = 2, jitter: float = 0.1, floor: float = 0.05,
                 camera: Camera | None = None):  # fmt: skip
        super().__init__()
        if image_size < 4 or latent_dim < 1 or hidden < 1:
            raise ValueError("image_size must be >= 4, latent_dim and hidden >= 1")
        if not (jitter > 0 and 0 < floor < 0.5):
            raise ValueError("jitter must be > 0 and floor in (0, 0.5)")
        self.image_size, self.latent_dim, self.data_dim = image_size, latent_dim, image_size**2
        self.jitter, self.floor = jitter, floor
        self.camera = camera or Camera(0.0, 0.5, scale=1.2)
        verts, faces = icosphere(subdivisions)
        self.register_buffer("template", verts.float())
        self.register_buffer("faces", faces)
        V = len(verts)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                     nn.Linear(hidden, V))  # fmt: skip
        self.encoder = nn.Sequential(nn.Linear(image_size**2, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 2 * latent_dim))  # fmt: skip

    def offsets(self, z: torch.Tensor) -> torch.Tensor:
        """Radial offsets ``(..., V)`` of the template's vertices: radius ``0.6 exp(g(z))``."""
        return self.decoder(z)

    def vertices(self, radial: torch.Tensor) -> torch.Tensor:
        """Deformed vertices ``(..., V, 3)`` of log-radii offsets ``(..., V)``."""
        return self.template * (0.6 * radial.clamp(-3, 3).exp()).unsqueeze(-1)

    @torch.no_grad()
    def render(self, radial: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """Silhouettes ``(..., S²)`` of the meshes — no gradient: a black box."""
        lead = radial.shape[:-1]
        verts = self.vertices(radial.reshape(-1, radial.shape[-1]))
        origins, dirs = camera_rays(self.camera, self.image_size, dtype=verts.dtype,
                                    device=verts.device)  # fmt: skip
        o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
        out = torch.cat([first_hits(v, self.faces, o, d)[0].isfinite() for v in verts.split(chunk)])
        return out.to(radial.dtype).reshape(*lead, -1)

    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        check_inputs(self, x, mask)
        zero = x.new_zeros(self.latent_dim)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            m = pyro.sample("mesh", _Jitter(self.offsets(z), self.jitter).to_event(1))
            probs = self.floor + (1 - 2 * self.floor) * self.render(m)
            px = dist.Bernoulli(probs=probs, validate_args=False)
            if mask is not None:
                px = px.mask(mask)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        loc, raw = self.encoder(clean_missing(x, mask)).chunk(2, -1)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(loc, nn.functional.softplus(raw) + 1e-4).to_event(1))
            pyro.sample("mesh", _Jitter(self.offsets(z), self.jitter).to_event(1))

    @torch.no_grad()
    def sample(self, n: int, *, generator=None, mean: bool = False, return_latents: bool = False):
        """``n`` silhouettes ``(n, S, S)`` of meshes from the prior (pixel draws, or the
        rendered silhouettes with ``mean=True``)."""
        check_n(n)
        ref = self.template
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=ref.dtype,
                        device=ref.device)  # fmt: skip
        probs = self.render(self.offsets(z))
        if not mean:
            probs = torch.bernoulli(self.floor + (1 - 2 * self.floor) * probs, generator=generator)
        images = probs.reshape(n, self.image_size, self.image_size)
        return (images, z) if return_latents else images

    @classmethod
    def from_data(cls, data, *, latent_dim=None, hidden=None, **_) -> MeshModel:
        """Sized for rows of square silhouettes."""
        side = round(data.shape[1] ** 0.5)
        return cls(side, latent_dim or 8, hidden or 128)
