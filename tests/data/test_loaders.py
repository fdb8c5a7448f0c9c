import gzip

import numpy as np
import pytest
import torch
from scipy.io import savemat

from pgm3d.data import Mesh, load_mesh, load_voxels, save_voxels, shapes, voxelize
from pgm3d.data.parts import Box

TETRA = "4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 2 1\n3 0 1 3\n3 0 3 2\n3 1 2 3\n"


def _write_off(path, mesh: Mesh):
    v, f = mesh.vertices.numpy(), mesh.faces.numpy()
    lines = ["OFF", f"{len(v)} {len(f)} 0"]
    lines += [" ".join(f"{c:.17g}" for c in row) for row in v]
    lines += ["3 " + " ".join(str(i) for i in row) for row in f]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cube(resolution=None):
    box = Box.cuboid(
        torch.zeros(1, 3, dtype=torch.float64), torch.full((1, 3), 0.5, dtype=torch.float64)
    )
    v, f = box.mesh()
    return Mesh(v[0], f)


def test_off_round_trip_and_modelnet_header(tmp_path):
    chair = shapes("chairs", 1, seed=0, points_per_part=4).mesh(0)
    back = load_mesh(_write_off(tmp_path / "chair.off", chair))
    torch.testing.assert_close(back.vertices, chair.vertices)
    assert torch.equal(back.faces, chair.faces) and back.source.endswith("chair.off")
    (tmp_path / "modelnet.off").write_text("OFF" + TETRA)  # "OFF4 4 0" on one line
    tetra = load_mesh(tmp_path / "modelnet.off")
    assert tetra.faces.shape == (4, 3) and tetra.is_oriented and tetra.volume() > 0


def test_other_mesh_formats_through_trimesh(tmp_path):
    cube = _cube()
    for suffix in (".obj", ".ply", ".stl"):
        path = tmp_path / f"cube{suffix}"
        cube.to_trimesh().export(path)
        back = load_mesh(path)
        assert back.is_watertight
        torch.testing.assert_close(back.volume(), cube.volume())


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("OFF\n" + TETRA.splitlines()[0] + "\n" + "\n".join(TETRA.splitlines()[1:6]), "truncated"),
        ("solid nonsense\n1 2\n", "not an OFF file"),
        ("", "not an OFF file"),
        ("OFF\nfour four\n", "malformed OFF header"),
        ("OFF\n0 0 0\n", "empty mesh"),
    ],
)
def test_corrupt_meshes_name_the_file(tmp_path, text, match):
    path = tmp_path / "broken.off"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"broken.off.*{match}|{match}.*broken.off"):
        load_mesh(path)


def test_missing_and_unknown_mesh_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no mesh file"):
        load_mesh(tmp_path / "nothing.off")
    (tmp_path / "a.xyz").write_text("1 2 3")
    with pytest.raises(ValueError, match="unknown mesh format"):
        load_mesh(tmp_path / "a.xyz")


def test_non_manifold_mesh_refuses_solid_voxels_naming_the_file(tmp_path):
    # two tetrahedra sharing one edge with a third face: that edge has three faces
    text = "OFF\n5 3 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n0 -1 0\n3 0 1 2\n3 0 1 3\n3 0 1 4\n"
    (tmp_path / "fan.off").write_text(text)
    mesh = load_mesh(tmp_path / "fan.off")
    with pytest.raises(ValueError, match="fan.off' is not watertight"):
        voxelize(mesh, 8)
    assert voxelize(mesh, 8, solid=False).any()


@pytest.fixture
def grids():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 30, 30, 30, generator=g) < 0.3


@pytest.mark.parametrize("suffix", [".npy", ".npy.gz", ".npz"])
def test_voxel_arrays_round_trip(tmp_path, grids, suffix):
    path = save_voxels(tmp_path / f"v{suffix}", grids)
    back = load_voxels(path)
    assert torch.equal(back.voxels, grids) and back.class_names == ("v",)


def test_shapenets_mat_round_trip_and_key(tmp_path, grids):
    path = save_voxels(tmp_path / "chair_000001_1.mat", grids[0])
    back = load_voxels(path)
    assert torch.equal(back.voxels[0], grids[0])
    savemat(tmp_path / "other.mat", {"grid": grids[0].numpy().astype(np.uint8)})
    with pytest.raises(ValueError, match=r"no key 'instance'.*\['grid'\]"):
        load_voxels(tmp_path / "other.mat")
    assert torch.equal(load_voxels(tmp_path / "other.mat", key="grid").voxels[0], grids[0])


def _binvox_bytes(grid: np.ndarray) -> bytes:
    """A .binvox file written by hand from the format's description: a text header, then
    run-length (value, count) byte pairs over the voxels in x, z, y order (y fastest)."""
    r = grid.shape[0]
    flat = grid.transpose(0, 2, 1).reshape(-1).astype(np.uint8)
    runs, i = bytearray(), 0
    while i < len(flat):
        j = i
        while j < len(flat) and flat[j] == flat[i] and j - i < 255:
            j += 1
        runs += bytes([flat[i], j - i])
        i = j
    head = f"#binvox 1\ndim {r} {r} {r}\ntranslate 0 0 0\nscale 1\ndata\n".encode()
    return head + bytes(runs)


def test_binvox_files_read_in_the_formats_axis_order(tmp_path, grids):
    grid = grids[0].numpy()
    (tmp_path / "chair.binvox").write_bytes(_binvox_bytes(grid))
    back = load_voxels(tmp_path / "chair.binvox")
    assert back.voxels.shape == (1, 30, 30, 30) and back.class_names == ("chair",)
    assert np.array_equal(back.voxels[0].numpy(), grid)
    (tmp_path / "bad.binvox").write_bytes(b"#binvox 1\ndim 4 4\n")
    with pytest.raises(ValueError, match="bad.binvox: could not read"):
        load_voxels(tmp_path / "bad.binvox")


def test_voxel_set_npz_keeps_labels_and_split(tmp_path):
    from pgm3d.data import voxel_classes

    vs = voxel_classes(2, resolution=16, seed=0, classes=["cone", "torus"], progress=False)
    back = load_voxels(save_voxels(tmp_path / "set.npz", vs))
    assert torch.equal(back.voxels, vs.voxels) and torch.equal(back.labels, vs.labels)
    assert back.class_names == vs.class_names and list(back.split) == list(vs.split)


def test_modelnet_folder_of_mixed_formats(tmp_path, grids):
    root = tmp_path / "ModelNet2"
    for split in ("train", "test"):
        (root / "cube" / split).mkdir(parents=True)
        (root / "ball" / "30" / split).mkdir(parents=True)  # 3D ShapeNets nests a resolution folder
    _write_off(root / "cube" / "train" / "cube_0001.off", _cube())
    _write_off(root / "cube" / "test" / "cube_0002.off", _cube())
    save_voxels(root / "ball" / "30" / "train" / "ball_1.mat", grids[0])
    save_voxels(root / "ball" / "30" / "test" / "ball_2.npy", grids[1])
    vs = load_voxels(root, resolution=30, progress=False)
    assert vs.voxels.shape == (4, 30, 30, 30) and vs.class_names == ("ball", "cube")
    assert vs.labels.tolist() == [0, 0, 1, 1]
    assert sorted(vs.split.tolist()) == ["test", "test", "train", "train"]
    cube = vs.voxels[vs.labels == 1][0]
    idx = cube.nonzero()
    assert (idx.min(), idx.max()) == (3, 26) and cube[3:27, 3:27, 3:27].all()
    assert torch.equal(
        vs.voxels[vs.labels == 0][vs.split[vs.labels.numpy() == 0] == "train"][0], grids[0]
    )
    save_voxels(root / "ball" / "30" / "test" / "small.npy", grids[2, :16, :16, :16])
    with pytest.raises(ValueError, match="small.npy: resolution 16, expected 30"):
        load_voxels(root, resolution=30, progress=False)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((4, 4)), r"\(R, R, R\) or \(N, R, R, R\)"),
        (np.zeros((2, 4, 4, 5)), r"\(R, R, R\) or \(N, R, R, R\)"),
        (np.full((4, 4, 4), 0.5), r"0/1 occupancies, found \[0.5\]"),
        (np.full((4, 4, 4), 2), "0/1"),
    ],
)
def test_bad_voxel_arrays_name_the_file(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ValueError, match=f"bad.npy: .*{match}"):
        load_voxels(tmp_path / "bad.npy")


def test_bad_voxel_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_voxels(tmp_path / "none.npy")
    (tmp_path / "junk.npy.gz").write_bytes(gzip.compress(b"junk"))
    with pytest.raises(ValueError, match="junk.npy.gz: could not read"):
        load_voxels(tmp_path / "junk.npy.gz")
    np.savez(tmp_path / "two.npz", a=np.zeros((4, 4, 4)), b=np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="two.npz: .npz needs a 'voxels' array"):
        load_voxels(tmp_path / "two.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no files in the ModelNet layout"):
        load_voxels(tmp_path / "empty")
    with pytest.raises(ValueError, match="one grid"):
        save_voxels(tmp_path / "x.mat", torch.zeros(2, 4, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown voxel format"):
        save_voxels(tmp_path / "x.vox", torch.zeros(4, 4, 4, dtype=torch.bool))


def test_modelnet_folder_to_point_clouds(tmp_path):
    from pgm3d.data import load_point_clouds

    for cls, split in (("cube", "train"), ("cube", "test"), ("chair", "train")):
        (tmp_path / cls / split).mkdir(parents=True, exist_ok=True)
    _write_off(tmp_path / "cube" / "train" / "a.off", _cube())
    _write_off(tmp_path / "cube" / "test" / "b.off", _cube())
    _write_off(
        tmp_path / "chair" / "train" / "c.off", shapes("chairs", 1, points_per_part=4).mesh(0)
    )
    pc = load_point_clouds(tmp_path, 500, seed=0, progress=False)
    assert pc.points.shape == pc.normals.shape == (3, 500, 3) and pc.class_names == (
        "chair",
        "cube",
    )
    assert pc.labels.tolist() == [0, 1, 1] and pc.split.tolist() == ["train", "test", "train"]
    assert pc.points.norm(dim=-1).amax(-1).sub(1).abs().max() < 1e-6  # normalised to the unit ball
    cube = pc.points[1]
    # every sample lies on a face of the (rescaled) cube, with the face's axis-aligned normal
    half = cube.abs().amax()
    on_face = (cube.abs() - half).abs().amin(-1) < 1e-5
    assert on_face.all()
    torch.testing.assert_close(pc.normals[1].abs().amax(-1), torch.ones(500))
    again = load_point_clouds(tmp_path, 500, seed=0, progress=False)
    assert torch.equal(again.points, pc.points)
    with pytest.raises(FileNotFoundError):
        load_point_clouds(tmp_path / "missing")
    with pytest.raises(ValueError, match="num_points"):
        load_point_clouds(tmp_path, 0)


def test_mesh_surface_samples_are_uniform_on_area():
    cube = _cube()  # side 1: six faces of equal area
    points, normals = cube.sample_points(6000, seed=1)
    face_axis = normals.abs().argmax(-1) * 2 + (normals.sum(-1) > 0)
    counts = torch.bincount(face_axis, minlength=6).double()
    assert ((counts - 1000).abs() < 4 * 1000**0.5).all()
    assert ((points.abs().amax(-1) - 0.5).abs() < 1e-12).all()
