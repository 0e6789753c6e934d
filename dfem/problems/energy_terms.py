"""What an energy problem is made of besides its cell density: boundary terms, and the
closed-form kernels registered for quadratic densities."""

from __future__ import annotations

from dataclasses import dataclass, field

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
