"""Dirichlet conditions ``u = u_D`` on boundary tags, for scalar and vector spaces.

One mechanism for every problem: the Dirichlet dofs are fixed (nodal or Greville
interpolation of ``u_D``), and problems eliminate them (lifting). Where tags meet,
the tag listed later wins.

Values per tag
--------------
scalar space
    a number, a callable of x (evaluated at the tag's dof coordinates), or a tensor
    with one value per dof of the tag (in the order of ``space.boundary_dofs(tag)``)
    or per dof of the space.
vector space (``d`` components)
    - a number or a scalar form as above: every component;
    - a list/tuple of ``d`` entries, each a scalar form or ``None`` (left free);
    - a dict of some components, ``{"x": 0.0}`` (a roller) or ``{0: 0.0, "uy": g}``;
    - a callable of x returning (n, d);
    - a tensor (n_tag_nodes, d) or (n_nodes_of_space, d).
"""

from __future__ import annotations

import torch

from dfem.exceptions import DfemError


def scalar_values(space, tag, value, dofs: torch.Tensor, label: str) -> torch.Tensor:
    """Values of one scalar Dirichlet datum at the scalar ``dofs`` of ``tag``."""
    like = dict(dtype=space.dtype, device=space.device)
    if callable(value) and not torch.is_tensor(value):
        v = torch.as_tensor(space.boundary_interpolant(tag, value, dofs), **like)
    elif torch.is_tensor(value):
        v = value.to(**like)
    else:
        try:
            v = torch.as_tensor(value, **like)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise DfemError(
                f"the Dirichlet value {label} is {value!r}; give a number, a callable of x "
                "or an array of values."
            ) from exc
    if not bool(torch.isfinite(v.detach()).all()):
        raise DfemError(f"the Dirichlet values {label} are not all finite (inf or NaN).")
    if v.ndim == 0:
        return v.expand(len(dofs))
    if v.shape == (len(dofs),):
        return v
    if v.shape == (space.n_dofs,):
        return v[dofs]
    raise DfemError(
        f"the Dirichlet values {label} have shape {tuple(v.shape)}; give a number, a "
        f"callable of x, or an array with one value per dof of the tag ({len(dofs)}, in the "
        f"order of space.boundary_dofs({tag!r})) or per dof of the space ({space.n_dofs})."
    )


def _components(space, tag, value) -> dict:
    """The Dirichlet datum of a vector space, as ``{component: scalar datum}``."""
    d = space.n_components
    if isinstance(value, dict):
        return {space.component(name): v for name, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) != d:
            raise DfemError(
                f"the Dirichlet value for {tag!r} has {len(value)} entries; a {d}-component "
                f"space needs {d} (use None for a free component, or a dict such as "
                "{'x': 0.0} to fix only some)."
            )
        return {i: v for i, v in enumerate(value) if v is not None}
    if callable(value) and not torch.is_tensor(value):
        return {i: _column(value, i, d, tag) for i in range(d)}
    if torch.is_tensor(value) and value.ndim >= 1:
        if value.shape[-1] != d:
            raise DfemError(
                f"the Dirichlet values for {tag!r} have shape {tuple(value.shape)}; a "
                f"{d}-component space needs a last axis of length {d}."
            )
        return {i: value[..., i] for i in range(d)}
    return dict.fromkeys(range(d), value)


def _column(fn, i: int, d: int, tag):
    def column(x):
        value = torch.as_tensor(fn(x), dtype=x.dtype, device=x.device)
        if value.ndim == 0:
            return value
        if value.shape[-1] != d:
            raise DfemError(
                f"the Dirichlet function for {tag!r} returned shape {tuple(value.shape)}; on a "
                f"{d}-component space it must return (n, {d})."
            )
        return value[..., i]

    return column


def _condition_parts(space, conditions: dict):
    """``(k, tag, dofs, (value_space, value, value_dofs, label))`` for every tag and
    component a condition fixes, in the order given: ``scalar_values(value_space, tag,
    value, value_dofs, label)`` are that part's Dirichlet values at ``dofs``."""
    d = space.n_components
    for k, (tag, value) in enumerate(conditions.items()):
        if not hasattr(space, "scalar"):
            dofs = space.boundary_dofs(tag)
            yield k, tag, dofs, (space, value, dofs, f"for {tag!r}")
            continue
        scalar_dofs = space.scalar.boundary_dofs(tag)
        for i, v in _components(space, tag, value).items():
            yield k, tag, scalar_dofs * d + i, (space.scalar, v, scalar_dofs,
                                                f"for {tag!r}, component {i}")


def fixed_by_tag(space, conditions: dict) -> dict:
    """``{tag: dofs}``: the dofs each condition fixes, a dof shared by two tags going to the
    tag listed later (the one whose value it takes). On one rank's part of a distributed
    mesh, the rank's dofs among those the conditions fix on the whole mesh."""
    from dfem.distributed.dofs import distribution

    dist = distribution(space)
    if dist is not None:
        return {tag: dist.local(dofs)
                for tag, dofs in fixed_by_tag(dist.global_space, conditions).items()}
    owner = torch.full((space.n_dofs,), -1, dtype=torch.int64, device=space.device)
    for k, _, dofs, _ in _condition_parts(space, conditions):
        owner[dofs] = k
    return {tag: torch.nonzero(owner == k).ravel() for k, tag in enumerate(conditions)}


def dirichlet_data(space, conditions: dict, scale=1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The Dirichlet dofs (sorted) and a full vector holding ``scale * u_D`` (zero elsewhere).

    On one rank's part of a distributed mesh the conditions are those of the whole mesh,
    restricted to the rank's dofs: a dof on a tagged facet of another rank's cell is fixed
    here too, with the same value, so all ranks solve for the same free dofs.
    """
    from dfem.distributed.dofs import distribution

    dist = distribution(space)
    if dist is not None:
        fixed, full = dirichlet_data(dist.global_space, conditions, scale)
        return dist.local(fixed), full[dist.global_dofs]
    full = torch.zeros(space.n_dofs, dtype=space.dtype, device=space.device)
    mask = torch.zeros(space.n_dofs, dtype=torch.bool, device=space.device)
    for _, tag, dofs, (value_space, value, value_dofs, label) in _condition_parts(
            space, conditions):
        v = scalar_values(value_space, tag, value, value_dofs, label)
        full = full.index_put((dofs,), v * scale if scale != 1.0 else v)
        mask[dofs] = True
    return torch.nonzero(mask).ravel(), full
