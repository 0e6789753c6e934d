"""Distributed solves under MPI: each rank assembles its own cells, PETSc solves the whole.

Run as ``mpirun -n 2 python script.py``::

    import dfem
    from dfem.distributed import allreduce_sum, distribute

    mesh = distribute(dfem.read_mesh("part.msh"))      # this rank's cells
    space = dfem.FunctionSpace(mesh, "P2")
    problem = dfem.Poisson(space, nu=1.0, f=1.0, dirichlet={"boundary": 0.0})
    u = problem.solve(method="petsc")                  # this rank's dofs of u
    J = allreduce_sum(problem.energy(u))               # the energy of the whole

See ``docs/distributed.md``: the partition (:mod:`~dfem.distributed.partition`), the dof
numbering (:mod:`~dfem.distributed.dofs`), the reductions (:mod:`~dfem.distributed.comm`)
and the output of one VTU per rank (:mod:`~dfem.distributed.output`).
"""

from dfem.distributed.comm import allreduce_sum, launched_by_mpirun, world, world_size
from dfem.distributed.dofs import DofDistribution, distribution, partition_of
from dfem.distributed.partition import Partition, distribute, partition_cells

__all__ = ["DofDistribution", "Partition", "allreduce_sum", "distribute", "distribution",
           "launched_by_mpirun", "partition_cells", "partition_of", "world", "world_size"]
