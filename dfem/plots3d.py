"""Plots of 3D meshes (matplotlib's mplot3d): boundary surfaces and slices.

The functions of :mod:`dfem.plots` call these on 3D meshes; they share its figure set-up
and atomic writing.
"""

from __future__ import annotations

import numpy as np

from dfem.plots import MAX_CELLS_WITH_EDGES, pyplot, save_figure

SLICE_PIXELS = 160  # grid points along the longer side of the slice of a 3D plot
VIEW = {"elev": 25.0, "azim": -60.0}  # the camera of 3D plots


def _boundary_faces(mesh):
    """Vertex numbers (n_faces, 3 or 4) of the boundary faces of a 3D mesh, outward in
    cyclic order, and the cell that owns each face."""
    ids = mesh.boundary_facet_numbers
    return mesh.oriented_facets(ids), mesh.facet_neighbours[ids, 0, 0]


def _face_edges(faces: np.ndarray) -> np.ndarray:
    """The distinct edges (vertex pairs) of polygons ``faces`` (n, k) in cyclic order."""
    pairs = np.stack([faces, np.roll(faces, -1, axis=1)], axis=-1).reshape(-1, 2)
    return np.unique(np.sort(pairs, axis=1), axis=0)


def _axes_3d(ax, lo, hi) -> None:
    """Limits, an equal-aspect box, labels and the camera of a 3D axes."""
    size = np.maximum(hi - lo, 1e-9 * float((hi - lo).max()))
    ax.set_xlim(lo[0], lo[0] + size[0])
    ax.set_ylim(lo[1], lo[1] + size[1])
    ax.set_zlim(lo[2], lo[2] + size[2])
    ax.set_box_aspect(size)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    ax.view_init(**VIEW)


def _slice_values(space, u, lo, hi):
    """``u`` on a regular grid over the plane ``z = (lo_z + hi_z) / 2`` inside the mesh's
    bounding box: (ny, nx) values (nan at points outside the mesh), the extent of the
    grid and the height of the plane."""
    from dfem.basis.probes import PointEvaluation, points_inside

    z = 0.5 * (lo[2] + hi[2])
    size = hi[:2] - lo[:2]
    nx, ny = np.maximum(2, np.round(SLICE_PIXELS * size / size.max())).astype(int)
    xs = lo[0] + (np.arange(nx) + 0.5) * size[0] / nx  # pixel centres
    ys = lo[1] + (np.arange(ny) + 0.5) * size[1] / ny
    Y, X = np.meshgrid(ys, xs, indexing="ij")
    points = np.stack([X.ravel(), Y.ravel(), np.full(X.size, z)], axis=1)
    inside = points_inside(space.mesh, points).cpu().numpy()
    grid = np.full(len(points), np.nan)
    if inside.any():
        values = PointEvaluation(space, points[inside])(u.detach()).cpu().numpy()
        grid[inside] = np.linalg.norm(values, axis=1) if values.ndim == 2 else values
    return grid.reshape(ny, nx), (lo[0], hi[0], lo[1], hi[1]), z


def plot_solution_3d(space, u, path, title: str) -> None:
    """:func:`dfem.plots.plot_solution` on a 3D mesh: see its docstring."""
    plt = pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    mesh = space.mesh
    x = mesh.nodes.detach().cpu().numpy()
    values = space.vertex_values(u.detach()).cpu().numpy()
    label = "u"
    if values.ndim == 2:  # a vector field: its magnitude
        values, label = np.linalg.norm(values, axis=1), "|u|"
    faces, _ = _boundary_faces(mesh)
    face_values = values[faces].mean(axis=1)
    lo, hi = x.min(axis=0), x.max(axis=0)
    image, extent, z = _slice_values(space, u, lo, hi)
    low = float(min(face_values.min(), np.nanmin(image, initial=np.inf)))
    high = float(max(face_values.max(), np.nanmax(image, initial=-np.inf)))
    if high <= low:  # a constant field
        low, high = low - 0.5, high + 0.5
    norm, cmap = Normalize(low, high), plt.get_cmap("viridis").with_extremes(bad="0.85")

    fig = plt.figure(figsize=(12.8, 5.0))
    grid = fig.add_gridspec(1, 2, left=0.0, right=0.9, bottom=0.08, top=0.88, wspace=0.12,
                            width_ratios=[1.1, 1.0])
    ax = fig.add_subplot(grid[0], projection="3d")
    surface = Poly3DCollection(x[faces], facecolors=cmap(norm(face_values)),
                               edgecolors="k" if len(faces) <= MAX_CELLS_WITH_EDGES else "face",
                               linewidths=0.2)
    ax.add_collection3d(surface)
    _axes_3d(ax, lo, hi)
    ax.set_title("boundary surface (face means of the vertex values)", fontsize=9)
    ax2 = fig.add_subplot(grid[1])
    ax2.imshow(image, origin="lower", extent=extent, cmap=cmap, norm=norm,
               interpolation="nearest")
    ax2.set_aspect("equal")
    ax2.set_xlabel("x")
    ax2.set_ylabel("y")
    blank = " (grey: outside the mesh)" if np.isnan(image).any() else ""
    ax2.set_title(f"slice z = {z:.4g}{blank}", fontsize=9)
    fig.colorbar(ScalarMappable(norm, cmap), cax=fig.add_axes((0.92, 0.15, 0.015, 0.66)),
                 label=label)
    fig.suptitle(title or f"{space.element.name}, {mesh.n_cells} cells, {space.n_dofs} dofs")
    save_figure(fig, path)
    plt.close(fig)


def plot_snapshots_3d(space, states, times, path, title: str) -> None:
    """:func:`dfem.plots.plot_snapshots` on a 3D mesh: one mid-height slice per state, on
    one colour scale."""
    plt = pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    x = space.mesh.nodes.detach().cpu().numpy()
    lo, hi = x.min(axis=0), x.max(axis=0)
    images = [_slice_values(space, u, lo, hi) for u in states]
    stack = np.stack([image for image, _, _ in images])
    low, high = float(np.nanmin(stack, initial=np.inf)), float(np.nanmax(stack, initial=-np.inf))
    if not high > low:  # a constant field (or no point inside)
        low, high = (low - 0.5, high + 0.5) if np.isfinite(low) else (-0.5, 0.5)
    norm, cmap = Normalize(low, high), plt.get_cmap("viridis").with_extremes(bad="0.85")
    k = len(images)
    fig, axes = plt.subplots(1, k, figsize=(2.4 * k + 1.0, 3.1), squeeze=False,
                             layout="constrained")
    for ax, (image, extent, _), t in zip(axes[0], images, times, strict=True):
        ax.imshow(image, origin="lower", extent=extent, cmap=cmap, norm=norm,
                  interpolation="nearest")
        ax.set_aspect("equal")
        ax.set_title(f"t = {float(t):.4g}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(ScalarMappable(norm, cmap), ax=axes[0].tolist(), label="u", shrink=0.9)
    fig.suptitle(f"{title or space.element.name} (slices z = {images[0][2]:.4g})", fontsize=10)
    save_figure(fig, path)
    plt.close(fig)


def plot_deformed_3d(mesh, x, moved, values, path, title, how, label) -> None:
    """The deformed boundary surface, each face coloured by the value of its cell, over
    the undeformed boundary's edges (small meshes) or bounding box (large ones)."""
    plt = pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

    faces, owner = _boundary_faces(mesh)
    face_values = values[owner]
    low, high = float(values.min()), float(values.max())
    norm = Normalize(low, high) if high > low else Normalize(low - 0.5, high + 0.5)
    cmap = plt.get_cmap("viridis")
    small = len(faces) <= MAX_CELLS_WITH_EDGES
    both = np.concatenate([x, moved])
    lo, hi = both.min(axis=0), both.max(axis=0)
    if small:
        lines = x[_face_edges(faces)]
    else:  # the 12 edges of the undeformed bounding box
        a, b = x.min(axis=0), x.max(axis=0)
        corners = np.array([[(a, b)[i >> k & 1][k] for k in range(3)] for i in range(8)])
        lines = corners[[[i, i | 1 << k] for i in range(8) for k in range(3) if not i >> k & 1]]
    fig = plt.figure(figsize=(7.4, 6.0), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    ax.add_collection3d(Line3DCollection(lines, colors="0.55", linewidths=0.6,
                                         linestyles="--", label="undeformed"))
    ax.add_collection3d(Poly3DCollection(moved[faces], facecolors=cmap(norm(face_values)),
                                         edgecolors="k" if small else "face", linewidths=0.2))
    _axes_3d(ax, lo, hi)
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=f"{label} (per cell)", shrink=0.7)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{title}\n{how}" if title else how, fontsize=10)
    save_figure(fig, path)
    plt.close(fig)


def plot_cell_fields_3d(mesh, fields: dict, limits_and_map, path, title: str) -> None:
    """:func:`dfem.plots.plot_cell_fields` on a 3D mesh: one boundary-surface panel per
    field, each face coloured by its cell's value."""
    plt = pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    x = mesh.nodes.detach().cpu().numpy()
    faces, owner = _boundary_faces(mesh)
    lo, hi = x.min(axis=0), x.max(axis=0)
    fig = plt.figure(figsize=(5.2 * len(fields), 4.8), layout="constrained")
    for k, (name, values) in enumerate(fields.items()):
        (low, high), cmap = limits_and_map(name, values)
        norm = Normalize(low, high) if high > low else Normalize(low - 0.5, high + 0.5)
        cmap = plt.get_cmap(cmap)
        ax = fig.add_subplot(1, len(fields), k + 1, projection="3d")
        colours = cmap(norm(values[owner]))
        ax.add_collection3d(Poly3DCollection(x[faces], facecolors=colours, edgecolors=colours,
                                             linewidths=0.2))
        _axes_3d(ax, lo, hi)
        ax.set_title(name, fontsize=10)
        fig.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.6)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)


def _solid_surface(mesh, solid: np.ndarray) -> np.ndarray:
    """Vertex numbers (n_faces, k) of the faces between the cells where ``solid`` holds
    and the other cells or the outside: the surface of the solid part."""
    sides = mesh.facet_neighbours  # (n_facets, 2, [cell, local facet])
    first, second = sides[:, 0, 0], sides[:, 1, 0]
    solid_first = solid[first]
    solid_second = (second >= 0) & solid[np.maximum(second, 0)]
    shown = solid_first != solid_second
    side = np.where(solid_first[shown], 0, 1)
    cells, local = sides[shown, side, 0], sides[shown, side, 1]
    return mesh.cells_np[cells[:, None], mesh.reference.facets[local]]


def plot_density_3d(mesh, density: np.ndarray, path, title: str = "",
                    threshold: float = 0.5) -> None:
    """A 3D topology optimisation design, drawn with the mesh's y axis up (the direction of
    the cantilevers' load): the surface of the cells with ``density >= threshold``, grey
    and lit from above the camera, beside the side view, the largest density along z over
    each point of the x-y plane on the grey scale of :func:`dfem.plots.plot_density`
    (black = solid). The side view draws each cell as its extent in x and y, exact for
    the axis-aligned cells of a box."""
    plt = pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    x = mesh.nodes.detach().cpu().numpy()
    density = np.asarray(density, dtype=float)
    up = [0, 2, 1]  # plot axes (x, depth, up) = mesh (x, z, y)
    lo, hi = x.min(axis=0), x.max(axis=0)
    fig = plt.figure(figsize=(12.0, 4.6), layout="constrained")
    grid = fig.add_gridspec(1, 2, width_ratios=(1.15, 1.0), wspace=0.08)
    ax = fig.add_subplot(grid[0], projection="3d")
    faces = _solid_surface(mesh, density >= threshold)
    if len(faces):
        polygons = x[faces][..., up]
        # outward normals (the faces are in the cyclic order of their solid cell)
        normal = np.cross(polygons[:, 1] - polygons[:, 0], polygons[:, 2] - polygons[:, 1])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
        light = np.array([0.3, -0.6, 0.75]) / np.linalg.norm([0.3, -0.6, 0.75])
        grey = 0.3 + 0.6 * np.abs(normal @ light)
        colours = np.stack([grey, grey, grey, np.ones_like(grey)], axis=1)
        edges = colours * np.array([0.8, 0.8, 0.8, 1.0])
        ax.add_collection3d(Poly3DCollection(polygons, facecolors=colours, edgecolors=edges,
                                             linewidths=0.3))
    else:
        ax.text2D(0.5, 0.5, f"no cell with density >= {threshold:g}", ha="center",
                  transform=ax.transAxes)
    _axes_3d(ax, lo[up], hi[up])
    ax.set_ylabel("z")
    ax.set_zlabel("y", labelpad=-4)
    ax.set_title(f"cells with density >= {threshold:g}", fontsize=10)
    corners = x[mesh.cells_np][..., :2]
    low, high = corners.min(axis=1), corners.max(axis=1)
    rectangles = np.stack([low, np.stack([high[:, 0], low[:, 1]], 1), high,
                           np.stack([low[:, 0], high[:, 1]], 1)], axis=1)
    order = np.argsort(density, kind="stable")  # the densest cell of a column drawn last
    side = fig.add_subplot(grid[1])
    norm = Normalize(0.0, 1.0)
    cells = PolyCollection(rectangles[order], array=density[order], cmap="gray_r", norm=norm,
                           edgecolors="face", linewidths=0.3)
    side.add_collection(cells)
    side.set_xlim(lo[0], hi[0])
    side.set_ylim(lo[1], hi[1])
    side.set_aspect("equal")
    side.set_xlabel("x")
    side.set_ylabel("y")
    side.set_title("largest density along z", fontsize=10)
    fig.colorbar(ScalarMappable(norm, "gray_r"), ax=side, shrink=0.6)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)
