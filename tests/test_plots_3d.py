"""Plots of solutions on 3D meshes: boundary surface and mid-height slice."""

import numpy as np
import pytest
import torch

import dfem
from dfem.plots import plot_deformed, plot_solution

pytestmark = pytest.mark.usefixtures("one_thread")

PNG = b"\x89PNG\r\n\x1a\n"
GREY = 0.85 * 255  # the slice's colour outside the mesh


def field(x):
    return torch.sin(3 * x[:, 0]) * torch.cos(2 * x[:, 1]) + x[:, 2]


def read_png(path):
    """The image as (h, w, 3) values in [0, 255], after checking the PNG signature."""
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG
    return matplotlib.image.imread(path)[..., :3] * 255


def grey_pixels(image) -> int:
    return int((np.abs(image - GREY) <= 2).all(axis=-1).sum())


def assert_plot(path):
    image = read_png(path)
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # not a single colour
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    return image


def holed_box():
    """A 6 x 5 x 4 tetrahedral box of [0, 2] x [0, 1]^2 with a tunnel along z through
    ``|x - 1| < 1/3, |y - 0.5| < 0.3`` (the tetrahedra of those grid cubes: their centroids
    lie within 1/4 of a cube's side of the cube's centre)."""
    box = dfem.mesh.box(6, 5, 4, cell="tet", x=(0.0, 2.0))
    centres = box.nodes[box.cells].mean(dim=1)
    keep = ((centres[:, 0] - 1).abs() >= 1 / 3) | ((centres[:, 1] - 0.5).abs() >= 0.3)
    nodes, cells, _ = dfem.mesh.remove_unused_nodes(box.nodes, box.cells_np[keep.numpy()])
    return dfem.mesh.Mesh(nodes, cells)


@pytest.mark.parametrize("cell", ["hex", "tet"])
def test_solution_on_a_box(cell, tmp_path):
    mesh = dfem.mesh.perturb_interior(dfem.mesh.box(4, 3, 3, cell=cell, x=(0.0, 2.0)), 0.2)
    space = dfem.FunctionSpace(mesh, "Q2" if cell == "hex" else "P2")
    path = tmp_path / "solution.png"
    plot_solution(space, field(space.dof_coordinates), path, title=f"{cell} box")
    image = assert_plot(path)
    assert grey_pixels(image) < 2000  # the slice lies inside the mesh everywhere


def test_slice_leaves_the_hole_blank(tmp_path):
    mesh = holed_box()
    assert mesh.n_cells == 6 * 5 * 4 * 6 - 2 * 3 * 4 * 6
    space = dfem.FunctionSpace(mesh, "P1")
    path = tmp_path / "holed.png"
    plot_solution(space, field(space.dof_coordinates), path)
    assert grey_pixels(assert_plot(path)) > 5000


def test_vector_field_shows_its_magnitude(tmp_path):
    space = dfem.FunctionSpace(dfem.mesh.box(2, cell="hex"), "Q1", shape=(3,))
    x = space.scalar.dof_coordinates
    u = torch.stack([x[:, 0], x[:, 1] ** 2, -x[:, 2]], dim=-1).reshape(-1)
    path = tmp_path / "vector.png"
    plot_solution(space, u, path)
    assert_plot(path)


@pytest.mark.parametrize("cell", ["hex", "tet"])
def test_deformed_boundary_surface(cell, tmp_path):
    mesh = dfem.mesh.box(3, 2, 2, cell=cell, x=(0.0, 3.0))
    space = dfem.FunctionSpace(mesh, "Q1" if cell == "hex" else "P1", shape=(3,))
    x = space.scalar.dof_coordinates
    u = torch.stack([0.1 * x[:, 0] * x[:, 2], -0.05 * x[:, 0] ** 2, 0.02 * x[:, 1]], dim=-1)
    stress = torch.linspace(0.0, 1.0, mesh.n_cells, dtype=torch.float64)
    path = tmp_path / "deformed.png"
    plot_deformed(space, u.reshape(-1), path, stress, title="bending")
    assert_plot(path)


def test_2d_solution_plot_still_works(tmp_path):
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 4, "tri"), "P2")
    path = tmp_path / "flat.png"
    plot_solution(space, space.dof_coordinates[:, 0], path)
    assert_plot(path)


def test_slice_values_are_the_field_inside_and_nan_in_the_hole():
    from dfem.plots3d import _slice_values

    mesh = holed_box()
    space = dfem.FunctionSpace(mesh, "P1")
    x = mesh.nodes.numpy()
    linear = 1.0 + space.dof_coordinates @ torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    image, extent, z = _slice_values(space, linear, x.min(axis=0), x.max(axis=0))
    assert z == 0.5 and extent == (0.0, 2.0, 0.0, 1.0)
    ny, nx = image.shape
    X, Y = np.meshgrid((np.arange(nx) + 0.5) * 2.0 / nx, (np.arange(ny) + 0.5) / ny)
    hole = (np.abs(X - 1) < 1 / 3) & (np.abs(Y - 0.5) < 0.3)
    assert np.isnan(image[hole]).all() and not np.isnan(image[~hole]).any()
    np.testing.assert_allclose(image[~hole], 1 + 0.5 * X[~hole] - Y[~hole] + 1.0, atol=1e-12)
