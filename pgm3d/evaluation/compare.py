"""One table comparing completion back ends on the same model, data and mask."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from pgm3d._validation import as_data
from pgm3d.data.batches import gather_rows, is_stream
from pgm3d.evaluation.diagnostics import guide_from, kl_to_exact, psis_khat
from pgm3d.evaluation.imputation import imputation_mse
from pgm3d.evaluation.readings import ESS_FLOOR, KHAT_LIMIT, RHAT_LIMIT, reading
from pgm3d.missing import missing_as_nan

__all__ = ["PosteriorComparison", "evaluate_posteriors"]

COLUMNS = {
    "seconds": "time (s)",
    "mse": "imputation MSE",
    "mse_to_exact": "MSE to exact E[x_m ∣ x_v]",
    "kl_to_exact": "KL(q ‖ exact)",
    "khat": "PSIS k-hat (median row)",
    "max_rhat": "max R-hat",
    "min_ess": "min ESS",
}

#: one line per column: what it measures and what good looks like
_GUIDE = {
    "mse": "squared error of the filled entries against the truth; lower is better.",
    "mse_to_exact": "distance of the completion from the exact conditional mean; 0 is exact.",
    "kl_to_exact": "KL of the method's Gaussian posterior to the exact one, nats per row; 0 is "
    "exact, thousands mean its mass sits far from the posterior.",
    "khat": f"PSIS k-hat of the method's posterior as an importance proposal, for the median "
    f"row; below {KHAT_LIMIT} its weights are reliable, -inf when it is that row's exact "
    "posterior.",
    "max_rhat": f"worst split R-hat over latents and rows; at most {RHAT_LIMIT} when the chains "
    "agree, inf when a chain never moved.",
    "min_ess": f"fewest effective draws of any latent; {ESS_FLOOR:.0f} or more for a trustworthy "
    "mean.",
}


@dataclass
class PosteriorComparison:
    """Rows of metrics, one per method; NaN where a metric does not apply.

    :ivar rows: method name -> metric name -> value.
    :ivar errors: method name -> why the method failed (its row holds no metrics).
    :ivar khat_rows: method name -> ``(B,)`` PSIS k-hat of each row (methods with a density).
    :ivar draws: method name -> ``(chain, draw, row, ...)`` draws of the main latent (samplers
        with several chains), for trace and rank plots.
    """

    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    khat_rows: dict[str, torch.Tensor] = field(default_factory=dict)
    draws: dict[str, torch.Tensor] = field(default_factory=dict)

    def to_markdown(self, digits: int = 4, explain: bool = True) -> str:
        """The table; a poor diagnostic value is marked ⚠, and with ``explain`` the table is
        followed by a reading of each column (what good looks like) and of each poor value
        (:mod:`pgm3d.evaluation.readings`)."""
        used = [
            c
            for c in COLUMNS
            if any(not math.isnan(r.get(c, math.nan)) for r in self.rows.values())
        ]
        note = bool(self.errors)
        head = "| method | " + " | ".join(COLUMNS[c] for c in used)
        head += " | note |" if note else " |"
        lines = [head, "|" + "---|" * (len(used) + 1 + note)]
        flagged = []
        for name, row in self.rows.items():
            cells = []
            for c in used:
                value = row.get(c, math.nan)
                if math.isnan(value):
                    cells.append("—")
                    continue
                poor, text = reading(c, value)
                cells.append(f"{value:.{digits}g}" + (" ⚠" if poor else ""))
                if poor:
                    flagged.append(f"- ⚠ **{name}**, {COLUMNS[c]}: {text}")
            if note:
                reason = self.errors.get(name, "")
                cells.append(f"failed: {reason}".replace("|", "/") if reason else "")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        text = "\n".join(lines) + "\n"
        if explain and used:
            guide = [f"- {COLUMNS[c]}: {_GUIDE[c]}" for c in used if c in _GUIDE]
            text += "\nReading the table:\n\n" + "\n".join(guide) + "\n"
            if flagged:
                text += "\n" + "\n".join(flagged) + "\n"
        return text

    def __str__(self) -> str:
        return self.to_markdown()


def evaluate_posteriors(
    model,
    x,
    mask: torch.Tensor | None,
    methods,
    *,
    x_true: torch.Tensor | None = None,
    num_khat_samples: int = 500,
    options: dict | None = None,
    scored: torch.Tensor | None = None,
    context=None,
) -> PosteriorComparison:
    """Run each completion method and measure it.

    Columns: wall time; imputation MSE against ``x_true`` (when given); for models with a
    closed form, the MSE of the completion to the exact conditional mean and the KL of a
    Gaussian posterior to the exact one; PSIS :math:`\\hat k` of the method's posterior used as
    an importance proposal (methods whose posterior has a density); and for samplers the
    worst split R-hat and ESS. A method that fails (it does not apply to the model, say) gets
    a row with its reason in :attr:`PosteriorComparison.errors`; the others are still run.

    :param model: any model :func:`~pgm3d.contract.as_model` accepts.
    :param x: ``(B, D)`` rows (tensor or array), or a ``Dataset``/``DataLoader`` of rows
        (:mod:`pgm3d.data.batches`; gathered first: the comparison needs every row at once).
    :param mask: bool ``(B, D)``, True = observed (None: the NaN entries are the missing ones).
    :param methods: names or method objects, as :func:`~pgm3d.inference.complete` takes them.
    :param options: per-method options, ``{name: {...}}``.
    :param scored: bool ``(B, D)``, the hidden entries whose completion is scored (default:
        every missing entry); leave out entries that were never observed (absent parts).
    :param context: the model's row-aligned conditioning inputs, passed to every method.
    """
    if is_stream(x):
        if mask is not None or context is not None:
            raise ValueError("with a Dataset or DataLoader, give masks and context in its rows")
        x, mask, context = gather_rows(x)  # the comparison needs every row at once
    elif isinstance(x, np.ndarray):
        x = as_data(x, "x")
    mask = missing_as_nan(x, mask)
    if mask is None:
        mask = torch.ones_like(x, dtype=torch.bool)
    with torch.no_grad():
        return _evaluate(
            model, x, mask, methods, x_true, num_khat_samples, options or {}, scored, context
        )


def _evaluate(model, x, mask, methods, x_true, num_khat_samples, options, scored, context):
    from pgm3d.inference import complete
    from pgm3d.models.base import completion_methods

    exact = None
    if "exact" in completion_methods(model):
        exact = complete(model, x, mask, "exact").x
    table = PosteriorComparison()
    for method in methods:
        name = method if isinstance(method, str) else getattr(method, "name", type(method).__name__)
        start = time.perf_counter()
        try:
            given = {} if context is None else {"context": context}
            result = complete(model, x, mask, method, **given, **options.get(name, {}))
        except Exception as e:  # one failing back end must not discard the others' rows
            table.rows[name] = {"seconds": time.perf_counter() - start}
            table.errors[name] = f"{type(e).__name__}: {e}"
            continue
        row = {"seconds": time.perf_counter() - start}
        missing = ~mask if scored is None else scored.to(mask.device)
        if x_true is not None and bool(missing.any()):
            row["mse"] = imputation_mse(x_true, result.x, ~missing).mean
        if exact is not None and bool(missing.any()):
            row["mse_to_exact"] = float((result.x - exact)[missing].pow(2).mean())
        if exact is not None and result.z is not None:
            try:
                row["kl_to_exact"] = float(kl_to_exact(model, x, mask, guide=result.z).mean())
            except ValueError:
                pass  # not a Gaussian posterior (samples): the column does not apply
        if result.z is not None and _has_density(result.z):  # None: a model with no latent
            k = psis_khat(model, x, mask, guide=guide_from(result.z),
                          num_samples=num_khat_samples, warn=False)  # fmt: skip
            # the median row: a row whose proposal is exact has k-hat -inf, which a mean would
            # spread to the whole column
            row["khat"] = float(k.double().median())
            table.khat_rows[name] = k.detach().cpu()
        diagnostics = getattr(result, "diagnostics", None)
        if diagnostics is not None and result.samples["x"].shape[0] > 1:
            try:
                d = diagnostics(warn=False)  # the table flags poor values itself
                latent = "z" if "z" in result.samples else next(
                    n for n in result.samples if n != "x")  # fmt: skip
                table.draws[name] = result.samples[latent].detach().cpu()
                row["max_rhat"] = float(d["rhat"].max())
                row["min_ess"] = float(d["ess"].min())
            except ValueError:
                pass  # too few chains or draws for R-hat
        table.rows[name] = row
    return table


def _has_density(d) -> bool:
    import pyro.distributions as dist

    return not isinstance(d, dist.Empirical)
