"""Design optimisation through the differentiable solver: SIMP topology optimisation.

The data path: design variables per cell -> filter (:mod:`~dfem.design.filters`) ->
Heaviside projection -> SIMP modulus (:mod:`~dfem.design.compliance`) -> the elastic or thermal
solve -> compliance, its gradient by the adjoint -> an optimality-criteria or MMA update
(:mod:`~dfem.design.optimizers`), in :class:`~dfem.design.topology.TopologyOptimization`.
The classic problems are in :mod:`~dfem.design.problems`. NURBS shape optimisation
(:mod:`~dfem.design.shape`): control points of an isogeometric patch as design variables
(:mod:`~dfem.design.control_points`), guarded against inverted elements
(:mod:`~dfem.design.guard`), pictured by :mod:`~dfem.design.shape_plots`.
"""

from dfem.design.compliance import StructuralCompliance, ThermalCompliance, simp
from dfem.design.control_points import (
    ControlPointDesign,
    RefinementOperator,
    refinement_operator,
    side_design,
)
from dfem.design.filters import DensityFilter, HelmholtzFilter, heaviside
from dfem.design.guard import Backtrack, GuardReport, JacobianGuard, backtrack, soft_min_ratio
from dfem.design.optimizers import MMA, oc_update
from dfem.design.problems import PROBLEMS, cantilever, cantilever_3d, heat_sink, mbb_beam
from dfem.design.shape import (
    OBJECTIVES,
    Evaluation,
    ShapeObjective,
    ShapeResult,
    optimize_shape,
    plate_problem,
    plate_with_hole_design,
    stress_aggregate,
)
from dfem.design.shape_plots import plot_shapes
from dfem.design.topology import TopologyOptimization

__all__ = [
    "MMA",
    "OBJECTIVES",
    "PROBLEMS",
    "Backtrack",
    "ControlPointDesign",
    "DensityFilter",
    "Evaluation",
    "GuardReport",
    "HelmholtzFilter",
    "JacobianGuard",
    "RefinementOperator",
    "ShapeObjective",
    "ShapeResult",
    "StructuralCompliance",
    "ThermalCompliance",
    "TopologyOptimization",
    "backtrack",
    "cantilever",
    "cantilever_3d",
    "heat_sink",
    "heaviside",
    "mbb_beam",
    "oc_update",
    "optimize_shape",
    "plate_problem",
    "plate_with_hole_design",
    "plot_shapes",
    "refinement_operator",
    "side_design",
    "simp",
    "soft_min_ratio",
    "stress_aggregate",
]
