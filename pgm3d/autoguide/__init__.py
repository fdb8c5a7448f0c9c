r"""Write only the model: amortised, mask-aware guides built from any model the library accepts.

Pyro's autoguides learn one posterior per training row, so they cannot encode a new row: no
completion of new data, no log-likelihood on a test set. :class:`AutoGuide` instead traces the
model once, finds its local latents (inside the data plate) and its global ones, and builds an
encoder of the filled data *and the mask* to the parameters of each local latent's posterior,
in one of five families, one argument apart (:data:`FAMILIES`): ``"diag"``, ``"lowrank"``,
``"full"`` Gaussians, a normalising ``"flow"``, and ``"natural"``, a Gaussian in natural
parameters to which each observed entry adds a term. Global latents get a non-amortised part;
discrete local latents an amortised Categorical or Bernoulli.

>>> pair = pgm3d.auto(model_fn, "full")            # doctest: +SKIP
>>> fit(pair, train, "elbo"); log_likelihood(pair, test); complete(pair, x, mask, "importance")

Why the mask: the exact posterior of factor analysis given the observed entries,
:math:`\mathcal{N}(\Sigma_v W_v^\top \Psi_v^{-1}(x_v - \mu_v), \Sigma_v)` with
:math:`\Sigma_v = (I + W_v^\top \Psi_v^{-1} W_v)^{-1}`, depends on the pattern :math:`v`
(thesis ch. 4); FCA, SCA and the denoising encoder are fixed approximations of that
dependence, which an encoder that reads the mask can learn (``aware=False`` is the baseline
that cannot), and which the ``"natural"`` family holds by construction: the natural parameters
:math:`(\Sigma_v^{-1}, \Sigma_v^{-1} m_v)` are sums of one term per observed entry.
"""

from pgm3d.autoguide.guide import AutoGuide, auto
from pgm3d.autoguide.heads import FAMILIES

__all__ = ["FAMILIES", "AutoGuide", "auto"]
