"""Figures, written as PNG files with matplotlib's object API (``Figure``, no pyplot): making
one never switches the backend of a notebook or a GUI session."""

from pgm3d.viz.charts import bar_groups, confusion_matrix, curves
from pgm3d.viz.images import completion_grid, image_grid, reveal_figure
from pgm3d.viz.shapes import (
    interpolation_strip,
    plot_mesh,
    plot_points,
    plot_voxels,
    render_mesh,
    render_meshes,
    render_point_cloud,
    render_shapes,
    render_voxels,
    voxel_completion_grid,
)

__all__ = [
    "bar_groups",
    "completion_grid",
    "confusion_matrix",
    "curves",
    "image_grid",
    "interpolation_strip",
    "plot_mesh",
    "plot_points",
    "plot_voxels",
    "render_mesh",
    "render_meshes",
    "render_point_cloud",
    "render_shapes",
    "render_voxels",
    "reveal_figure",
    "voxel_completion_grid",
]
