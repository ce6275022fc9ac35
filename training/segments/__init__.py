"""Segments: the clustering model, names, value tiers, lifecycle and tags."""

# `training.segments.SegmentationModel` is the path in segmentation.pkl files written before
# the layer move (training/segments.py became this package).
from training.segments.model import SegmentationModel

__all__ = ["SegmentationModel"]
