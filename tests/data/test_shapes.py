import pytest
import torch

from pgm3d.data import FAMILIES, ShapeSet, load_shapes, shapes
from pgm3d.evaluation import symmetry_score

FAMILY_NAMES = FAMILIES.names()


def test_the_issue_families_are_registered():
    assert {"chairs", "airplanes", "tables"} <= set(FAMILY_NAMES)


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def data(request):
    return shapes(request.param, 60, seed=3, points_per_part=64, dtype=torch.float64)


def test_fields_have_the_documented_shapes(data):
    n, k = 60, data.num_parts
    p = 64 * k
    assert data.points.shape == data.normals.shape == (n, p, 3)
    assert data.existence.shape == (n, k) and data.existence.dtype == torch.bool
    assert data.part_of_point.shape == (p,) and (data.part_of_point.diff() >= 0).all()
    assert data.style.shape == (n,) and len(data.part_names) == k
    assert data.flat().shape == data.flat_mask().shape == (n, p * 6)
    assert data.flat(normals=False).shape == (n, p * 3)
    assert (data.flat_mask().reshape(n, p, 6).all(-1) == data.point_mask()).all()


def test_same_seed_same_shapes_other_seed_other_shapes(data):
    again = shapes(data.family, 60, seed=3, points_per_part=64, dtype=torch.float64)
    assert torch.equal(again.points, data.points) and torch.equal(again.existence, data.existence)
    other = shapes(data.family, 60, seed=4, points_per_part=64, dtype=torch.float64)
    assert not torch.equal(other.points, data.points)


def test_normals_are_unit_where_present_and_absent_parts_are_zero(data):
    mask = data.point_mask()
    norms = data.normals.norm(dim=-1)
    torch.testing.assert_close(norms[mask], torch.ones_like(norms[mask]))
    assert (data.points[~mask] == 0).all() and (data.normals[~mask] == 0).all()


def test_points_lie_on_their_part_surfaces(data):
    for k, part in enumerate(data.parts):
        sl = data.part_slice(k)
        present = data.existence[:, k]
        distance = part.implicit(data.points[:, sl])[present]
        assert distance.abs().max() < 1e-12, data.part_names[k]


def test_shapes_are_aligned_and_share_one_scale(data):
    inside = data.points[data.point_mask()]
    assert inside.abs().max() < 1.05
    if data.family.startswith("airplanes"):  # centred on the origin, wings along x
        extent = data.points.amax(1) - data.points.amin(1)
        assert (extent[:, 0] > extent[:, 1]).all()
        return
    # up is y: furniture stands on the floor at y = -1
    low = torch.where(data.point_mask(), data.points[..., 1], torch.inf).amin(-1)
    assert (low < -0.85).all()


def test_generated_shapes_are_mirror_symmetric_and_a_perturbation_is_not(data):
    mask = data.point_mask()
    score = symmetry_score(data.points, mask)
    if data.family == "bikes":  # symmetric only up to the steering and the cranks, by design
        assert score.max() < 0.1
        return
    assert score.max() < 1e-9
    moved = data.points.clone()
    right = moved[..., 0] > 0
    moved[..., 1] += 0.05 * right  # lift the right half of each shape
    assert symmetry_score(moved, mask).min() > 1e-2


def test_the_same_index_lands_on_the_same_region_across_shapes(data):
    """Within a style, point i of a part has nearly the same normal and the same relative
    position inside the part's bounding box in every shape (dense correspondence)."""
    for s in data.style.unique():
        sub = data[data.style == s]
        for k in range(data.num_parts):
            present = sub.existence[:, k]
            if present.sum() < 3 or data.part_names[k].startswith("crank"):
                continue  # cranks take any angle: their points sweep a circle by design
            sl = sub.part_slice(k)
            p, n = sub.points[present, sl], sub.normals[present, sl]
            mean_normal = torch.nn.functional.normalize(n.mean(0), dim=-1)
            assert (n * mean_normal).sum(-1).mean() > 0.8, (
                sub.style_names[int(s)],
                data.part_names[k],
            )
            lo, hi = p.amin(1, keepdim=True), p.amax(1, keepdim=True)
            rel = (p - lo) / (hi - lo).clamp_min(1e-9)
            limit = 0.15 if data.family == "bikes" else 0.12  # the steered front end turns
            assert (rel - rel.mean(0)).abs().mean() < limit, (
                sub.style_names[int(s)],
                data.part_names[k],
            )


def test_styles_make_the_data_multimodal(data):
    assert len(data.style.unique()) == len(data.style_names)
    if data.family in ("chairs", "airplanes", "tables"):
        assert len(data.existence.unique(dim=0)) >= 2
    if data.family == "chairs":
        # arms and some legs are optional
        names = list(data.part_names)
        assert not data.existence[:, names.index("arm_left")].all()
        assert not data.existence[:, names.index("leg_front_left")].all()


def test_meshes_are_closed_oriented_unions_of_present_parts(data):
    for i in range(3):
        mesh = data.mesh(i)
        assert mesh.is_watertight and mesh.is_oriented and mesh.volume() > 0
        assert set(mesh.part_of_face.unique().tolist()) == set(
            data.existence[i].nonzero().flatten().tolist()
        )


def test_indexing_casting_and_saving_round_trip(data, tmp_path):
    sub = data[torch.tensor([5, 2, 9])]
    assert (
        torch.equal(sub.points[1], data.points[2])
        and sub.mesh(1).faces.shape == data.mesh(2).faces.shape
    )
    assert data[4].points.shape[0] == 1 and data[:7].existence.shape[0] == 7
    assert data.to(torch.float32).points.dtype == torch.float32
    path = data.save(tmp_path / "set.npz")
    back = load_shapes(path, dtype=torch.float64)
    for key in ("points", "normals", "existence", "part_of_point", "style"):
        assert torch.equal(getattr(back, key), getattr(data, key)), key
    assert back.part_names == data.part_names and back.style_names == data.style_names
    assert torch.equal(shapes(path, 4, dtype=torch.float64).points, data.points[:4])
    with pytest.raises(ValueError, match="meshes are only available"):
        back.mesh(0)


def test_points_per_part_by_name():
    counts = {
        "fuselage": 100,
        "wing_left": 50,
        "wing_right": 50,
        "tail_left": 20,
        "tail_right": 20,
        "fin": 10,
    }
    data = shapes("airplanes", 4, points_per_part=counts)
    assert data.num_points == 250 and data.part_slice("fin") == slice(240, 250)
    assert data.points.dtype == torch.get_default_dtype()
    assert shapes("airplanes", 2, normals=False).normals is None


def test_restricting_styles():
    data = shapes("chairs", 30, styles=["bench"])
    assert (data.style == data.style_names.index("bench")).all()
    assert not data.existence[:, data.part_names.index("back")].any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"family": "boats", "n": 3},
            "unknown shape family 'boats'; choose one of: airplanes, airplanes_nonlinear",
        ),
        ({"family": "chairs", "n": 0}, "n must be a positive integer"),
        ({"family": "chairs", "n": -2}, "n must be a positive integer"),
        ({"family": "chairs", "n": 2.5}, "n must be a positive integer"),
        ({"family": "chairs", "n": 2, "points_per_part": 0}, "points_per_part"),
        ({"family": "airplanes", "n": 2, "points_per_part": {"wing": 3}}, "unknown"),
        ({"family": "chairs", "n": 2, "styles": ["sofa"]}, "unknown style 'sofa'"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shapes(**kwargs)


def test_bad_shape_files_are_named(tmp_path):
    import numpy as np

    with pytest.raises(FileNotFoundError, match="no shape file"):
        load_shapes(tmp_path / "missing.npz")
    np.savez(tmp_path / "partial.npz", points=np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="partial.npz: missing key 'existence'"):
        load_shapes(tmp_path / "partial.npz")
    np.savez(
        tmp_path / "bad.npz",
        points=np.zeros((2, 3, 3)),
        existence=np.full((2, 1), 2),
        part_of_point=np.zeros(3, int),
        part_names=np.array(["a"]),
    )
    with pytest.raises(ValueError, match="existence"):
        load_shapes(tmp_path / "bad.npz")
    np.savez(
        tmp_path / "shape.npz",
        points=np.zeros((2, 3, 3)),
        existence=np.ones((2, 1), bool),
        part_of_point=np.zeros(4, int),
        part_names=np.array(["a"]),
    )
    with pytest.raises(ValueError, match="shape.npz: part_of_point must be"):
        load_shapes(tmp_path / "shape.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable"):
        load_shapes(tmp_path / "junk.npz")


def test_shape_set_validates_its_fields():
    with pytest.raises(ValueError, match="existence must be"):
        ShapeSet(
            torch.zeros(2, 3, 3),
            None,
            torch.ones(2, 2, dtype=torch.bool),
            torch.zeros(3, dtype=torch.long),
            torch.zeros(2, dtype=torch.long),
            ("a",),
        )
