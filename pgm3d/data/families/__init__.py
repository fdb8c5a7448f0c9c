"""Procedural part-segmented shape families (registered in :data:`pgm3d.data.shapes.FAMILIES`)."""

from pgm3d.data.families.airplanes import Airplanes
from pgm3d.data.families.chairs import Chairs
from pgm3d.data.families.lamps import Lamps
from pgm3d.data.families.tables import Tables

__all__ = ["Airplanes", "Chairs", "Lamps", "Tables"]
