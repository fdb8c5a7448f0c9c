"""Adam on denormal numbers (issue 19): is the square root of Adam's second moments slow
because they hold denormals?

    python benchmarks/adam_denormals.py [--quick]

1. ``torch._foreach_sqrt`` on 8 x 512² float32 entries, all normal vs all denormal (1e-40):
   the per-element cost of a denormal.
2. A ShapeVAE on 200 procedural chairs trained by ``fit``: how many entries of Adam's
   ``exp_avg_sq`` are denormal at the end, and ``_foreach_sqrt`` over that state as trained
   vs with the denormals set to zero.

Set ``OMP_NUM_THREADS=1`` for steadier ratios on a shared machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from pgm3d.data import open_data
from pgm3d.inference import fit
from pgm3d.models import build_model, model_rows


def _time(fn, n: int = 20) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def _denormal(vs) -> int:
    tiny = torch.finfo(torch.float32).tiny
    return sum(int(((v != 0) & (v.abs() < tiny)).sum()) for v in vs)


def main(quick: bool) -> None:
    normal = [torch.full((512, 512), 1e-3) for _ in range(8)]
    denormal = [torch.full((512, 512), 1e-40) for _ in range(8)]
    a = _time(lambda: torch._foreach_sqrt(normal))
    b = _time(lambda: torch._foreach_sqrt(denormal))
    print(f"1. _foreach_sqrt, 2.1M entries: normal {a * 1e3:.2f} ms, denormal {b * 1e3:.2f} ms "
          f"({b / a:.1f}x)\n")  # fmt: skip
    split = open_data("chairs", seed=0, n_train=200, n_test=10, points_per_part=16)
    epochs = 10 if quick else 100
    torch.manual_seed(0)
    model = build_model("shapevae", split.train)
    x, mask = model_rows(model, split.train)
    kept = {}
    step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        kept["optimizer"] = self
        return step(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        fit(model, x, mask=mask, epochs=epochs, batch_size=50, progress=False)
    finally:
        torch.optim.Adam.step = step
    vs = [s["exp_avg_sq"] for s in kept["optimizer"].state.values()]
    tiny = torch.finfo(torch.float32).tiny
    zeroed = [torch.where(v.abs() < tiny, torch.zeros_like(v), v) for v in vs]
    t_as = _time(lambda: torch._foreach_sqrt(vs))
    t_zero = _time(lambda: torch._foreach_sqrt(zeroed))
    print(f"2. ShapeVAE, 200 chairs, {epochs * 4} Adam steps: {_denormal(vs):,} denormal of "
          f"{sum(v.numel() for v in vs):,} second moments; sqrt over them as trained "
          f"{t_as * 1e3:.2f} ms, denormals zeroed {t_zero * 1e3:.2f} ms "
          f"({t_as / t_zero:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
