import numpy as np
import pytest
import torch

from pgm3d.evaluation import (
    chamfer_distance,
    normal_angles,
    pca_normals,
    symmetry_score,
    voxel_iou,
)


def _brute_nn(a, b):
    d = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    return d.min(1)


def test_chamfer_matches_brute_force_in_float64():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 50, 3, generator=g, dtype=torch.float64)
    b = torch.randn(4, 70, 3, generator=g, dtype=torch.float64)
    got = chamfer_distance(a, b)
    got_l1 = chamfer_distance(a, b, squared=False)
    for i in range(4):
        da, db = _brute_nn(a[i].numpy(), b[i].numpy()), _brute_nn(b[i].numpy(), a[i].numpy())
        assert got[i].item() == pytest.approx((da**2).mean() + (db**2).mean(), rel=1e-12)
        assert got_l1[i].item() == pytest.approx(da.mean() + db.mean(), rel=1e-12)
    assert chamfer_distance(a[0], b[0]).item() == pytest.approx(got[0].item(), rel=1e-12)
    assert got.dtype == torch.float64


def test_chamfer_is_zero_on_identical_sets_symmetric_and_masked():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(2, 30, 3, generator=g, dtype=torch.float64)
    b = torch.randn(2, 30, 3, generator=g, dtype=torch.float64)
    assert (chamfer_distance(a, a) == 0).all()
    torch.testing.assert_close(chamfer_distance(a, b), chamfer_distance(b, a))
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[:, 20:] = False
    torch.testing.assert_close(
        chamfer_distance(a, b, mask, mask), chamfer_distance(a[:, :20], b[:, :20])
    )


def test_symmetry_score():
    g = torch.Generator().manual_seed(2)
    half = torch.rand(100, 3, generator=g, dtype=torch.float64)
    sym = torch.cat([half, half * torch.tensor([-1.0, 1, 1], dtype=torch.float64)])
    assert symmetry_score(sym) == 0
    # shifting the set along the normal of the plane by t moves each reflection by 2t
    shifted = sym + torch.tensor([0.1, 0, 0], dtype=torch.float64)
    assert 0 < symmetry_score(shifted) <= 0.2 + 1e-12
    assert symmetry_score(shifted, offset=0.1) == pytest.approx(0, abs=1e-12)
    # a reflection across another axis
    assert symmetry_score(sym[:, [1, 0, 2]], axis=1) == 0
    mask = torch.ones(1, 200, dtype=torch.bool)
    mask[0, 0] = False  # drop one point: its mirror image loses its partner
    assert symmetry_score(sym[None], mask)[0] > 0


def test_voxel_iou():
    a = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    b = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    a[0, :2] = True
    b[0, 1:3] = True
    iou = voxel_iou(a, b)
    assert iou[0].item() == pytest.approx(1 / 3) and iou[1].item() == 1.0
    assert voxel_iou(a[0].int(), a[0].int()).item() == 1.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: chamfer_distance(torch.zeros(5, 2), torch.zeros(5, 3)), r"\(P, 3\)"),
        (lambda: chamfer_distance(torch.zeros(2, 5, 3), torch.zeros(3, 5, 3)), "share N"),
        (
            lambda: chamfer_distance(
                torch.zeros(5, 3), torch.zeros(5, 3), torch.zeros(5, dtype=torch.bool)
            ),
            "empty",
        ),
        (lambda: symmetry_score(torch.zeros(5, 3), axis=3), "axis"),
        (lambda: voxel_iou(torch.zeros(4, 4, 4), torch.zeros(4, 4, 5)), "equal"),
        (lambda: voxel_iou(torch.full((4, 4, 4), 0.5), torch.zeros(4, 4, 4)), "binary"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_dense_and_kdtree_nearest_distances_agree_and_the_dense_path_has_gradients():
    from pgm3d.evaluation.geometry import nearest_distance

    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 40, 3, generator=g, dtype=torch.float64)
    b = torch.randn(3, 60, 3, generator=g, dtype=torch.float64)
    mask = torch.rand(3, 60, generator=g) > 0.3
    tree = nearest_distance(a, b, mask)
    dense = nearest_distance(a.requires_grad_(), b, mask)
    torch.testing.assert_close(dense, tree)
    dense.sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()
    loss = chamfer_distance(a, b)
    assert loss.requires_grad


def test_plane_fit_normals_and_angles():
    g = torch.linspace(-1, 1, 12)
    xy = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    plane = torch.cat([xy, torch.zeros(len(xy), 1)], -1)[None].double()
    mask = torch.ones(1, len(xy), dtype=torch.bool)
    est = pca_normals(plane, mask)
    up = torch.zeros_like(plane)
    up[..., 2] = 1
    assert normal_angles(est, up, mask, oriented=False).max() < 1e-6
    assert normal_angles(-up, up, mask, oriented=True).min() == pytest.approx(180)
    # a masked point gets no normal, and a tilted plane's normal is found too
    mask[0, 0] = False
    tilt = plane.clone()
    tilt[..., 2] = 0.5 * tilt[..., 0]
    est = pca_normals(tilt, mask)
    assert est[0, 0].abs().sum() == 0
    truth = torch.nn.functional.normalize(
        torch.tensor([-0.5, 0.0, 1.0], dtype=torch.float64), dim=0
    )
    assert normal_angles(est, truth.expand_as(est), mask, oriented=False).max() < 1e-6


def test_occupancy_iou_thresholds_probabilities_of_any_shape():
    from pgm3d.evaluation import occupancy_iou

    truth = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    pred = torch.tensor([[0.9, 0.2, 0.7, 0.1], [0.1, 0.1, 0.1, 0.1]])
    # row 1: {0} and {0, 2} against {0, 1} -> 1 / 3; row 2: both empty -> 0
    torch.testing.assert_close(occupancy_iou(pred, truth), torch.tensor([1 / 3, 0.0]))
    images = torch.zeros(1, 2, 2)
    images[0, 0] = 1.0
    assert occupancy_iou(images, images).item() == 1.0
    with pytest.raises(ValueError, match="pred and truth must be equal"):
        occupancy_iou(pred, truth[:1])
