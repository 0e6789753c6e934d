"""Named random fields as case-file coefficients: ``nu = {field = "lognormal", w = [...]}``.

``field = "lognormal"``
    The DSA paper's family (:class:`dfem.surrogates.LogNormalDiffusivity`): ``w``, a
    list of 4 numbers (one per root), or ``seed`` to draw ``w`` uniformly from
    ``[-bound, bound]^4``; optional ``roots`` (the ``a_i``) and ``bound`` (3).
``field = "karhunen-loeve"``
    A log-normal Karhunen–Loève field (:class:`dfem.surrogates.KarhunenLoeve`):
    ``modes`` (16), ``length`` (0.3), ``sigma`` (1), ``mean`` (0), and ``w`` (one
    number per mode) or ``seed`` to draw ``w`` from N(0, 1).
"""

from __future__ import annotations

import math

import torch

from dfem.exceptions import DfemError

_KEYS = {
    "lognormal": {"field", "w", "seed", "roots", "bound"},
    "karhunen-loeve": {"field", "w", "seed", "modes", "length", "sigma", "mean"},
}


def field_coefficient(spec: dict, name: str):
    """The callable ``nu(x)`` a case file's field table describes (``name`` for messages)."""
    family, w = field_family(spec, name)
    return family.field(w)


def field_family(spec: dict, name: str):
    """The field family and the parameters ``w`` (a float64 tensor) a field table names."""
    from dfem.problems.random_fields import FIELDS

    kind = spec.get("field")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise DfemError(
            f"{name} is a table, so it names a field sampler: {name}.field must be one of "
            f"{', '.join(repr(k) for k in FIELDS)}, got {kind!r}."
        )
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        raise DfemError(
            f"unknown key(s) {', '.join(sorted(unknown))} in {name} (field {kind!r}); "
            f"known keys: {', '.join(sorted(_KEYS[kind]))}."
        )
    options = {k: v for k, v in spec.items() if k not in ("field", "w", "seed")}
    for key, value in options.items():
        if key == "roots":
            if not (isinstance(value, list) and value and all(map(_is_number, value))):
                raise DfemError(f"{name}.roots must be a list of positive numbers.")
        elif key == "modes":
            if not (isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 4096):
                raise DfemError(f"{name}.modes must be a positive integer (at most 4096).")
        elif not _is_number(value):
            raise DfemError(f"{name}.{key} must be a number, got {value!r}.")
    family = FIELDS[kind](**options)
    if ("w" in spec) == ("seed" in spec):
        raise DfemError(
            f"{name} needs exactly one of w (the {family.m} field parameters) or seed "
            f"(to draw them at random)."
        )
    if "seed" in spec:
        seed = spec["seed"]
        if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63):
            raise DfemError(f"{name}.seed must be a non-negative integer, got {seed!r}.")
        return family, family.sample(1, seed=seed)[0]
    w = spec["w"]
    if not (isinstance(w, list) and all(map(_is_number, w))):
        raise DfemError(f"{name}.w must be a list of {family.m} numbers, got {w!r}.")
    family.field(w)  # checks the length
    return family, torch.as_tensor(w, dtype=torch.float64)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
        and abs(v) < 1e300
