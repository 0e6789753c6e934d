"""Coefficient identification in 3D: the same unknowns, regularisers and adjoint as 2D (the
Taylor test and the recovery of a representable field run in both dimensions in
test_identification.py)."""

from __future__ import annotations

import pytest

import dfem
from dfem.inverse import CellLogDiffusivity

pytestmark = pytest.mark.usefixtures("one_thread")


def _space(cell="tet", element="P2", n=3):
    return dfem.FunctionSpace(dfem.mesh.box(n, cell=cell), element)


def test_facet_regularisation_uses_face_areas():
    # the Tikhonov sum of a per-cell field m = a x over the interior faces of a hex box:
    # each face between x-neighbours has area h^2, centroid distance h and jump a h
    n, a = 4, 0.7
    space = _space("hex", "Q1", n)
    unknown = CellLogDiffusivity(space)
    centroids = space.mesh.nodes[space.mesh.cells].mean(dim=1)
    value = float(unknown.regularization(a * centroids[:, 0], "tikhonov", 0.0))
    faces = (n - 1) * n * n  # interior faces normal to x
    h = 1.0 / n
    assert value == pytest.approx(0.5 * faces * (h * h / h) * (a * h) ** 2, rel=1e-12)


def test_dfem_inverse_on_a_3d_box(tmp_path):
    from dfem.cli import main

    config = tmp_path / "inverse.toml"
    config.write_text(
        'element = "P1"\n[mesh]\nnx = 4\nny = 4\nnz = 4\ncell = "tet"\n'
        '[problem]\nnu = "exp(0.5*sin(3*x)*y - 0.3*z)"\nf = 1.0\n'
        '[boundary.boundary]\ndirichlet = 0.0\n'
        '[observations]\nnoise = 0.001\nseed = 0\nsensors = 60\n'
        '[inverse]\nunknown = "log_nu_nodal"\nregularization = "tikhonov"\nweight = 1e-4\n'
        'max_iter = 100\n')
    out = tmp_path / "out"
    assert main(["inverse", str(config), "--out", str(out)]) == 0
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["sensors"] and report["observations"] == 60
    # 60 sensors with 0.1 % noise: the misfit reaches the noise level (chi^2 ~ N / 2)
    assert report["misfit"] < 60
    assert report["log_nu_rel_l2_error"] < 0.5
    assert {p.name for p in out.iterdir()} >= {"report.json", "recovered.png"}
