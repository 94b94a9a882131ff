"""The classical second opinion: per-channel image features and a random forest (no torch, no Qt).

What CellProfiler Analyst does with per-image measurements: intensity, texture and granularity of
each channel, plate-normalised, averaged per well, a random forest, channel importance = the forest's
importance summed over each channel's features. It is the baseline DCMIX is measured against.
"""

from .features import FEATURE_NAMES, site_features
from .forest import ForestAnswer, explain_with_forest, well_features

__all__ = ["FEATURE_NAMES", "ForestAnswer", "explain_with_forest", "site_features", "well_features"]
