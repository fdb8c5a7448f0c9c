"""Interactive 3D views for the HTML report: each 3D figure's panels as a plotly.js scene the
reader turns around (drag), zooms (scroll) and steps through (a menu of its panels).

A view is a plain plotly figure specification (JSON) written beside the figure's PNG as
``<name>.3d.json``; :func:`~pgm3d.viz.report.build_report` embeds it under the picture, with
plotly.js inlined once, so ``report.html`` stays one self-contained file that works offline.
plotly.js was chosen over three.js for what it gives per byte: 3D scatter and mesh traces,
lighting, a camera and panel menus in one well-kept bundle (4.8 MB inlined once per report,
from the ``plotly`` package), where three.js would need a viewer written here around it. One
scene per figure (not one per panel) keeps to a single WebGL context, which browsers ration.

pgm3d's data is ``y``-up with the front at ``+z``; the camera starts from the front right, as
the PNGs do.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

from pgm3d._io import atomic_write_text

__all__ = ["VIEW_SUFFIX", "mesh_trace", "points_trace", "view_path", "voxels_trace", "write_view"]

#: the file beside ``name.png`` holding its interactive view
VIEW_SUFFIX = ".3d.json"
_MAX_POINTS = 4000  # per panel: enough to read a shape, light enough to turn smoothly
_MAX_PANELS = 16  # per view: the report stays a few megabytes


def view_path(png: str | Path) -> Path:
    """Where the interactive view of the figure ``png`` is written."""
    png = Path(png)
    return png.with_name(png.stem + VIEW_SUFFIX)


def _rgb(colors: np.ndarray) -> list[str]:
    c = (np.clip(colors, 0, 1) * 255).round().astype(int)
    return [f"rgb({r},{g},{b})" for r, g, b in c]


def points_trace(points, part_of_point=None, mask=None, normals=None) -> dict:
    """A ``scatter3d`` trace of a point cloud ``(P, 3)``, coloured by part (tab10) and shaded
    by its normals as the PNGs are; absent points (``mask`` False) are left out and at most
    4,000 points are kept (evenly)."""
    p = np.asarray(points, dtype=float)
    keep = np.ones(len(p), bool) if mask is None else np.asarray(mask, dtype=bool)
    cmap = matplotlib.colormaps["tab10"]
    parts = np.zeros(len(p), int) if part_of_point is None else np.asarray(part_of_point)
    colors = np.asarray([cmap(int(k) % 10)[:3] for k in parts])
    if normals is not None:
        light = np.array([0.4, 0.8, 0.6]) / np.linalg.norm([0.4, 0.8, 0.6])
        colors = colors * (0.45 + 0.55 * np.clip(np.asarray(normals) @ light, 0, 1))[:, None]
    idx = np.flatnonzero(keep)
    idx = idx[:: max(1, -(-len(idx) // _MAX_POINTS))]
    q = p[idx].round(4)
    return {
        "type": "scatter3d",
        "mode": "markers",
        "x": q[:, 0].tolist(),
        "y": q[:, 1].tolist(),
        "z": q[:, 2].tolist(),
        "marker": {"size": 2.5, "color": _rgb(colors[idx])},
        "hoverinfo": "skip",
    }


def mesh_trace(vertices, faces, color: str = "rgb(140,166,217)") -> dict:
    """A lit ``mesh3d`` trace of a triangle mesh."""
    v = np.asarray(vertices, dtype=float).round(4)
    f = np.asarray(faces, dtype=int)
    return {
        "type": "mesh3d",
        "x": v[:, 0].tolist(),
        "y": v[:, 1].tolist(),
        "z": v[:, 2].tolist(),
        "i": f[:, 0].tolist(),
        "j": f[:, 1].tolist(),
        "k": f[:, 2].tolist(),
        "color": color,
        "flatshading": True,
        "lighting": {"ambient": 0.45, "diffuse": 0.8, "specular": 0.1},
        "lightposition": {"x": 200, "y": 400, "z": 300},
        "hoverinfo": "skip",
    }


def voxels_trace(voxels, color: str = "rgb(89,140,204)") -> dict:
    """The exposed faces of an occupancy grid ``(R, R, R)`` as a ``mesh3d`` trace, in the unit
    cube centred at the origin."""
    from pgm3d.viz.shapes import surface_quads

    grid = np.asarray(voxels, dtype=bool)
    if not grid.any():
        return mesh_trace(np.zeros((3, 3)), np.zeros((1, 3), int), color)
    quads, _ = surface_quads(grid)
    corners = quads.reshape(-1, 3).astype(int)  # integer voxel corners: exact to share
    vertices, index = np.unique(corners, axis=0, return_inverse=True)
    index = index.reshape(-1, 4)
    faces = np.concatenate([index[:, [0, 1, 2]], index[:, [0, 2, 3]]])
    return mesh_trace(vertices / grid.shape[0] - 0.5, faces, color)


def write_view(png: str | Path, traces: list[dict], titles: list[str] | None = None) -> Path:
    """Write the interactive view of the figure ``png``: one scene showing one panel at a
    time, a menu to pick the panel (when there are several; the first 16).

    :param traces: one trace per panel (:func:`points_trace`, :func:`mesh_trace`,
        :func:`voxels_trace`).
    :param titles: the panels' names in the menu.
    :returns: the path written (:func:`view_path`).
    """
    if not traces:
        raise ValueError("a view needs at least one panel")
    titles = list(titles) if titles is not None else [f"{i + 1}" for i in range(len(traces))]
    traces, titles = traces[:_MAX_PANELS], titles[:_MAX_PANELS]
    titles = [t or f"{i + 1}" for i, t in enumerate(titles)]
    data = [{**t, "visible": i == 0, "name": titles[i]} for i, t in enumerate(traces)]
    axis = {"visible": False}
    layout = {
        "height": 460,
        "margin": {"l": 0, "r": 0, "t": 30, "b": 0},
        "showlegend": False,
        "scene": {
            "xaxis": axis,
            "yaxis": axis,
            "zaxis": axis,
            "aspectmode": "data",
            "camera": {"up": {"x": 0, "y": 1, "z": 0}, "eye": {"x": 1.2, "y": 0.7, "z": 1.5}},
        },
    }
    if len(traces) > 1:
        layout["updatemenus"] = [
            {
                "x": 0,
                "y": 1.06,
                "xanchor": "left",
                "buttons": [
                    {
                        "label": name,
                        "method": "update",
                        "args": [{"visible": [j == i for j in range(len(traces))]}],
                    }
                    for i, name in enumerate(titles)
                ],
            }
        ]
    return atomic_write_text(view_path(png), json.dumps({"data": data, "layout": layout}))
