"""Figures of 3D shapes: point clouds with normals and part colours, voxel grids, grids of many
shapes and interpolation strips, written as PNG with matplotlib's object API (no pyplot).

pgm3d's data is ``y``-up with the front at ``+z``; the figures show it upright from the
front-right, three-quarter view.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

from pgm3d.viz.interactive import mesh_trace, points_trace, voxels_trace, write_view

__all__ = [
    "interpolation_strip",
    "plot_mesh",
    "plot_points",
    "plot_voxels",
    "render_mesh",
    "render_meshes",
    "render_point_cloud",
    "render_shapes",
    "render_voxels",
]

_LIGHT = np.array([0.4, 0.8, 0.6]) / np.linalg.norm(
    [0.4, 0.8, 0.6]
)  # data coordinates, from above-front


def _numpy(t) -> np.ndarray:
    return (
        t.detach().cpu().double().numpy()
        if isinstance(t, torch.Tensor)
        else np.asarray(t, dtype=float)
    )


def _display(xyz: np.ndarray) -> np.ndarray:
    """Data ``(x, y, z)`` (y up, front +z) to matplotlib's ``(X, Y, Z)`` (Z up, viewer at -Y)."""
    return np.stack([xyz[..., 0], -xyz[..., 2], xyz[..., 1]], -1)


def _setup(ax, lo, hi, elev, azim):
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_zlim(lo, hi)
    ax.set_box_aspect((1, 1, 1), zoom=1.35)
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()


def _part_colors(part_of_point, n: int) -> np.ndarray:
    cmap = matplotlib.colormaps["tab10"]
    if part_of_point is None:
        return np.tile(np.array(cmap(0)[:3]), (n, 1))
    return np.array([cmap(int(k) % 10)[:3] for k in _numpy(part_of_point).astype(int)])


def plot_points(
    ax,
    points,
    normals=None,
    part_of_point=None,
    mask=None,
    *,
    size: float | None = None,
    show_normals: bool = False,
    normal_length: float = 0.08,
    max_normals: int = 400,
    limits=(-1.0, 1.0),
    elev: float = 20.0,
    azim: float = -60.0,
):
    """Draw one point cloud on a 3D axis: coloured by part, shaded by normals when given.

    :param points: ``(P, 3)``. :param normals: ``(P, 3)`` or None (Lambert shading, and short
        normal segments for up to ``max_normals`` points with ``show_normals=True``).
    :param part_of_point: ``(P,)`` part index per point (colour), or None.
    :param mask: ``(P,)`` bool points to draw (absent parts are hidden), or None.
    :param size: marker area (default: larger for sparser clouds, 2 to 9).
    """
    p = _numpy(points)
    if p.ndim != 2 or p.shape[-1] != 3:
        raise ValueError(f"points must be (P, 3), got {p.shape}")
    keep = np.ones(len(p), bool) if mask is None else _numpy(mask).astype(bool)
    colors = _part_colors(part_of_point, len(p))
    if normals is not None:
        n = _numpy(normals)
        shade = 0.45 + 0.55 * np.clip(n @ _LIGHT, 0, 1)
        # points without a normal (zeros: the data had none) keep their colour
        shade = np.where(np.linalg.norm(n, axis=-1) > 0.5, shade, 1.0)
        colors = colors * shade[:, None]
    if size is None:  # sparse clouds get larger dots, so that a panel still reads as a shape
        size = float(np.clip(2400 / max(1, keep.sum()), 2.0, 9.0))
    d = _display(p[keep])
    ax.scatter(
        d[:, 0],
        d[:, 1],
        d[:, 2],
        c=np.clip(colors[keep], 0, 1),
        s=size,
        linewidths=0,
        depthshade=False,
    )
    if show_normals and normals is not None:
        idx = np.flatnonzero(keep)[:: max(1, keep.sum() // max_normals)]
        seg = np.stack([p[idx], p[idx] + normal_length * _numpy(normals)[idx]], 1)
        ax.add_collection3d(Line3DCollection(_display(seg), colors="0.2", linewidths=0.4))
    _setup(ax, *limits, elev, azim)


_FACES = {  # neighbour offset -> the unit square's corners on that side of a voxel
    (1, 0, 0): [(1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1)],
    (-1, 0, 0): [(0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0)],
    (0, 1, 0): [(0, 1, 0), (0, 1, 1), (1, 1, 1), (1, 1, 0)],
    (0, -1, 0): [(0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1)],
    (0, 0, 1): [(0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)],
    (0, 0, -1): [(0, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 0)],
}


def surface_quads(voxels) -> tuple[np.ndarray, np.ndarray]:
    """The exposed faces of an occupancy grid: ``quads (Q, 4, 3)`` in voxel units and their
    outward normals ``(Q, 3)``. Only faces between an occupied and an empty voxel are kept.
    """
    v = _numpy(voxels).astype(bool)
    if v.ndim != 3:
        raise ValueError(f"voxels must be (R, R, R), got {v.shape}")
    padded = np.pad(v, 1)
    quads, normals = [], []
    for offset, corners in _FACES.items():
        neighbour = np.roll(padded, tuple(-o for o in offset), axis=(0, 1, 2))[1:-1, 1:-1, 1:-1]
        idx = np.argwhere(v & ~neighbour)
        quads.append(idx[:, None, :] + np.array(corners)[None])
        normals.append(np.tile(offset, (len(idx), 1)))
    return np.concatenate(quads).astype(float), np.concatenate(normals).astype(float)


def plot_voxels(ax, voxels, *, color=(0.35, 0.55, 0.8), elev: float = 20.0, azim: float = -60.0):
    """Draw the surface of an occupancy grid ``(R, R, R)`` (indexed ``x, y, z``, y up) as shaded
    quads on a 3D axis.
    """
    quads, normals = surface_quads(voxels)
    r = np.asarray(_numpy(voxels)).shape[0]
    shade = 0.45 + 0.55 * np.clip(normals @ _LIGHT, 0, 1)
    colors = np.clip(np.array(color)[None] * shade[:, None], 0, 1)
    ax.add_collection3d(Poly3DCollection(_display(quads), facecolors=colors, edgecolors="none"))
    # grids are centred on the display cube; flip z so the display's -Y is the front
    _setup(ax, -r, 0, elev, azim)
    ax.set_xlim(0, r)
    ax.set_zlim(0, r)


def _figure(n: int, ncols: int, panel: float, titled: bool):
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel * ncols, panel * nrows + (0.3 if titled else 0)))
    axes = [fig.add_subplot(nrows, ncols, i + 1, projection="3d") for i in range(n)]
    return fig, axes


def _save(fig, path, title, captions: bool = False) -> str:
    if title:
        fig.suptitle(title, fontsize=10)
    top = (0.84 if captions else 0.92) if title else 0.96
    fig.subplots_adjust(left=0, right=1, bottom=0, top=top, wspace=0, hspace=0.1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return str(path)


def _panels(items, normals, part_of_point, masks) -> list[dict]:
    """One dict of drawing arguments per shape, from tensors, a ShapeSet/VoxelSet or a list."""
    if isinstance(items, list | tuple) and items and hasattr(items[0], "part_of_point"):
        return [panel for data in items for panel in _panels(data, None, None, None)]
    if hasattr(items, "part_of_point"):  # a ShapeSet
        normals = items.normals if normals is None else normals
        part_of_point = items.part_of_point if part_of_point is None else part_of_point
        masks = items.point_mask() if masks is None else masks
        items = items.points
    elif hasattr(items, "voxels"):  # a VoxelSet
        items = items.voxels
    return [
        {
            "item": items[i],
            "normals": None if normals is None else normals[i],
            "part_of_point": part_of_point,
            "mask": None if masks is None else masks[i],
        }
        for i in range(len(items))
    ]


def render_shapes(
    items,
    path: str | os.PathLike,
    *,
    kind: str = "points",
    ncols: int = 8,
    titles: Sequence[str] | None = None,
    normals=None,
    part_of_point=None,
    masks=None,
    title: str | None = None,
    panel_size: float = 1.6,
    view: bool = True,
    **kwargs,
) -> str:
    """A grid of many shapes in one PNG, and its interactive view beside it
    (:func:`~pgm3d.viz.interactive.write_view`, which the report embeds).

    :param items: point clouds ``(N, P, 3)`` (``kind="points"``), a
        :class:`~pgm3d.data.shapes.ShapeSet` (which supplies normals, part colours and masks), or a
        list of shape sets (drawn one after the other); or voxel grids ``(N, R, R, R)`` or a
        :class:`~pgm3d.data.voxels.VoxelSet` (``kind="voxels"``).
    :param normals, masks: ``(N, P, 3)`` and ``(N, P)`` for plain point tensors.
    :param part_of_point: ``(P,)`` part index per point (colours), for plain point tensors.
    :param titles: one caption per panel, or None.
    :param bool view: also write the interactive view (``<name>.3d.json``).
    :returns: ``str(path)``.
    """
    if kind not in ("points", "voxels"):
        raise ValueError(f"kind must be 'points' or 'voxels', got {kind!r}")
    panels = _panels(items, normals, part_of_point, masks)
    n = len(panels)
    if n == 0:
        raise ValueError("nothing to render")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} shapes")
    fig, axes = _figure(n, ncols, panel_size, titles is not None)
    for i, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        if kind == "points":
            plot_points(
                ax, panel["item"], panel["normals"], panel["part_of_point"], panel["mask"], **kwargs
            )
        else:
            plot_voxels(ax, panel["item"], **kwargs)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7, pad=-4)
    out = _save(fig, path, title, captions=titles is not None and len(panels) <= ncols)
    if view:
        write_view(path, [_trace(kind, p) for p in panels], _menu(titles, n, ncols))
    return out


def _trace(kind: str, panel: dict) -> dict:
    """One panel of :func:`render_shapes` as an interactive-view trace."""
    if kind == "voxels":
        return voxels_trace(_numpy(panel["item"]) > 0.5)
    part = panel["part_of_point"]
    return points_trace(
        _numpy(panel["item"]),
        None if part is None else _numpy(part),
        None if panel["mask"] is None else _numpy(panel["mask"]).astype(bool),
        None if panel["normals"] is None else _numpy(panel["normals"]),
    )


def _menu(titles, n: int, ncols: int) -> list[str]:
    """Names of a grid's panels in the view's menu: the caption, with its row when the grid has
    several rows (completion grids caption the first row only)."""
    names = []
    for i in range(n):
        head = titles[i % ncols] if titles is not None and i % ncols < len(titles) else ""
        given = titles[i] if titles is not None and titles[i] else head
        row = f"row {i // ncols + 1}" if n > ncols else ""
        names.append(": ".join(t for t in (row, given) if t) or f"{i + 1}")
    return names


def render_point_cloud(
    points, path, *, normals=None, part_of_point=None, mask=None, title=None, **kwargs
) -> str:
    """One point cloud ``(P, 3)`` as a PNG (see :func:`plot_points` for the options)."""
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot(projection="3d")
    plot_points(ax, points, normals, part_of_point, mask, size=kwargs.pop("size", 4.0), **kwargs)
    return _save(fig, path, title)


def plot_mesh(ax, mesh, *, color=(0.55, 0.65, 0.85), elev=20.0, azim=-60.0, half=None) -> None:
    """Draw a triangle mesh on a 3-D axis, faces shaded by their normals; ``half`` is the
    half-width of the view (default: the mesh's largest coordinate)."""
    v, f = _numpy(mesh.vertices), np.asarray(mesh.faces.cpu().numpy())
    if len(f) == 0:
        raise ValueError("the mesh has no faces")
    tri = v[f]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True).clip(1e-12)
    shade = 0.35 + 0.65 * np.clip(normal @ _LIGHT, 0, 1)
    ax.add_collection3d(
        Poly3DCollection(
            _display(tri), facecolors=np.array(color) * shade[:, None], edgecolors="none"
        )
    )
    half = np.abs(v).max() if half is None else half
    _setup(ax, -half, half, elev, azim)


def render_mesh(mesh, path, *, color=(0.55, 0.65, 0.85), title=None, elev=20.0, azim=-60.0) -> str:
    """A triangle mesh (:class:`~pgm3d.data.Mesh`) as a PNG, faces shaded by their normals."""
    fig = Figure(figsize=(4, 4))
    plot_mesh(fig.add_subplot(projection="3d"), mesh, color=color, elev=elev, azim=azim)
    return _save(fig, path, title)


def render_meshes(meshes, path, *, titles=None, ncols: int = 4, title=None, panel_size=2.4) -> str:
    """A grid of meshes on one scale (``None`` entries stay blank, e.g. a failed
    reconstruction), with a caption per panel."""
    if not len(meshes):
        raise ValueError("nothing to render")
    if titles is not None and len(titles) != len(meshes):
        raise ValueError(f"{len(titles)} titles for {len(meshes)} meshes")
    half = max(float(np.abs(_numpy(m.vertices)).max()) for m in meshes if m is not None)
    fig, axes = _figure(len(meshes), ncols, panel_size, titles is not None)
    for i, (ax, mesh) in enumerate(zip(axes, meshes, strict=True)):
        if mesh is None:
            ax.set_axis_off()
        else:
            plot_mesh(ax, mesh, half=half)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7, pad=-4)
    out = _save(fig, path, title, captions=titles is not None and len(meshes) <= ncols)
    shown = [(i, m) for i, m in enumerate(meshes) if m is not None]
    names = [titles[i] if titles is not None else f"{i + 1}" for i, _ in shown]
    write_view(path, [mesh_trace(_numpy(m.vertices), _numpy(m.faces)) for _, m in shown], names)
    return out


def render_voxels(voxels, path, *, title=None, **kwargs) -> str:
    """One voxel grid ``(R, R, R)`` as a PNG."""
    fig = Figure(figsize=(4, 4))
    plot_voxels(fig.add_subplot(projection="3d"), voxels, **kwargs)
    return _save(fig, path, title)


def interpolation_strip(
    frames, path, *, kind: str = "points", labels=None, title=None, **kwargs
) -> str:
    """One row of shapes, e.g. decodings along a line between two latent codes.

    :param frames: ``(T, P, 3)`` point clouds or ``(T, R, R, R)`` grids.
    :param labels: captions (default: the interpolation weight ``t = 0 .. 1``).
    """
    t = len(frames)
    labels = labels if labels is not None else [f"t={k / max(1, t - 1):.2f}" for k in range(t)]
    return render_shapes(frames, path, kind=kind, ncols=t, titles=labels, title=title, **kwargs)


def voxel_completion_grid(
    truth, observed, filled: dict, path, *, threshold: float = 0.5, title=None
):
    """Volume completion: one row per grid, columns truth, observed voxels, then each method's
    completion thresholded at ``threshold``.

    :param truth: ``(N, R³)`` rows of 0/1 (or ``(N, R, R, R)`` grids).
    :param observed: bool ``(N, R³)``, True = observed.
    :param dict filled: method name -> ``(N, R³)`` completed rows (occupancy probabilities).
    """
    truth = torch.as_tensor(truth).detach().cpu()
    n = truth.shape[0]
    R = round(truth[0].numel() ** (1 / 3))
    grids = [truth > 0.5, (truth > 0.5) & torch.as_tensor(observed).cpu().reshape(truth.shape)]
    grids += [torch.as_tensor(v).detach().cpu() > threshold for v in filled.values()]
    names = ["truth", "observed", *filled]
    return render_shapes(
        torch.stack([g[i].reshape(R, R, R) for i in range(n) for g in grids]),
        path,
        kind="voxels",
        ncols=len(grids),
        titles=names + [""] * (len(grids) * (n - 1)),
        title=title or "volume completion (each row one test grid)",
    )
