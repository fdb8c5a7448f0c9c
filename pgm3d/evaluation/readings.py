"""What a diagnostic's value means: thresholds from the papers that define them, a one-line
reading for the report, and a warning from the API when a value is poor.

* split :math:`\\hat R` (rank-normalised; Vehtari et al. 2021): good at or below 1.01; larger
  means the chains have not mixed (``inf``: a chain never moved);
* bulk ESS (Vehtari et al. 2021): at least 100 per quantity for estimates of a mean and its
  Monte-Carlo error to be trusted (they recommend ~100 per chain for 4 chains);
* PSIS :math:`\\hat k` (Vehtari et al. 2024, Yao et al. 2018): below 0.7 importance
  weights with this proposal are reliable, 0.5–0.7 slowly converging, above 0.7 not reliable
  (the proposal's tails are too light); ``-inf`` when every weight is equal (the proposal is
  the exact posterior);
* KL to the exact posterior (nats per row): 0 is exact; values in the thousands mean the
  approximation puts its mass far from the posterior (typically a collapsed or overconfident
  Gaussian in high dimension).
"""

from __future__ import annotations

import math
import warnings

__all__ = [
    "ESS_FLOOR",
    "KHAT_LIMIT",
    "RHAT_LIMIT",
    "PoorDiagnosticWarning",
    "reading",
    "warn_if_poor",
]

#: split R-hat above this: the chains have not mixed (Vehtari et al. 2021)
RHAT_LIMIT = 1.01
#: bulk ESS below this: too few effective draws for a mean and its error (Vehtari et al. 2021)
ESS_FLOOR = 100.0
#: PSIS k-hat above this: importance weights are unreliable (Vehtari et al. 2024)
KHAT_LIMIT = 0.7


class PoorDiagnosticWarning(UserWarning):
    """A diagnostic says the result should not be trusted as it is (filter it with
    ``warnings.simplefilter("ignore", PoorDiagnosticWarning)``)."""


def _poor(metric: str, value: float) -> bool | None:
    """Whether ``value`` of ``metric`` is poor (None: no threshold applies)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if metric == "max_rhat":
        return not value <= RHAT_LIMIT
    if metric == "min_ess":
        return value < ESS_FLOOR
    if metric == "khat":
        return value > KHAT_LIMIT
    return None


_GOOD = {
    "max_rhat": f"good at or below {RHAT_LIMIT} (the chains agree)",
    "min_ess": f"good from {ESS_FLOOR:.0f} effective draws",
    "khat": f"good below {KHAT_LIMIT} (importance weights from this posterior are reliable)",
    "kl_to_exact": "0 is exact; nats per row",
    "mse_to_exact": "0 is the exact conditional mean",
    "mse": "lower is better; on the hidden entries",
    "seconds": "wall time of the completion",
}


def reading(metric: str, value: float) -> tuple[bool | None, str]:
    """``(poor, text)``: whether the value is poor (None: no threshold) and a one-line reading
    of it for a person."""
    poor = _poor(metric, value)
    good = _GOOD.get(metric, "")
    if metric == "max_rhat" and value == math.inf:
        return True, "inf: a chain never moved (no within-chain variance); " + good
    if metric == "khat" and value == -math.inf:
        return False, "-inf: every importance weight equal, the posterior is exact"
    if metric == "khat" and value == math.inf:
        return True, "inf: the weights have no usable tail; " + good
    if poor is True:
        what = {
            "max_rhat": "the chains disagree: run longer or warm up more",
            "min_ess": "too few effective draws: keep more draws or thin less",
            "khat": "the proposal's tails are too light: its estimates are unreliable",
        }[metric]
        return True, f"{value:.3g}: {what} ({good})"
    if metric == "kl_to_exact" and value is not None and value > 100:
        return None, f"{value:.3g}: far from the exact posterior ({good})"
    return poor, f"{value:.3g} ({good})" if good else f"{value:.3g}"


def warn_if_poor(what: str, **values: float) -> None:
    """Warn (:class:`PoorDiagnosticWarning`) for each value that is poor, saying what it
    means; ``values`` by metric name (``max_rhat``, ``min_ess``, ``khat``)."""
    for metric, value in values.items():
        poor, text = reading(metric, value)
        if poor:
            name = {"max_rhat": "R-hat", "min_ess": "ESS", "khat": "PSIS k-hat"}[metric]
            warnings.warn(f"{what}: {name} {text}", PoorDiagnosticWarning, stacklevel=3)
