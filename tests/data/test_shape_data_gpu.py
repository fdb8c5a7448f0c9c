"""The 3D data layer follows the device of its inputs (run on a machine with CUDA)."""

import pytest
import torch

from pgm3d.data import shapes, voxelize
from pgm3d.evaluation import chamfer_distance, symmetry_score, voxel_iou

pytestmark = pytest.mark.gpu


def test_shapes_metrics_and_voxels_on_cuda():
    cpu = shapes("chairs", 8, seed=0, points_per_part=32, dtype=torch.float64)
    gpu = shapes("chairs", 8, seed=0, points_per_part=32, dtype=torch.float64, device="cuda")
    assert gpu.points.is_cuda and gpu.existence.is_cuda and gpu.part_of_point.is_cuda
    torch.testing.assert_close(gpu.points.cpu(), cpu.points)
    score = symmetry_score(gpu.points, gpu.point_mask())
    assert score.is_cuda and score.max() < 1e-9
    cd = chamfer_distance(
        gpu.points, gpu.points.flip(0), gpu.point_mask(), gpu.point_mask().flip(0)
    )
    ref = chamfer_distance(
        cpu.points, cpu.points.flip(0), cpu.point_mask(), cpu.point_mask().flip(0)
    )
    torch.testing.assert_close(cd.cpu(), ref)
    mesh = cpu.mesh(0)
    mesh.vertices, mesh.faces = mesh.vertices.cuda(), mesh.faces.cuda()
    grid = voxelize(mesh, 32, padding=2)
    assert grid.is_cuda
    assert torch.equal(grid.cpu(), voxelize(cpu.mesh(0), 32, padding=2))
    assert voxel_iou(grid, grid).item() == 1.0
