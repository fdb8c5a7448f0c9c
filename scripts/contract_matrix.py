"""Which entry point works on which kind of user model: every objective, the log-likelihood,
every completion back end, the diagnostics and saving, run briefly on the five models of
``examples/`` (Pyro's VAE, Pyro's CVAE, a pair of plain functions, a mixture with a discrete
latent, a model with a global latent). Prints a Markdown table: "works", or the message a
refusal gave.

    python scripts/contract_matrix.py
"""

import sys
import tempfile
from pathlib import Path

import pyro
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))

import discrete_latent
import global_latent
import plain_functions
import pyro_cvae
import pyro_vae

import pgm3d
from pgm3d.data import open_data, random_mask
from pgm3d.evaluation import evaluate_posteriors, psis_khat
from pgm3d.inference import OBJECTIVES, complete, fit, log_likelihood


def cases():
    """name -> (fresh model factory, data, context or None)."""
    split = open_data("digits", seed=0)
    digits = (split.train[:120].float() + 1) / 2
    xs, ys = pyro_cvae.quadrant_pairs(digits)
    torch.manual_seed(0)
    baseline = pyro_cvae.BaselineNet(32, 32)
    ppca = pgm3d.PPCA.random(10, 2, generator=torch.Generator().manual_seed(0))
    return {
        "Pyro's VAE": (lambda: pyro_vae.VAE(z_dim=4, hidden_dim=32), digits, None),
        "Pyro's CVAE": (lambda: pyro_cvae.CVAE(4, 32, 32, baseline), ys, {"xs": xs}),
        "plain functions": (
            lambda: (plain_functions.model, plain_functions.guide),
            ppca.sample(120, generator=torch.Generator().manual_seed(1)),
            None,
        ),
        "mixture (discrete c)": (discrete_latent.Mixture, discrete_latent.simulate(120), None),
        "global mean (global mu)": (
            lambda: global_latent.simulate(1)[0],
            global_latent.simulate(120)[1],
            None,
        ),
    }


def attempt(fn) -> str:
    try:
        fn()
    except (ValueError, NotImplementedError) as e:
        return "refused: " + str(e).split("\n")[0].replace("|", "/")
    return "works"


def column(make, x, context) -> dict:
    out = {}
    ctx = context
    rows = x[:6]
    rctx = None if ctx is None else {k: v[:6] for k, v in ctx.items()}
    mask = random_mask(rows.shape, 0.3, generator=torch.Generator().manual_seed(2))
    mask[:, 0] = True
    for name in OBJECTIVES.names():
        pyro.clear_param_store()
        torch.manual_seed(0)
        model = make()
        out[f"fit, {name}"] = attempt(
            lambda m=model, n=name: fit(
                m, x, n, context=ctx, num_particles=2, epochs=1, batch_size=60, progress=False
            )
        )
    pyro.clear_param_store()
    torch.manual_seed(0)
    model = make()
    fit(model, x, "elbo", context=ctx, epochs=1, batch_size=60, progress=False)
    out["log_likelihood"] = attempt(lambda: log_likelihood(model, rows, context=rctx))
    out["log_likelihood, hidden entries"] = attempt(
        lambda: log_likelihood(model, rows, mask, context=rctx, num_samples=20)
    )
    for method in ["pseudo_gibbs", "mwg", "importance", "nuts", "exact"]:
        opts = {"warmup": 5, "thin": 1, "num_samples": 5} if method != "importance" else {}
        opts = {} if method == "exact" else {**opts, "chains": 2, "seed": 0}
        out[f"complete, {method}"] = attempt(
            lambda m=method, o=opts: complete(model, rows, mask, m, context=rctx, **o)
        )
    out["psis_khat"] = attempt(lambda: psis_khat(model, rows, context=rctx, num_samples=20))
    table = evaluate_posteriors(
        model,
        rows,
        mask,
        ["exact", "importance"],
        options={"importance": {"seed": 0}},
        context=rctx,
    )
    out["evaluate_posteriors, [exact, importance]"] = "rows: " + "; ".join(
        f"{m} " + ("failed" if m in table.errors else "measured") for m in table.rows
    )
    with tempfile.TemporaryDirectory() as tmp:
        # a user's model is never rebuilt from a file: it loads into one the user builds
        out["save / load(into=)"] = attempt(
            lambda: pgm3d.load(
                pgm3d.save(pgm3d.wrap(*_parts(model)), Path(tmp) / "m.pt"),
                into=pgm3d.wrap(*_parts(make())),
            )
        )
    return out


def _parts(model):
    return model if isinstance(model, tuple) else (model,)


def main():
    results = {name: column(*spec) for name, spec in cases().items()}
    names = list(results)
    print("| entry point | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for row in next(iter(results.values())):
        print(f"| {row} | " + " | ".join(results[n][row] for n in names) + " |")


if __name__ == "__main__":
    main()
