"""Datasets and masks: images for the missing-data experiments, part-segmented 3D shapes with
dense correspondences, voxel grids, multi-sprite scenes, and readers for the real formats."""

import pgm3d.data.families  # noqa: F401  (registers the shape families)
from pgm3d.data.datasets import DataSplit, open_data
from pgm3d.data.loaders import (
    PointCloudSet,
    load_mesh,
    load_point_clouds,
    load_voxels,
    save_voxels,
)
from pgm3d.data.masks import QUARTERS, drop_parts, half_volume_mask, quarter_mask, random_mask
from pgm3d.data.mesh import Mesh
from pgm3d.data.mesh_folder import MESH_CLASSES, write_mesh_folder
from pgm3d.data.shapes import FAMILIES, ShapeSet, load_shapes, shapes
from pgm3d.data.sprites import SPRITE_SHAPES, SpriteScenes, multi_sprites
from pgm3d.data.volumes import PRIMITIVES, mnist3d, necker_cubes, primitives
from pgm3d.data.voxels import VOXEL_CLASSES, VoxelSet, voxel_classes, voxelize

__all__ = [
    "FAMILIES",
    "MESH_CLASSES",
    "PRIMITIVES",
    "QUARTERS",
    "SPRITE_SHAPES",
    "VOXEL_CLASSES",
    "DataSplit",
    "Mesh",
    "PointCloudSet",
    "ShapeSet",
    "SpriteScenes",
    "VoxelSet",
    "drop_parts",
    "half_volume_mask",
    "load_mesh",
    "load_point_clouds",
    "load_shapes",
    "load_voxels",
    "mnist3d",
    "multi_sprites",
    "necker_cubes",
    "open_data",
    "primitives",
    "quarter_mask",
    "random_mask",
    "save_voxels",
    "shapes",
    "voxel_classes",
    "voxelize",
    "write_mesh_folder",
]
