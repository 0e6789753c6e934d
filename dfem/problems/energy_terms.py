"""What an energy problem is made of besides its cell density: boundary terms, and the
closed-form kernels registered for quadratic densities."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dfem.assembly.sparsity import add_at
from dfem.basis.vector import interleave
from dfem.exceptions import DfemError

_KERNELS: dict = {}


def register_kernel(density, kernel) -> None:
    """Use ``kernel(problem) -> (values, F) | None`` for problems with ``density``.

    ``values`` are the CSR values of the (constant) tangent in ``problem.space.pattern``
    and ``F`` the load, so that ``R(u) = K u - F``; both differentiable in the problem's
    parameters. Returning None falls back to the generic path (e.g. for a boundary
    term the kernel does not know).
    """
    _KERNELS[density] = kernel


def registered_kernel(density):
    """The kernel :func:`register_kernel` attached to ``density``, or None."""
    return _KERNELS.get(density)


@dataclass
class BoundaryTerm:
    """``int_tag psi_b(u, x, n, params)``; ``load=True`` scales it with the load factor."""

    tag: str
    density: object
    params: dict = field(default_factory=dict)
    load: bool = False


def boundary_terms(boundary) -> list[BoundaryTerm]:
    """``{tag: density | (density, params) | BoundaryTerm | [...]}`` as a list of terms."""
    terms = []
    for tag, spec in (boundary or {}).items():
        items = spec if isinstance(spec, list) else [spec]
        for item in items:
            if isinstance(item, BoundaryTerm):
                terms.append(item)
            elif isinstance(item, tuple) and len(item) == 2 and callable(item[0]):
                terms.append(BoundaryTerm(tag, item[0], dict(item[1] or {})))
            elif callable(item):
                terms.append(BoundaryTerm(tag, item))
            else:
                raise DfemError(
                    f"the boundary term on {tag!r} must be a density psi(u, x, n, params), a "
                    f"pair (density, params) or a BoundaryTerm, got {item!r}."
                )
    return terms


def point_load_vector(space, point_loads: dict) -> torch.Tensor | None:
    """The concentrated loads ``{tag: load}`` as a dof vector (n_dofs,), or None for none.

    ``load`` is a number (scalar space) or ``d`` numbers (a vector space of d components),
    applied at every node of the point or boundary tag ``tag``; a DfemError names a load
    of the wrong shape or a non-finite one.
    """
    if not point_loads:
        return None
    d = space.n_components
    scalar = getattr(space, "scalar", space)
    P = torch.zeros(space.n_dofs, dtype=space.dtype, device=space.device)
    for tag, value in point_loads.items():
        nodes = scalar.boundary_dofs(tag)
        load = torch.as_tensor(value, dtype=space.dtype, device=space.device)
        if load.shape not in ((), (d,)) or (d > 1 and load.shape != (d,)):
            raise DfemError(f"the point load on {tag!r} must be "
                            + ("a number" if d == 1 else f"{d} numbers (one per component)")
                            + f", got {value!r}.")
        if not bool(torch.isfinite(load).all()):
            raise DfemError(f"the point load on {tag!r} is not finite: {value!r}.")
        P = add_at(P, interleave(nodes[:, None], d), load.expand(len(nodes), d))
    return P
