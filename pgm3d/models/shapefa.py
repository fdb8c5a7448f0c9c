r"""ShapeFA (Nash & Williams 2017; thesis eqs. 3.7–3.9): a two-layer linear-Gaussian model of
part-segmented shapes, the linear counterpart of :class:`~pgm3d.models.ShapeVAE`,

.. math::
    z \sim \mathcal{N}(0, I), \qquad
    u_p = A_p z + c_p + \eta_p,\ \eta_p \sim \mathcal{N}(0, \Phi_p), \qquad
    x_p = B_p u_p + \mu_p + \epsilon_p,\ \epsilon_p \sim \mathcal{N}(0, \Psi_p),

for the present parts ``p`` of a shape (absent parts are not generated), with diagonal
``Φ_p`` and ``Ψ_p``. It is fitted greedily layer by layer: a factor analyser per part on the
shapes that have the part (bottom layer ``B_p, μ_p, Ψ_p``), then a factor analyser with missing
data on the parts' posterior means ``E[u_p | x_p]``, absent parts missing (top layer
``A, c, Φ``).

Integrating out ``u`` keeps the model linear-Gaussian: with ``η_p = Φ_p^{1/2} ξ_p``,

.. math::
    x = \big[\,B A \;\; B\,\Phi^{1/2}\big] \begin{bmatrix} z \\ \xi \end{bmatrix}
        + (B c + \mu) + \epsilon,

a factor analyser with latent ``(z, ξ)``, block-diagonal ``B`` and diagonal noise ``Ψ``. So
ShapeFA *is* a :class:`~pgm3d.models.FactorAnalysis` over the point entries: its exact
log-likelihood, exact posterior and the ``complete`` methods ``"exact"``, ``"fca"`` and
``"sca"`` apply unchanged, and an absent part is simply a set of missing entries (the marginal
of the visible parts is exactly the model above). The first ``latent_dim`` latent coordinates
are ``z``.

Rows are the point entries of :meth:`~pgm3d.data.ShapeSet.flat` (no existence columns); use
:meth:`ShapeFA.data` for rows and a mask that hides absent parts, and
:meth:`ShapeFA.log_joint` for ``log p(x_v, e)`` including the existence prior.
"""

from __future__ import annotations

import torch

from pgm3d._progress import progress_bar
from pgm3d.models.factor_analysis import FactorAnalysis, quiet_em
from pgm3d.models.part_rows import ExistencePrior

__all__ = ["ShapeFA"]


class ShapeFA(ExistencePrior, FactorAnalysis):
    """ShapeFA as the composed factor analyser; build it with :meth:`fit_shapes`.

    :ivar int top_dim: size of ``z``. :ivar int part_dim: size of each ``u_p``.
    :ivar list part_points: points per part. :ivar int width: 6 with normals, else 3.
    :ivar dict layers: after :meth:`fit_shapes`, ``"bottom"``: each part's factor analyser
        (``B_p, μ_p, Ψ_p``) and ``"top"``: the top one (``A, c, Φ``); kept for inspection only.
    """

    def __init__(
        self, W, mu, psi, *, top_dim, part_dim, part_points, width, existence, smoothing=0.0
    ):
        super().__init__(W, mu, psi)
        self.top_dim, self.part_dim, self.width = top_dim, part_dim, width
        self.part_points = list(part_points)
        self.init_existence(existence, [m * width for m in self.part_points], smoothing)
        self.layers: dict | None = None

    @classmethod
    def from_data(cls, data, *, latent_dim=None, part_dim=None, progress=None, **_) -> ShapeFA:
        """Fitted layer by layer to a ShapeSet in float64 (:meth:`fit_shapes`): ``latent_dim``
        8, ``part_dim`` 16."""
        return quiet_em(
            cls.fit_shapes,
            data.to(dtype=torch.float64),
            latent_dim or 8,
            part_dim or 16,
            progress=progress,
        )

    @classmethod
    def fit_shapes(
        cls,
        shapes,
        latent_dim: int = 8,
        part_dim: int = 16,
        *,
        normals: bool = True,
        max_iter: int = 500,
        tol: float = 1e-6,
        existence_smoothing: float = 0.0,
        progress: bool | None = None,
    ) -> ShapeFA:
        """Greedy layer-wise maximum likelihood on a :class:`~pgm3d.data.ShapeSet`.

        :param int latent_dim: size of ``z``. :param int part_dim: size of each ``u_p``.
        :raises ValueError: a part present in too few shapes, or sizes that do not fit.
        """
        x = shapes.flat(normals=normals)
        width = 6 if normals else 3
        counts = torch.bincount(shapes.part_of_point.cpu(), minlength=shapes.num_parts).tolist()
        sizes = [m * width for m in counts]
        bottoms, posteriors = [], []
        start = 0
        for k in progress_bar(range(shapes.num_parts), desc="ShapeFA parts", progress=progress):
            present = shapes.existence[:, k]
            name = shapes.part_names[k]
            if int(present.sum()) <= part_dim:
                raise ValueError(
                    f"part {name!r} is present in {int(present.sum())} shapes; "
                    f"part_dim = {part_dim} needs more"
                )
            xp = x[present, start : start + sizes[k]]
            fa = FactorAnalysis.fit(xp, part_dim, max_iter=max_iter, tol=tol, progress=False)
            u = torch.zeros(len(x), part_dim, dtype=x.dtype, device=x.device)
            with torch.no_grad():
                u[present] = fa.exact_posterior(xp).mean
            bottoms.append(fa)
            posteriors.append(u)
            start += sizes[k]
        U = torch.cat(posteriors, -1)
        u_mask = shapes.existence.to(x.device).repeat_interleave(part_dim, -1)
        top = FactorAnalysis.fit_missing(
            U, u_mask, latent_dim, max_iter=max_iter, tol=tol, progress=progress
        )
        B = torch.block_diag(*[fa.W.detach() for fa in bottoms])  # (D, P * U)
        W = torch.cat([B @ top.W.detach(), B * top.psi.detach().sqrt()], -1)
        mu = B @ top.mu.detach() + torch.cat([fa.mu.detach() for fa in bottoms])
        psi = torch.cat([fa.psi.detach() for fa in bottoms])
        model = cls(
            W,
            mu,
            psi,
            top_dim=latent_dim,
            part_dim=part_dim,
            part_points=counts,
            width=width,
            existence=shapes.existence.cpu(),
            smoothing=existence_smoothing,
        )
        # the fitted layers, for inspection (the composed W, mu, psi are what inference uses)
        model.layers = {"bottom": bottoms, "top": top}
        return model

    def data(self, shapes, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Point rows ``(N, D)`` and a mask hiding absent parts (and ``mask``'s False entries)."""
        x = shapes.flat(normals=self.width == 6).to(self.W)
        if x.shape[-1] != self.data_dim:
            raise ValueError(
                f"the shapes have {x.shape[-1]} point entries, the model {self.data_dim}"
            )
        observed = shapes.flat_mask(normals=self.width == 6).to(x.device)
        return x, observed if mask is None else observed & mask.to(x.device)

    def log_joint(
        self, x: torch.Tensor, mask: torch.Tensor, existence: torch.Tensor
    ) -> torch.Tensor:
        """``log p(e) + log p(x_v | e)`` per row: the existence prior plus the exact marginal of
        the observed entries of present parts."""
        e = existence.to(x.device)
        keep = mask & self.entry_mask(e)
        return self.existence_distribution().log_prob(e.to(x.dtype)) + self.log_likelihood(x, keep)

    def exact_log_likelihood(self, x, mask, existence=None) -> torch.Tensor:
        """:meth:`log_joint`: the existence prior plus the exact marginal of the points."""
        if existence is None:
            raise ValueError("ShapeFA's log-likelihood needs the shapes' existence flags")
        return self.log_joint(x, mask, existence)

    def observed_entries(self, mask: torch.Tensor, existence=None) -> torch.Tensor:
        """Observed entries of present parts, per row."""
        if existence is None:
            return mask.sum(-1)
        return (mask & self.entry_mask(existence.to(mask.device))).sum(-1)

    def sample_shapes(self, n: int, *, generator=None, mean: bool = False) -> dict:
        """:meth:`sample_points`, with the points and normals as rows under ``"rows"``."""
        shapes = self.sample_points(n, generator=generator, mean=mean)
        parts = [shapes["points"]] + ([shapes["normals"]] if shapes["normals"] is not None else [])
        return {**shapes, "rows": torch.cat(parts, -1).reshape(n, -1)}

    def sample_points(
        self, n: int, *, generator: torch.Generator | None = None, mean: bool = False
    ) -> dict:
        """``n`` shapes: existences from ``p(e)``, then the present parts' points and normals
        (their means ``W z + mu`` given ``z`` with ``mean=True``), as ``points (n, P, 3)``,
        ``normals`` (None without), ``point_mask (n, P)`` and ``existence (n, K)``."""
        e = self.existence_distribution().sample((n,), generator=generator).to(self.W.device)
        if mean:
            z = torch.randn(n, self.latent_dim, generator=generator, dtype=self.W.dtype)
            x = z.to(self.W.device) @ self.W.detach().T + self.mu.detach()
        else:
            x = self.sample(n, generator=generator)
        points = x.reshape(n, -1, self.width)
        return {
            "points": points[..., :3],
            "normals": points[..., 3:] if self.width == 6 else None,
            "point_mask": e[:, self.part_of_entry[:: self.width]],
            "existence": e,
        }
