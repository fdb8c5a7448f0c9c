"""One table of pgm3d's costs on one device, in a few minutes (issue 19): made for a lent GPU,
runs anywhere (``--device cpu`` is what the tests run, at ``--size tiny``).

    python benchmarks/gpu.py [--device cuda] [--size tiny|full] [--dtypes float32 bfloat16]

Rows of the table:

* SVI step: one ELBO step of the digits VAE (hidden 512 x 512, batch 256, Adam) through pgm3d's
  objective against the same loss hand-written in PyTorch — the ratio;
* training throughput, rows per second of ``fit``: VAE (digits), ShapeVAE (chairs), VSL (32³
  voxel classes);
* IWAE likelihood at K = 10,000 on 64 digits rows: seconds and peak device memory;
* completion rows per second: MwG and the batched HMC on the VAE, the exact missing-data
  posterior of PPCA;

at each dtype asked for (float32, float64; pgm3d refuses bfloat16 and float16, which underflow
the small variances and probabilities its models need, and the table says so). Installs
nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

SIZES = {
    "tiny": {"rows": 64, "epochs": 1, "iwae_k": 200, "sweeps": 4, "n_shapes": 20, "res": 32},
    "full": {"rows": 1024, "epochs": 3, "iwae_k": 10_000, "sweeps": 50, "n_shapes": 400,
             "res": 32},
}  # fmt: skip


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _digits(device, dtype):
    from pgm3d.data.images import load_digits

    return ((load_digits(dtype=torch.float32).x + 1) / 2).to(device, dtype)


def svi_ratio(device, dtype, size) -> str:
    from pgm3d.inference import OBJECTIVES
    from pgm3d.models import VAE

    torch.manual_seed(0)
    vae = VAE(64, 16, (512, 512)).to(device, dtype)
    x = _digits(device, dtype)[:256]
    objective = OBJECTIVES["elbo"](vae)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-4)

    def ours():
        opt.zero_grad()
        objective(x, scale=7.0).backward()
        opt.step()

    def plain():
        opt.zero_grad()
        q = vae.encoder.distribution(x)
        z = q.rsample()
        prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        elbo = vae.decode(z).log_prob(x) + prior - q.log_prob(z)
        (-7.0 * elbo.sum()).backward()
        opt.step()

    a, b = _timed(ours, device, 5), _timed(plain, device, 5)
    return f"{a * 1e3:.2f} ms vs {b * 1e3:.2f} ms plain: {a / b:.2f}x"


def training(device, dtype, size) -> dict:
    from pgm3d.data import open_data
    from pgm3d.inference import fit
    from pgm3d.models import VAE, build_model, model_rows

    out = {}
    torch.manual_seed(0)
    x = _digits(device, dtype)[: size["rows"]]
    vae = VAE(64, 16, (512, 512)).to(device, dtype)
    start = time.perf_counter()
    fit(vae, x, epochs=size["epochs"], batch_size=128, progress=False)
    _sync(device)
    out["VAE (digits)"] = len(x) * size["epochs"] / (time.perf_counter() - start)
    for name, data, kw in (
        ("shapevae", "chairs", {"n_train": size["n_shapes"], "n_test": 4}),
        ("vsl", "voxel-classes", {"n_train": size["n_shapes"], "n_test": 10,
                                  "resolution": size["res"]}),
    ):  # fmt: skip
        split = open_data(data, seed=0, **kw)
        model = build_model(name, split.train).to(device, dtype)
        rows, mask = model_rows(model, split.train)
        start = time.perf_counter()
        fit(model, rows, mask=mask, epochs=size["epochs"], batch_size=64, progress=False)
        _sync(device)
        out[f"{name} ({data})"] = len(rows) * size["epochs"] / (time.perf_counter() - start)
    return out


def iwae(device, dtype, size) -> str:
    from pgm3d.inference import log_likelihood
    from pgm3d.models import VAE

    torch.manual_seed(0)
    vae = VAE(64, 16, (512, 512)).to(device, dtype)
    x = _digits(device, dtype)[:64]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        seconds = _timed(lambda: log_likelihood(vae, x, num_samples=size["iwae_k"]), device, 1)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    memory = f", peak {peak:.0f} MiB" if peak is not None else ""
    return f"K = {size['iwae_k']:,}: {seconds:.2f} s{memory}"


def completion(device, dtype, size) -> dict:
    from pgm3d import PPCA, complete
    from pgm3d.data import random_mask
    from pgm3d.models import VAE

    torch.manual_seed(0)
    vae = VAE(64, 16, (256, 256), "bernoulli").to(device, dtype)
    x = _digits(device, dtype)[: size["rows"]]
    mask = random_mask(x.shape, 0.5, generator=torch.Generator().manual_seed(0)).to(device)
    sweeps = {"chains": 2, "warmup": size["sweeps"], "num_samples": size["sweeps"], "thin": 1}
    out = {}
    for method in ("mwg", "hmc"):
        with torch.no_grad():
            seconds = _timed(lambda m=method: complete(vae, x, mask, m, seed=0, **sweeps),
                             device, 1)  # fmt: skip
        out[method] = len(x) / seconds
    exact_dtype = torch.float64 if device.type == "cpu" else torch.float32
    xe = x.to(exact_dtype)
    ppca = PPCA.fit(xe, 10)
    seconds = _timed(lambda: complete(ppca, xe, mask, "exact"), device)
    out["exact (PPCA)"] = len(x) / seconds
    return out


def main(device: str, size: str, dtypes: list[str]) -> int:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; run with --device cpu", file=sys.stderr)
        return 2
    s = SIZES[size]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"pgm3d device benchmark: {name}, torch {torch.__version__}, size {size}\n")
    print("| dtype | measure | value |\n|---|---|---|")
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        if dtype not in (torch.float32, torch.float64):
            # pgm3d refuses half precision (it underflows the variances and probabilities the
            # models need), so there is nothing of pgm3d's to time in it
            print(f"| {dtype_name} | (pgm3d computes in float32/64; half precision refused) | |")
            continue
        print(f"| {dtype_name} | SVI step, pgm3d vs plain PyTorch | {svi_ratio(dev, dtype, s)} |")
        for label, rate in training(dev, dtype, s).items():
            print(f"| {dtype_name} | fit, {label} | {rate:,.0f} rows/s |")
        print(f"| {dtype_name} | IWAE log-likelihood, 64 rows | {iwae(dev, dtype, s)} |")
        for label, rate in completion(dev, dtype, s).items():
            print(f"| {dtype_name} | complete, {label} | {rate:,.1f} rows/s |")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=tuple(SIZES), default="full")
    parser.add_argument(
        "--dtypes",
        nargs="+",
        default=["float32", "bfloat16"],
        choices=("float32", "float64", "bfloat16", "float16"),
    )
    args = parser.parse_args()
    sys.exit(main(args.device, args.size, args.dtypes))
