"""Costs of the inference back ends, as ratios measured in one run (issue 3).

    python benchmarks/inference.py [--quick]

1. IWAE with K particles vectorised vs K sequential single-particle passes (speed-up).
2. Peak memory of ``log_likelihood`` at K = 10,000 with chunking vs in one chunk (each in a
   fresh subprocess, peak resident set size above the process's baseline).
3. One MCMC sweep (all chains, all rows) vs one encoder + one decoder pass on the same batch
   (goal <= 1.5x).
4. One SVI step of a VAE through pgm3d/Pyro vs the same loss hand-written in PyTorch
   (goal <= 1.15x).

The model is pgm3d's VAE on the 8x8 digits (D = 64), float32, on this machine's CPU threads.
Times are the fastest of interleaved rounds (see benchmarks/missing_fa.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pyro
import torch
from _timing import interleaved, median_ratio

from pgm3d.contract import as_model
from pgm3d.data.images import load_digits
from pgm3d.inference import OBJECTIVES
from pgm3d.inference.iwae import iwae_bound
from pgm3d.inference.samples import ChainState, decode_latents
from pgm3d.inference.trace import log_weights, plate_nesting, row_latents, trace_guide
from pgm3d.models import VAE


def ratio(t, a, b) -> float:
    return median_ratio(t[a], t[b])


def model_and_data(hidden, latent, rows):
    torch.manual_seed(0)
    vae = VAE(64, latent, hidden=hidden)
    x = load_digits(dtype=torch.float32).x[:rows]
    return vae, x


def bench_iwae(rounds):
    print("\n## 1. IWAE: K vectorised particles vs K sequential passes (loss + backward)\n")
    print("| K | vectorised ms | sequential ms | speed-up |\n|---|---|---|---|")
    vae, x = model_and_data((128,), 8, 64)
    nesting = plate_nesting(vae.model, vae.guide, x, None)
    for K in (10, 100):
        vectorised = OBJECTIVES["iwae"](vae, num_particles=K)

        def run_vectorised(vectorised=vectorised):
            vectorised(x).backward()

        def run_sequential(K=K):
            lw = torch.cat(
                [log_weights(vae.model, vae.guide, x, None, 1, nesting).total for _ in range(K)]
            )
            (-iwae_bound(lw).sum()).backward()

        t = interleaved({"vec": run_vectorised, "seq": run_sequential}, rounds)
        print(
            f"| {K} | {1e3 * min(t['vec']):.1f} | {1e3 * min(t['seq']):.1f} | "
            f"{ratio(t, 'seq', 'vec'):.1f}x |"
        )


_MEMORY_CHILD = """
import json, resource, sys, torch
from pgm3d.inference import log_likelihood
from pgm3d.data.images import load_digits
from pgm3d.models import VAE
torch.manual_seed(0)
vae = VAE(64, 8, hidden=(128,))
x = load_digits(dtype=torch.float32).x[:64]
log_likelihood(vae, x, num_samples=10, chunk_size=10)  # warm up allocator and imports
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
chunk = None if sys.argv[1] == "auto" else int(sys.argv[1])
t = __import__("time").perf_counter()
ll = log_likelihood(vae, x, num_samples=10000, chunk_size=chunk)
seconds = __import__("time").perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mib": (peak - base) / 1024, "seconds": seconds, "ll": float(ll.mean())}))
"""


def bench_memory():
    print("\n## 2. log_likelihood, K = 10,000, B = 64 rows: peak memory above baseline\n")
    print("| chunk size | peak extra MiB | seconds | mean estimate |\n|---|---|---|---|")
    for chunk in ("auto", "10000"):
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, chunk], capture_output=True, text=True, check=True
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        label = "auto (1024 here)" if chunk == "auto" else "10000 (no chunking)"
        print(f"| {label} | {r['mib']:.0f} | {r['seconds']:.2f} | {r['ll']:.2f} |")


def bench_mcmc(rounds, chains=4, rows=256):
    from pgm3d.inference import mwg, pseudo_gibbs

    print(f"\n## 3. One sweep of {chains} chains x {rows} rows vs one encoder + decoder pass\n")
    print("| network | step | ms | vs encoder + decoder |\n|---|---|---|---|")
    for hidden in ((256, 256), (1024, 1024)):
        vae, x = model_and_data(hidden, 16, rows)
        mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.5
        xr, mr = x.repeat(chains, 1), mask.repeat(chains, 1)
        pair = as_model(vae)
        s = pair.check(xr, mr)
        bound = pair.bind()
        with torch.no_grad():
            trace = trace_guide(bound.guide, xr, mr, 1, s.nesting, sites=s)
            latents = row_latents(trace, 1, xr.shape[0], s.nesting, s)
            mean = decode_latents(bound, latents, xr, s).mean[0]
            start = ChainState(latents, torch.where(mr, xr, mean), mean, xr.new_zeros(xr.shape[0]))
            ctx = {"bound": bound, "structure": s, "x": xr, "mask": mr}
            states = {"mwg": start, "pseudo_gibbs": start}

            def networks(vae=vae, start=start):
                vae.decode(vae.encoder.distribution(start.x).rsample())

            def sweep(name, module, ctx=ctx, states=states):
                states[name] = module._step(states[name], ctx)  # chains advance as in use

            t = interleaved(
                {
                    "enc+dec": networks,
                    "pseudo_gibbs": lambda sweep=sweep: sweep("pseudo_gibbs", pseudo_gibbs),
                    "mwg": lambda sweep=sweep: sweep("mwg", mwg),
                },
                rounds,
            )
        label = "-".join(map(str, hidden))
        for name in ("enc+dec", "pseudo_gibbs", "mwg"):
            print(
                f"| {label} | {name} | {1e3 * min(t[name]):.2f} | "
                f"{ratio(t, name, 'enc+dec'):.2f}x |"
            )


def bench_svi(rounds, batch=256):
    print(f"\n## 4. One ELBO step (1 particle, Adam), batch {batch}: pgm3d/Pyro vs plain PyTorch\n")
    print("| network | pgm3d ms | plain ms | ratio |\n|---|---|---|---|")
    for hidden in ((128,), (512, 512)):
        vae, x = model_and_data(hidden, 16, batch)
        objective = OBJECTIVES["elbo"](vae)
        opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
        scale = 1797 / batch

        def pgm3d_step(opt=opt, objective=objective, x=x, scale=scale):
            opt.zero_grad()
            objective(x, scale=scale).backward()
            opt.step()

        def plain_step(opt=opt, vae=vae, x=x, scale=scale):
            opt.zero_grad()
            q = vae.encoder.distribution(x)  # same networks, hand-written ELBO
            z = q.rsample()
            prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
            elbo = vae.decode(z).log_prob(x) + prior - q.log_prob(z)
            (-scale * elbo.sum()).backward()
            opt.step()

        t = interleaved({"pgm3d": pgm3d_step, "plain": plain_step}, rounds)
        print(
            f"| {'-'.join(map(str, hidden))} | {1e3 * min(t['pgm3d']):.2f} | "
            f"{1e3 * min(t['plain']):.2f} | {ratio(t, 'pgm3d', 'plain'):.2f}x |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else 10
    pyro.set_rng_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32")
    bench_iwae(rounds)
    bench_memory()
    bench_mcmc(rounds)
    bench_svi(rounds)


if __name__ == "__main__":
    main()
