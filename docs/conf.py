"""Sphinx configuration of pgm3d's API reference (``make docs``: docs/_build/html)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pgm3d

project = "pgm3d"
release = pgm3d.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax", "sphinx.ext.viewcode", "myst_parser"]
# Lightning's docstrings (inherited hooks) are not ours to render
autodoc_inherit_docstrings = False
# MathJax renders the docstrings' :math: from a CDN when the pages are read; offline, the
# equations show as their TeX source
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
