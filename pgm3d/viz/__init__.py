"""Figures (matplotlib, headless Agg backend), written as PNG files."""

from pgm3d.viz.images import completion_grid

__all__ = ["completion_grid"]
