"""Shapes with rendered views (the image-to-3D data) and their names in open_data."""

import math

import pytest
import torch

from pgm3d.data import open_data, primitives
from pgm3d.data.render import render_voxels
from pgm3d.data.views import ViewSet, render_views
from pgm3d.models import build_model


def test_ptns_cameras_by_default_and_each_view_is_its_camera():
    shapes = primitives(2, 16, seed=0)
    views = render_views(shapes)
    assert views.images.shape == (10, 24, 16, 16) and len(views) == 10
    torch.testing.assert_close(
        views.azimuth[3, 5], torch.tensor(math.radians(75), dtype=torch.float64)
    )
    assert torch.allclose(views.elevation, torch.tensor(math.radians(30), dtype=torch.float64))
    cam = views.cameras(3)[5]
    assert cam.projection == "perspective" and cam.distance == 3.0
    again = render_voxels(shapes.voxels[3:4], cam, 16)[0].float()
    torch.testing.assert_close(views.images[3, 5], again)
    # a shape's silhouettes differ between cameras, and every view sees the shape
    assert (views.images.flatten(2).sum(-1) > 0).all()
    assert not torch.equal(views.images[3, 0], views.images[3, 6])


def test_random_azimuths_depth_and_subsets():
    shapes = primitives(2, 16, seed=0)
    views = render_views(shapes, views=3, kind="depth", random_azimuth=True, seed=1, size=12)
    assert views.images.shape == (10, 3, 12, 12) and views.kind == "depth"
    assert views.images.max() > 1  # distances, not occupancies
    assert len(views.subset("test")) == 2 and len(views[torch.tensor([0, 4])]) == 2


def test_open_data_renders_named_voxel_sets():
    split = open_data("primitives-views", n_train=10, n_test=5, resolution=16)
    assert split.kind == "views" and isinstance(split.train, ViewSet)
    assert split.train.images.shape == (10, 24, 16, 16) and len(split.test) == 5
    with pytest.raises(ValueError, match="no registered model takes shapes with rendered views"):
        build_model("vae", split.train)


def test_bad_arguments_are_refused():
    shapes = primitives(1, 8, seed=0)
    with pytest.raises(ValueError, match="views must be a positive int"):
        render_views(shapes, views=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        render_views(shapes, kind="normals")
    with pytest.raises(ValueError, match="images must be"):
        ViewSet(shapes, torch.zeros(2, 1, 4, 4), torch.zeros(2, 1), torch.zeros(2, 1))
