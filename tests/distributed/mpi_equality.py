"""Run under ``mpirun -n N python tests/distributed/mpi_equality.py OUT.json``.

Every rank solves each problem twice: on the whole mesh by itself (the direct solver: the
serial reference) and on its part of the mesh, distributed with the other ranks
(``method="petsc"``). Rank 0 writes the largest relative differences of the solution,
the energy, an objective and its gradient with respect to a per-cell coefficient, and
the remainders of a Taylor test of the distributed gradient, to OUT.json, which
``test_mpi.py`` checks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

import dfem
from dfem.distributed import Partition, allreduce_sum, distribution
from dfem.distributed.comm import allreduce
from dfem.mesh import read_mesh, rectangle

MESHES = Path(__file__).resolve().parents[2] / "cases" / "meshes"
TOL = 1e-13


def mean_square(space, u):
    """``J(u) = int |u|^2 dx``: not the energy, so its adjoint is a solve of its own."""
    if hasattr(space, "scalar"):
        g = space.scalar.geometry()
        nodal = space.components(u)  # (n_nodes, d)
        uq = torch.stack([space.scalar.at_quadrature(nodal[:, i], g)[0]
                          for i in range(space.n_components)], -1)
        return ((uq**2).sum(-1) * g.weights).sum()
    g = space.geometry()
    uq, _ = space.at_quadrature(u, g)
    return (uq**2 * g.weights).sum()


def poisson(space, nu, tags):
    dirichlet, neumann = tags
    return dfem.Poisson(space, nu=nu, f=lambda x: 1.0 + x[..., 0] * x[..., 1],
                        dirichlet={dirichlet: lambda x: 0.1 * x[..., 0] - 0.2 * x[..., 1]},
                        neumann={neumann: 0.5})


def elasticity(space, E, tags):
    support, loaded = tags
    dim = space.mesh.nodes.shape[1]
    traction = [0.0] * (dim - 1) + [-0.1]
    return dfem.LinearElasticity(space, E=E, poisson_ratio=0.3, dirichlet={support: 0.0},
                                 traction={loaded: traction})


def coefficient(mesh):
    """A per-cell field, the same on every rank."""
    c = mesh.nodes[mesh.cells].mean(1).detach()
    return 1.0 + 0.5 * torch.sin(3.0 * c[:, 0]) * torch.cos(2.0 * c[:, 1])


def compare(name, mesh, element, build, tags, comm, vector=False, owner=None,
            partitioner="rcb"):
    shape = (mesh.dim,) if vector else ()
    rank = comm.Get_rank()
    # the serial reference, on the whole mesh
    whole = dfem.FunctionSpace(mesh, element, shape=shape)
    field = coefficient(mesh).requires_grad_()
    problem = build(whole, field, tags)
    u = problem.solve(method="direct")
    energy = float(problem.energy(u.detach()))
    J = mean_square(whole, u)
    J.backward()
    grad = field.grad.clone()

    # distributed
    part = Partition(mesh, comm, owner=owner, partitioner=partitioner)
    space = dfem.FunctionSpace(part.mesh, element, shape=shape)
    dist = distribution(space)
    local_field = coefficient(mesh)[part.cells].clone().requires_grad_()
    local = build(space, local_field, tags)
    u_local = local.solve(method="petsc", rtol=TOL)
    energy_local = float(allreduce_sum(local.energy(u_local.detach())))
    J_local = allreduce_sum(mean_square(space, u_local))
    J_local.backward()
    # the per-cell gradient stays on its rank; gathered here only to compare
    grad_parts = comm.allgather((part.cells, local_field.grad.numpy()))
    grad_all = np.zeros(mesh.n_cells)
    for cells, values in grad_parts:
        grad_all[cells] = values

    u_gap = float((u_local.detach() - u.detach()[dist.global_dofs]).abs().max())
    u_gap = allreduce(u_gap, "max", comm) / float(u.detach().abs().max())

    # Taylor test of the distributed gradient in a direction the same on every rank
    direction = torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, mesh.n_cells))
    slope = float(allreduce_sum((local_field.grad * direction[part.cells]).sum()))
    remainders = []
    for h in (1e-2, 5e-3, 2.5e-3):
        moved = (coefficient(mesh) + h * direction)[part.cells]
        value = allreduce_sum(mean_square(space, build(space, moved, tags).solve(
            method="petsc", rtol=TOL)))
        remainders.append(abs(float(value) - float(J_local) - h * slope))
    result = {
        "name": name,
        "ranks": comm.Get_size(),
        "dofs": whole.n_dofs,
        "local_dofs": comm.allgather(space.n_dofs),
        "solution_rel": u_gap,
        "energy_rel": abs(energy_local - energy) / abs(energy),
        "objective_rel": abs(float(J_local) - float(J)) / abs(float(J)),
        "gradient_rel": float(np.abs(grad_all - grad.numpy()).max() / grad.abs().max()),
        "taylor_remainders": remainders,
        "iterations": local.last_solve["info"].iterations,
    }
    if rank == 0:
        print(json.dumps(result), flush=True)
    return result


def main(out):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    torch.set_default_dtype(torch.float64)
    lshape = read_mesh(MESHES / "lshape.msh")
    # the last rank holds one corner triangle, all of whose dofs are fixed
    square = rectangle(6, 6, "tri")
    corner = next(k for k, cell in enumerate(square.cells_np)
                  if np.isin(cell, square.boundary_nodes).all())
    lonely = np.zeros(square.n_cells, dtype=np.int64)
    lonely[corner] = comm.Get_size() - 1
    block = read_mesh(MESHES / "block_with_hole.msh")
    results = [
        compare("poisson 2D P2 (lshape.msh)", lshape, "P2", poisson, ("outer", "reentrant"),
                comm),
        compare("elasticity 2D P1 (lshape.msh)", lshape, "P1", elasticity,
                ("outer", "reentrant"), comm, vector=True),
        compare("poisson 2D P1, a rank without free dofs", square, "P1", poisson,
                ("boundary", "right"), comm, owner=lonely),
        compare("poisson 3D P1 (block_with_hole.msh)", block, "P1", poisson, ("left", "hole"),
                comm),
        compare("poisson 3D P2 (block_with_hole.msh), METIS parts", block, "P2", poisson,
                ("left", "right"), comm, partitioner="metis"),
        compare("elasticity 3D P1 (block_with_hole.msh)", block, "P1", elasticity,
                ("left", "right"), comm, vector=True),
    ]
    if comm.Get_rank() == 0:
        Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
