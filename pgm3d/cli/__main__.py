"""``python -m pgm3d.cli``: the ``pgm3d`` command."""

import sys

from pgm3d.cli import main

sys.exit(main())
