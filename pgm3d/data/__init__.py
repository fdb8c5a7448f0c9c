"""Datasets and masks."""

from pgm3d.data.masks import QUARTERS, quarter_mask, random_mask

__all__ = ["QUARTERS", "quarter_mask", "random_mask"]
