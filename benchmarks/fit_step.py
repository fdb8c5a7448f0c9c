"""Time per training step of ``pgm3d.fit`` against plain PyTorch and plain Pyro (issue 19).

    python benchmarks/fit_step.py [--quick]

Five epochs of the digits VAE (1,797 rows, batch 128, Adam, one particle) four ways,
interleaved round by round so each sees the same machine load:

* **plain**: the ELBO written by hand in PyTorch on the same networks (the floor);
* **objective**: pgm3d's ``OBJECTIVES["elbo"]`` in a loop of the user's own;
* **fit**: ``pgm3d.fit(..., "elbo", epochs=5)`` (its per-call set-up included: checks of the
  whole data, the first trace, shuffling each epoch);
* **Pyro SVI**: ``pyro.infer.SVI`` with ``Trace_ELBO`` and ``pyro.optim.Adam`` on the VAE's
  model and guide, Pyro's validation at its default (on), as a Pyro user runs it.

Ratios are medians over rounds of each candidate's epoch time over plain's. Goals (issue 19):
fit <= 1.3x plain at hidden 128 and <= 1.15x at 512 x 512, and below Pyro SVI at both. Set
``OMP_NUM_THREADS=1`` for steadier ratios on a shared machine.
"""

from __future__ import annotations

import argparse

import pyro
import pyro.optim
import torch
from _timing import interleaved, median_ratio
from pyro.infer import SVI, Trace_ELBO

from pgm3d.data.images import load_digits
from pgm3d.inference import OBJECTIVES, fit
from pgm3d.models import VAE

BATCH = 128
EPOCHS = 5  # per call: fit's set-up counts once per call, as in a run


def candidates(hidden: tuple[int, ...], x: torch.Tensor) -> dict:
    """``EPOCHS`` epochs per call, each candidate on its own copy of the same initial VAE."""
    torch.manual_seed(0)
    vaes = {name: VAE(64, 16, hidden=hidden) for name in ("plain", "objective", "fit", "svi")}
    for vae in vaes.values():
        vae.load_state_dict(vaes["plain"].state_dict())
    N = x.shape[0]
    batches = [x[i : i + BATCH] for i in range(0, N, BATCH)]
    opt_plain = torch.optim.Adam(vaes["plain"].parameters(), lr=1e-3, foreach=True)
    objective = OBJECTIVES["elbo"](vaes["objective"])
    objective(batches[0])  # trace once, as fit does
    opt_obj = torch.optim.Adam(vaes["objective"].parameters(), lr=1e-3, foreach=True)
    svi_vae = vaes["svi"]

    def model(xb):  # registered with pyro.module, as Pyro's VAE example does
        pyro.module("vae", svi_vae)
        return svi_vae.model(xb)

    def guide(xb):
        pyro.module("vae", svi_vae)
        return svi_vae.guide(xb)

    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())

    def plain():
        vae = vaes["plain"]
        for xb in batches * EPOCHS:
            opt_plain.zero_grad()
            q = vae.encoder.distribution(xb)
            z = q.rsample()
            prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
            elbo = vae.decode(z).log_prob(xb) + prior - q.log_prob(z)
            (-(N / len(xb)) * elbo.sum()).backward()
            opt_plain.step()

    def own_loop():
        for xb in batches * EPOCHS:
            opt_obj.zero_grad()
            objective(xb, scale=N / len(xb)).backward()
            opt_obj.step()

    def pgm3d_fit():
        fit(vaes["fit"], x, "elbo", epochs=EPOCHS, batch_size=BATCH, lr=1e-3, progress=False)

    def pyro_svi():
        # the mean loss per row times N, as the others: Pyro's VAE example scales by hand too
        with pyro.poutine.scale(scale=N / BATCH):
            for xb in batches * EPOCHS:
                svi.step(xb)

    return {"plain": plain, "objective": own_loop, "fit": pgm3d_fit, "Pyro SVI": pyro_svi}


def main(quick: bool) -> None:
    x = load_digits(dtype=torch.float32).x
    rounds = 3 if quick else 10
    steps = -(-x.shape[0] // BATCH) * EPOCHS
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); digits VAE, "
          f"batch {BATCH}, {steps} steps a call; ms per step (fastest round), ratio to "
          f"plain (median over {rounds} interleaved rounds)\n")  # fmt: skip
    print("| hidden | plain | objective | fit | Pyro SVI |\n|---|---|---|---|---|")
    for hidden in ((128,), (512, 512)):
        pyro.clear_param_store()
        t = interleaved(candidates(hidden, x), rounds, inner=1)
        cells = [f"{1e3 * min(t['plain']) / steps:.2f} ms"]
        for name in ("objective", "fit", "Pyro SVI"):
            cells.append(
                f"{1e3 * min(t[name]) / steps:.2f} ms ({median_ratio(t[name], t['plain']):.2f}x)"
            )
        print(f"| {'x'.join(map(str, hidden))} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    main(parser.parse_args().quick)
