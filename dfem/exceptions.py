"""Errors a user can cause, raised with a message that names the problem and the fix."""


class DfemError(ValueError):
    """Bad input to dfem: a bad mesh, coefficient, boundary condition or case file.

    The command line prints these without a traceback and exits with status 2.
    """


class MeshError(DfemError):
    """A mesh that cannot be used: inverted or degenerate cells, dangling nodes, bad tags."""


class ConvergenceError(RuntimeError):
    """An iterative solver stopped short of its tolerance."""
