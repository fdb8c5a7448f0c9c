"""Surface extraction: scikit-image's marching cubes against pgm3d's marching tetrahedra on the
same signed distance field, measured in one run (issue 18).

    python benchmarks/surfaces.py [--quick]

The field is the exact signed distance of the unit sphere on a 97³ grid over [-1.2, 1.2]³
(truth: volume 4π/3 = 4.1888). Prints seconds per extraction (median of interleaved rounds),
faces, the enclosed volume, closedness, and the time ratio. Set ``OMP_NUM_THREADS=1`` for
steadier ratios on a shared machine.
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
from _timing import interleaved, median_ratio

from pgm3d.evaluation import extract_surface


def main(quick: bool = False) -> None:
    n = 49 if quick else 97
    axis = np.linspace(-1.2, 1.2, n)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    values, h = np.linalg.norm(grid, axis=-1) - 1.0, 2.4 / (n - 1)
    origin = (-1.2, -1.2, -1.2)
    backends = ("skimage", "tetrahedra")
    fns = {b: (lambda b=b: extract_surface(values, origin, h, backend=b)) for b in backends}
    times = interleaved(fns, rounds=2 if quick else 5, inner=1)
    print(f"unit sphere, exact signed distance on a {n}³ grid; truth volume {4 / 3 * math.pi:.4f}")
    print(f"{'backend':<12}{'seconds':>10}{'faces':>10}{'volume':>10}  closed")
    for b in backends:
        mesh = fns[b]()
        print(
            f"{b:<12}{statistics.median(times[b]):>10.4f}{len(mesh.faces):>10}"
            f"{mesh.volume().item():>10.4f}  {mesh.is_watertight}"
        )
    ratio = median_ratio(times["tetrahedra"], times["skimage"])
    print(f"\nmarching tetrahedra / scikit-image time: {ratio:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
