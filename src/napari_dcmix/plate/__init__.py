"""Plate data layer: index plate folders by name, read sites lazily, join labels. No torch, no Qt."""

from .index import build_index
from .labels import Labels, read_labels, write_labels
from .plate import Plate, open_plate
from .problems import Problem
from .sites import ChannelRef, PlateIndex, SiteKey
from .stats import ChannelStats
from .wells import PlateFormat, infer_format, normalize_well, well_id, well_position

__all__ = [
    "ChannelRef", "ChannelStats", "Labels", "Plate", "PlateFormat", "PlateIndex", "Problem", "SiteKey",
    "build_index", "infer_format", "normalize_well", "open_plate", "read_labels", "well_id",
    "well_position", "write_labels",
]
