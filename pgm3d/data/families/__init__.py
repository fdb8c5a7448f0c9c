"""Procedural part-segmented shape families (registered in :data:`pgm3d.data.shapes.FAMILIES`)."""

from pgm3d.data.families.airplanes import Airplanes
from pgm3d.data.families.airplanes_nonlinear import AirplanesNonlinear
from pgm3d.data.families.bikes import Bikes
from pgm3d.data.families.chairs import Chairs
from pgm3d.data.families.chairs_nonlinear import ChairsNonlinear
from pgm3d.data.families.lamps import Lamps
from pgm3d.data.families.tables import Tables

__all__ = [
    "Airplanes",
    "AirplanesNonlinear",
    "Bikes",
    "Chairs",
    "ChairsNonlinear",
    "Lamps",
    "Tables",
]
