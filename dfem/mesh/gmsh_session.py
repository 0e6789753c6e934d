"""A reproducible gmsh session, for the scripts that make the shipped meshes
(``cases/meshes/*.py``): the same input gives the same ``.msh`` file, byte for byte."""

from __future__ import annotations

import contextlib

__all__ = ["gmsh_session"]


@contextlib.contextmanager
def gmsh_session(model: str, msh_version: float = 2.2, options=None):
    """gmsh initialised for one model and finalised after the block, yielding the module.

    Parameters
    ----------
    model : str
        The model's name.
    msh_version : float
        The ``.msh`` format written (ASCII): 2.2 or 4.1.
    options : dict of str -> number, optional
        Further gmsh options (``{"Mesh.Algorithm": 6}``), set after the ones that make
        the output reproducible: no terminal output, one thread, a fixed random seed.
    """
    import gmsh

    # interruptible=False keeps Python's Ctrl-C handler (gmsh would set SIG_DFL for good)
    gmsh.initialize(["-noenv"], readConfigFiles=False, interruptible=False)
    try:
        settings = {"General.Terminal": 0, "General.NumThreads": 1, "Mesh.RandomSeed": 1,
                    **(options or {}), "Mesh.MshFileVersion": msh_version, "Mesh.Binary": 0}
        for name, value in settings.items():
            gmsh.option.setNumber(name, value)
        gmsh.model.add(model)
        yield gmsh
    finally:
        gmsh.finalize()
