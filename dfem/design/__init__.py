"""Design optimisation through the differentiable solver: SIMP topology optimisation.

The data path: design variables per cell -> filter (:mod:`~dfem.design.filters`) ->
Heaviside projection -> SIMP modulus (:mod:`~dfem.design.simp`) -> the elastic or thermal
solve -> compliance, its gradient by the adjoint -> an optimality-criteria or MMA update
(:mod:`~dfem.design.optimizers`), in :class:`~dfem.design.topology.TopologyOptimization`.
The classic problems are in :mod:`~dfem.design.problems`.
"""

from dfem.design.filters import DensityFilter, HelmholtzFilter, heaviside
from dfem.design.optimizers import MMA, oc_update
from dfem.design.problems import PROBLEMS, cantilever, cantilever_3d, heat_sink, mbb_beam
from dfem.design.simp import StructuralCompliance, ThermalCompliance, simp
from dfem.design.topology import TopologyOptimization

__all__ = [
    "MMA",
    "PROBLEMS",
    "DensityFilter",
    "HelmholtzFilter",
    "StructuralCompliance",
    "ThermalCompliance",
    "TopologyOptimization",
    "cantilever",
    "cantilever_3d",
    "heat_sink",
    "heaviside",
    "mbb_beam",
    "oc_update",
    "simp",
]
