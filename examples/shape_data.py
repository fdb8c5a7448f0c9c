"""The 3D data layer: procedural part-segmented shapes and voxel classes, rendered to PNG.

Writes ``figures/shapes.png`` (16 chairs and 16 airplanes, points coloured by part and shaded by
their normals) and ``figures/voxel_classes.png`` (two examples of each of the 10 voxel classes)
under ``$PGM3D_EXAMPLES_OUT`` (default ``runs/examples``), and prints a summary of each set.

Run: ``python examples/shape_data.py``
"""

import os
import time

import torch

from pgm3d.data import shapes, voxel_classes
from pgm3d.evaluation import symmetry_score
from pgm3d.viz import render_shapes

out = os.path.join(os.environ.get("PGM3D_EXAMPLES_OUT", "runs/examples"), "figures")

sets = {
    family: shapes(family, 16, seed=0, points_per_part=128) for family in ("chairs", "airplanes")
}
for family, data in sets.items():
    patterns = data.existence.unique(dim=0)
    sym = symmetry_score(data.points, data.point_mask()).max()
    print(f"{family}: {len(data)} shapes x {data.num_points} points, parts {list(data.part_names)}")
    print(
        f"  styles {[data.style_names[s] for s in data.style[:6]]}..., "
        f"{len(patterns)} existence patterns, max symmetry score {sym:.1e}"
    )

path = render_shapes(
    [sets["chairs"], sets["airplanes"]],
    os.path.join(out, "shapes.png"),
    ncols=8,
    title="16 chairs (rows 1-2) and 16 airplanes (rows 3-4), coloured by part",
)
print(f"wrote {path}")

t = time.perf_counter()
voxels = voxel_classes(8, resolution=32, seed=0, progress=False)
print(
    f"voxel classes: {len(voxels)} grids of 32^3 in {time.perf_counter() - t:.1f} s; "
    f"classes {list(voxels.class_names)}"
)
pick = torch.cat([torch.nonzero(voxels.labels == c).flatten()[:2] for c in range(10)])
path = render_shapes(
    voxels.voxels[pick],
    os.path.join(out, "voxel_classes.png"),
    kind="voxels",
    ncols=10,
    titles=[voxels.class_names[int(voxels.labels[i])] for i in pick],
)
print(f"wrote {path}")
