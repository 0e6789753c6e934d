"""Segmentation networks: a U-Net with optional PDE/spline heads, and the metrics.

:class:`Segmenter` maps an image (B, C_in, H, W) to class logits (B, K, H, W):

``baseline``
    the U-Net of :mod:`dfem.surrogates.networks` with ``K`` output channels;
``iel``
    the U-Net followed by an inverse evolution layer on the logits (the IEL paper; the
    authors' code puts the heat IEL on the logits). The layer acts in training only: in
    ``eval()`` it is the identity, so predictions are the U-Net's own;
``dsa``
    the DSA paper's M_DSA: the piecewise-constant projection as the last layer
    (:func:`dfem.spline.project_on_label_map`). The softmax probabilities are averaged over
    each connected region of the predicted label map (argmax): the multi-class form of the
    paper's partition of ``p > 0.5`` (the same partition for two classes), and a mean of
    probability vectors is again one. The layer is part of the model in training *and*
    prediction; its backward is the per-region average of eq. 19. Trained from scratch it
    can stall: while the argmax is one class everywhere the map is a single region, the
    output is its mean and no gradient says where objects are. ``projection_on = False``
    (the trainer's warm-up epochs) trains through the plain softmax first.

:meth:`Segmenter.log_probabilities` is what the loss (negative log-likelihood) and the
prediction (argmax) use: ``log_softmax`` of the logits, or for ``dsa`` the log of the
projected probabilities.

Metrics (:func:`confusion` and :func:`scores`) are computed over a whole set at once: for
each class ``k`` with predicted pixels ``P_k`` and true pixels ``G_k``,
``Dice_k = 2 |P_k ∩ G_k| / (|P_k| + |G_k|)`` and ``IoU_k = |P_k ∩ G_k| / |P_k ∪ G_k|``;
the mean is over the foreground classes ``k >= 1`` (class 0 is the background).
"""

from __future__ import annotations

import torch
from torch import nn

from dfem.exceptions import DfemError
from dfem.surrogates.networks import UNet

MODELS = ("baseline", "iel", "dsa")


class Segmenter(nn.Module):
    """A U-Net segmenter with an optional IEL (training only) or DSA head.

    Parameters
    ----------
    in_channels, num_classes : int
    kind : {"baseline", "iel", "dsa"}
    width, depth, norm
        The U-Net's (see :class:`dfem.surrogates.networks.UNet`).
    iel : nn.Module, optional
        The inverse evolution layer for ``kind="iel"`` (default ``HeatIEL()``).
    connectivity : {4, 8}
        Of the DSA regions.
    """

    def __init__(self, in_channels: int, num_classes: int, kind: str = "baseline",
                 width: int = 8, depth: int = 3, norm: str = "batch", iel=None,
                 connectivity: int = 4):
        super().__init__()
        if kind not in MODELS:
            raise DfemError(f"unknown model {kind!r}; use one of {', '.join(MODELS)}.")
        if num_classes < 2:
            raise DfemError(f"num_classes must be at least 2 (background + one class), "
                            f"got {num_classes}.")
        self.kind, self.num_classes = kind, num_classes
        self.unet = UNet(in_channels, width=width, depth=depth, norm=norm,
                         out_channels=num_classes)
        self.iel = None
        self.connectivity = connectivity if kind == "dsa" else None
        self.projection_on = True
        if kind == "iel":
            from dfem.iel import HeatIEL

            self.iel = HeatIEL() if iel is None else iel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (for ``iel`` in training mode: after the evolution layer)."""
        logits = self.unet(x)
        return self.iel(logits) if self.iel is not None else logits

    def log_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """``log p`` (B, K, H, W): the loss's input and the prediction's."""
        logits = self(x)
        if self.connectivity is None or not self.projection_on:
            return torch.log_softmax(logits, dim=1)
        from dfem.spline import project_on_label_map

        p = torch.softmax(logits, dim=1)
        projected = project_on_label_map(p, p.detach().argmax(dim=1), self.connectivity)
        return torch.log(projected.clamp_min(1e-12))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        """Class labels (B, H, W) in eval mode (the IEL is then the identity)."""
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self.log_probabilities(x[i:i + batch_size]).argmax(dim=1)
                              for i in range(0, len(x), batch_size)])
        finally:
            self.train(was_training)


def confusion(predicted: torch.Tensor, truth: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The (K, K) confusion matrix ``C[true, predicted]`` (pixel counts) of label maps."""
    index = truth.reshape(-1).long() * num_classes + predicted.reshape(-1).long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def scores(matrix: torch.Tensor) -> dict:
    """Dice and IoU per class and their means over the foreground classes (module docstring).

    A class absent from both prediction and truth scores 1 (nothing to find, nothing found).
    """
    matrix = matrix.double()
    hits = matrix.diagonal()
    true, predicted = matrix.sum(dim=1), matrix.sum(dim=0)
    empty = (true + predicted) == 0
    dice = torch.where(empty, 1.0, 2 * hits / (true + predicted).clamp_min(1))
    iou = torch.where(empty, 1.0, hits / (true + predicted - hits).clamp_min(1))
    return {
        "dice": dice.tolist(),
        "iou": iou.tolist(),
        "dice_mean": float(dice[1:].mean()),
        "iou_mean": float(iou[1:].mean()),
        "pixel_accuracy": float(hits.sum() / matrix.sum()),
    }
