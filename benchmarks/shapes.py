"""Throughput of the 3D data layer, measured in one run (issue 4).

    python benchmarks/shapes.py [--quick]

1. ``shapes(family, 5000, points_per_part=...)`` with about 2,000 points per shape, for every
   family: seconds and points per second (target: seconds, not minutes).
2. Batched generation vs generating the same number of shapes one call per shape (speed-up).
3. ``voxel_classes`` at 32^3: grids per second; ``voxelize`` of a chair mesh at 32^3 and 64^3.
4. Symmetry score and Chamfer distance on 1,000 shapes of ~2,000 points.

CPU threads of this machine, float32 outputs; times are the median of interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _timing import interleaved, median_ratio

from pgm3d.data import FAMILIES, shapes, voxel_classes, voxelize
from pgm3d.evaluation import chamfer_distance, symmetry_score


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(quick: bool = False) -> None:
    n = 500 if quick else 5000
    repeats = 1 if quick else 3
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(f"1. {n} shapes with ~2,000 points each")
    print(f"{'family':10s} {'parts':>5s} {'points':>6s} {'seconds':>8s} {'Mpoints/s':>10s}")
    for family in FAMILIES.names():
        k = len(FAMILIES[family].part_names)
        per_part = round(2000 / k)
        seconds = _timed(
            lambda f=family, m=per_part: shapes(f, n, seed=0, points_per_part=m), repeats
        )
        rate = n * k * per_part / seconds / 1e6
        print(f"{family:10s} {k:5d} {k * per_part:6d} {seconds:8.2f} {rate:10.1f}")

    m = 20 if quick else 100
    times = interleaved(
        {
            "batched": lambda: shapes("chairs", m, seed=0, points_per_part=222),
            "one at a time": lambda: [
                shapes("chairs", 1, seed=i, points_per_part=222) for i in range(m)
            ],
        },
        rounds=3,
        inner=1,
    )
    print(
        f"\n2. {m} chairs in one call vs {m} calls of one chair: "
        f"{median_ratio(times['one at a time'], times['batched']):.1f}x faster batched"
    )

    c = 10 if quick else 50
    seconds = _timed(lambda: voxel_classes(c, resolution=32, seed=0, progress=False), repeats)
    rate = 10 * c / seconds
    print(f"\n3. voxel_classes: {10 * c} grids of 32^3 in {seconds:.2f} s ({rate:.0f} grids/s)")
    mesh = shapes("chairs", 1, seed=0, points_per_part=8).mesh(0)
    for r in (32, 64):
        seconds = _timed(lambda r=r: voxelize(mesh, r), 5)
        print(
            f"   voxelize(chair mesh, {len(mesh.faces)} triangles, {r}^3): {1e3 * seconds:.1f} ms"
        )

    s = 100 if quick else 1000
    data = shapes("chairs", s, seed=0, points_per_part=222)
    mask = data.point_mask()
    seconds = _timed(lambda: symmetry_score(data.points, mask), 1)
    print(f"\n4. symmetry_score on {s} x {data.num_points} points: {seconds:.2f} s")
    other = shapes("chairs", s, seed=1, points_per_part=222)
    seconds = _timed(
        lambda: chamfer_distance(data.points, other.points, mask, other.point_mask()), 1
    )
    print(f"   chamfer_distance on {s} pairs of {data.num_points} points: {seconds:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    main(parser.parse_args().quick)
