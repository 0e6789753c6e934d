"""Segmentation U-Nets with PDE and spline priors, trained under noisy labels.

- :mod:`~dfem.segmentation.data`: synthetic cell images, PNG folders, noisy labels;
- :mod:`~dfem.segmentation.models`: :class:`Segmenter` (baseline, +IEL, +DSA) and metrics;
- :mod:`~dfem.segmentation.training`: one run, with validation, checkpoints and resume;
- :mod:`~dfem.segmentation.comparison`: the comparison over models, labels and seeds.
"""

from dfem.segmentation.comparison import compare
from dfem.segmentation.config import SegmentationConfig, load_segmentation_config
from dfem.segmentation.data import corrupt_labels, load_png_folder, split, synthetic_cells
from dfem.segmentation.models import Segmenter, confusion, scores
from dfem.segmentation.training import SegmentationRun

__all__ = [
    "SegmentationConfig",
    "SegmentationRun",
    "Segmenter",
    "compare",
    "confusion",
    "corrupt_labels",
    "load_png_folder",
    "load_segmentation_config",
    "scores",
    "split",
    "synthetic_cells",
]
