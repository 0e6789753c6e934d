"""Piecewise-constant projection of 2D maps (DSA paper, appendix B.1).

A map ``x`` of shape (B, C, H, W) is cut into the pieces ``I_1, ..., I_k`` of the
partition of the pixels into connected components of equal value of the mask
``x > threshold`` (foreground components *and* background components). The
projection replaces every piece by its mean,

.. math:: h(x)_s = \\frac{1}{|I_i|} \\sum_{t \\in I_i} x_t \\qquad (s \\in I_i),

and, with the partition held constant, its Jacobian is the paper's eq. 19,

.. math:: J(s, t) = \\frac{\\partial h_s}{\\partial x_t}
          = \\begin{cases} 1/|I_i| & s, t \\in I_i \\\\ 0 & \\text{otherwise,} \\end{cases}

a symmetric projector, so ``J^T v`` is again the mean of ``v`` over each piece:
O(HW) with ``index_add``, never a dense matrix.

Connected components are found either by ``scipy.ndimage.label`` (CPU) or by a
vectorised torch algorithm (any device): pixels start pointing at the start of
their horizontal run, then min-label hooking of tree roots across the remaining
edges with ``scatter_reduce(amin)`` followed by pointer jumping ``L <- L[L]``
until every pixel points at its root, repeated until no edge joins two trees
(a few rounds even for spirals: the rounds do not grow with the path length).
Both backends return the same labels: the smallest flat index (into the whole
batch) of a pixel of the component, so labels are unique across maps and channels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dfem.exceptions import DfemError

BACKENDS = ("auto", "torch", "scipy")


def _check_options(connectivity: int, backend: str) -> None:
    if connectivity not in (4, 8):
        raise DfemError(
            f"connectivity must be 4 (edge neighbours) or 8 (edge and corner neighbours), "
            f"got {connectivity!r}."
        )
    if backend not in BACKENDS:
        raise DfemError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")


def _check(t: torch.Tensor, connectivity: int, backend: str, what: str) -> str:
    """Validate the input and options; return the backend to use ("torch" or "scipy")."""
    if not isinstance(t, torch.Tensor) or t.dim() != 4:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise DfemError(
            f"{what} must be a 4-D tensor of shape (B, C, H, W), got {shape}; "
            f"add the missing batch/channel axes, e.g. x[None, None] for one H x W map."
        )
    _check_options(connectivity, backend)
    if backend == "auto":
        return "scipy" if t.device.type == "cpu" else "torch"
    if backend == "scipy" and t.device.type != "cpu":
        raise DfemError(
            f"backend 'scipy' runs on the CPU only but the tensor is on {t.device}; "
            f"use backend='torch' (or 'auto'), or move the tensor with .cpu()."
        )
    return backend


def _runs_and_edges(mask: torch.Tensor, connectivity: int):
    """Start labels and the edges still needed to join them, all as flat indices.

    Each pixel starts pointing at the first pixel of its horizontal run of equal
    value (a cumulative max of run starts), which joins every horizontal edge at
    once. What remains are vertical edges (i, j)-(i+1, j) of equal value, less the
    redundant ones: if (i, j-1)-(i+1, j-1) is an edge and (i, j-1), (i, j) share a
    run, all four pixels are equal and already joined. With 8-connectivity a
    diagonal edge is needed only in a 2x2 checkerboard block; otherwise a
    horizontal and a vertical edge of the same value join its ends.
    """
    m = mask.reshape(-1, *mask.shape[-2:])
    width = m.shape[-1]
    idx = torch.arange(m.numel(), device=m.device).view(m.shape)
    same_h = m[:, :, 1:] == m[:, :, :-1]
    start = torch.ones_like(m)
    start[:, :, 1:] = ~same_h
    labels = torch.where(start, idx, 0).cummax(dim=-1).values.reshape(-1)
    same_v = m[:, 1:] == m[:, :-1]
    need = same_v.clone()
    need[:, :, 1:] &= ~(same_v[:, :, :-1] & same_h[:, :-1])
    src = [idx[:, :-1][need]]
    dst = [src[0] + width]
    if connectivity == 8:
        # block (i, j), (i, j+1), (i+1, j), (i+1, j+1) with both rows and both columns changing
        board = ~same_h[:, :-1] & ~same_h[:, 1:] & ~same_v[:, :, :-1]
        corner = idx[:, :-1, :-1][board]
        src += [corner, corner + 1]
        dst += [corner + width + 1, corner + width]
    return labels, torch.cat(src), torch.cat(dst)


def _label_torch(mask: torch.Tensor, connectivity: int) -> tuple[torch.Tensor, int]:
    """Vectorised labelling; returns (labels, number of hooking rounds).

    Invariant: ``L[p] <= p`` (pointers run to smaller indices, so there are no
    cycles) and, after the pointer jumping of each round, ``L[p]`` is a root
    (``L[L[p]] = L[p]``). An edge (s, t) with roots ``r_s != r_t`` hooks the
    larger root below the smaller, ``L[max] <- min(L[max], min)``. An edge whose
    ends share a root never separates again, so it is dropped; the loop ends when
    no edge is left. The root of a component is its smallest flat index.
    """
    labels, src, dst = _runs_and_edges(mask, connectivity)
    rounds = 0
    while src.numel() > 0:
        ls, lt = labels[src], labels[dst]
        keep = ls != lt
        src, dst, ls, lt = src[keep], dst[keep], ls[keep], lt[keep]
        if src.numel() == 0:
            break
        rounds += 1
        labels.scatter_reduce_(0, torch.maximum(ls, lt), torch.minimum(ls, lt), reduce="amin")
        while True:  # pointer jumping: depth halves each pass
            jumped = labels[labels]
            if torch.equal(jumped, labels):
                break
            labels = jumped
    return labels.view(mask.shape), rounds


def _label_scipy(mask: torch.Tensor, connectivity: int) -> torch.Tensor:
    """``scipy.ndimage.label`` of foreground and background, one call each for the batch."""
    from scipy import ndimage

    m = mask.numpy()
    structure = np.zeros((3, 3, 3, 3), dtype=bool)  # no links across batch or channel axes
    structure[1, 1] = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    fg, k = ndimage.label(m, structure=structure)
    bg, k_bg = ndimage.label(~m, structure=structure)
    # fg labels 1..k, bg labels k+1..k+k_bg, then 0-based
    comp = torch.from_numpy(np.where(m, fg, bg + k).astype(np.int64) - 1).reshape(-1)
    # relabel each component by its smallest flat index, as the torch backend does
    flat = torch.arange(comp.numel())
    first = torch.full((k + k_bg,), comp.numel(), dtype=torch.int64)
    first.scatter_reduce_(0, comp, flat, reduce="amin")
    return first[comp].view(mask.shape)


def connected_components(
    mask: torch.Tensor, connectivity: int = 4, backend: str = "auto"
) -> torch.Tensor:
    """Label the partition of each map into connected components of equal mask value.

    Parameters
    ----------
    mask : torch.Tensor
        Bool tensor (B, C, H, W), any device. Each (b, c) map is labelled on its own.
    connectivity : {4, 8}
        Pixels ``p``, ``q`` are neighbours if ``|p - q|_1 = 1`` (4) or
        ``|p - q|_inf = 1`` (8). The *same* connectivity is used for foreground
        and background, so every pixel is in exactly one component and the
        components partition the map. (With 8 a diagonal foreground pair and the
        crossing background pair are both connected; this is still a partition,
        it only is not the topologically dual 8/4 pairing.)
    backend : {"auto", "torch", "scipy"}
        "scipy": ``scipy.ndimage.label`` on CPU; "torch": vectorised hooking and
        pointer jumping on the tensor's device; "auto": scipy for CPU tensors,
        torch otherwise. Both give identical labels.

    Returns
    -------
    torch.Tensor
        int64 (B, C, H, W) on the mask's device: for each pixel the smallest flat
        index (into the whole (B, C, H, W) tensor) of a pixel of its component, so
        two maps never share a label and labels lie in ``[0, B*C*H*W)``.
    """
    backend = _check(mask, connectivity, backend, "mask")
    if mask.dtype != torch.bool:
        raise DfemError(
            f"mask must be a bool tensor, got dtype {mask.dtype}; threshold it first, "
            f"e.g. connected_components(x > 0.5)."
        )
    if mask.numel() == 0:
        return torch.zeros(mask.shape, dtype=torch.int64, device=mask.device)
    if backend == "scipy":
        return _label_scipy(mask, connectivity)
    return _label_torch(mask, connectivity)[0]


def _component_mean(values: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor):
    """Mean of ``values`` over each component, written back to every pixel (O(n))."""
    flat = values.reshape(-1)
    sums = torch.zeros(flat.numel(), dtype=flat.dtype, device=flat.device)
    sums.index_add_(0, labels, flat)
    return (sums / counts)[labels].view(values.shape)


class _ComponentMean(torch.autograd.Function):
    """``h = P x`` with ``P`` the per-component average (eq. 19); ``P`` is symmetric, so
    the backward is ``P v`` again. Backward calls this Function, so it is twice differentiable."""

    @staticmethod
    def forward(ctx, x, labels, counts):
        ctx.save_for_backward(labels, counts)
        return _component_mean(x, labels, counts)

    @staticmethod
    def backward(ctx, grad):
        labels, counts = ctx.saved_tensors
        return _ComponentMean.apply(grad.contiguous(), labels, counts), None, None


def project_2d(
    x: torch.Tensor, threshold: float = 0.5, connectivity: int = 4, backend: str = "auto"
) -> torch.Tensor:
    """Replace each connected component of ``x > threshold`` by the mean of ``x`` over it.

    Parameters
    ----------
    x : torch.Tensor
        Float tensor (B, C, H, W), finite, any device and float dtype.
    threshold : float
        The partition is that of the mask ``x > threshold`` (foreground and
        background components, see :func:`connected_components`).
    connectivity, backend
        As in :func:`connected_components`.

    Returns
    -------
    torch.Tensor
        ``h`` with ``h_s = |I_i|^{-1} sum_{t in I_i} x_t`` for ``s in I_i``. The
        backward is ``(J^T v)_t = |I_i|^{-1} sum_{s in I_i} v_s`` (eq. 19) with the
        partition held constant (it is piecewise constant in ``x``).
    """
    backend = _check(x, connectivity, backend, "x")
    if not x.is_floating_point():
        raise DfemError(f"x must be a float tensor, got dtype {x.dtype}; convert with x.float().")
    if not torch.isfinite(x).all():
        raise DfemError(
            "x contains NaN or infinite values, which have no component mean; "
            "check the layer that produced x (e.g. torch.nan_to_num or a smaller learning rate)."
        )
    if x.numel() == 0:
        return x.clone()
    with torch.no_grad():
        labels = connected_components(x.detach() > threshold, connectivity, backend).reshape(-1)
        counts = torch.bincount(labels, minlength=labels.numel()).clamp_(min=1).to(x.dtype)
    return _ComponentMean.apply(x.contiguous(), labels, counts)


def project_on_label_map(
    x: torch.Tensor, label_map: torch.Tensor, connectivity: int = 4, backend: str = "auto"
) -> torch.Tensor:
    """Replace every channel of ``x`` by its mean over each connected region of a label map.

    The partition is that of ``label_map`` (B, H, W), integer labels ``0..K-1``, into
    connected components of equal label: the multi-class form of :func:`project_2d`
    (for two classes and ``label_map = argmax`` of two probabilities it is the partition
    of ``p_1 > 0.5``). All channels share it, so the projection of a field of class
    probabilities is again one (a mean of probability vectors). The Jacobian is eq. 19
    on each channel, with the partition held constant.
    """
    backend = _check(x, connectivity, backend, "x")
    if label_map.dim() != 3 or label_map.shape != x.shape[:1] + x.shape[2:]:
        raise DfemError(
            f"label_map must have shape (B, H, W) = {tuple(x.shape[:1] + x.shape[2:])} to "
            f"match x {tuple(x.shape)}, got {tuple(label_map.shape)}."
        )
    if label_map.is_floating_point() or label_map.dtype == torch.bool:
        raise DfemError(f"label_map must hold integer labels, got dtype {label_map.dtype}.")
    if x.numel() == 0:
        return x.clone()
    with torch.no_grad():
        classes = int(label_map.max()) + 1
        one_hot = label_map[:, None] == torch.arange(classes, device=x.device)[:, None, None]
        per_class = connected_components(one_hot, connectivity, backend)  # (B, K, H, W)
        region = per_class.gather(1, label_map[:, None].long())  # (B, 1, H, W), unique ids
        offsets = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1) * per_class.numel()
        # compact ids: fewer regions than pixels, as _ComponentMean's sums expect
        _, labels = torch.unique((region + offsets).reshape(-1), return_inverse=True)
        counts = torch.bincount(labels, minlength=labels.numel()).clamp_(min=1).to(x.dtype)
    return _ComponentMean.apply(x.contiguous(), labels, counts)


class PiecewiseConstant2d(nn.Module):
    """Layer form of :func:`project_2d`: a piecewise-constant segmentation map.

    Use as the last layer of a segmentation network: the output is constant on
    each connected component of ``x > threshold`` (so the prediction has no
    speckles within a region) and the gradient is the per-component average of
    the incoming gradient (eq. 19).
    """

    def __init__(self, threshold: float = 0.5, connectivity: int = 4, backend: str = "auto"):
        super().__init__()
        _check_options(connectivity, backend)
        self.threshold = float(threshold)
        self.connectivity = connectivity
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return project_2d(x, self.threshold, self.connectivity, self.backend)

    def extra_repr(self) -> str:
        return (
            f"threshold={self.threshold}, connectivity={self.connectivity}, "
            f"backend={self.backend!r}"
        )
