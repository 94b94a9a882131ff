"""What a plate index is made of: site keys, where each channel of a site lives, and the index itself.

Every layout's indexer (file names in ``index``, OME-Zarr metadata in ``ome_zarr``) produces these
records and every reader consumes them, so they live apart from any one indexer or reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .location import PlateLocation
from .problems import Problem


class SiteKey(NamedTuple):
    """One field of view: ``plate`` ('' for single-plate folders), canonical ``well``, 1-based ``site``."""

    plate: str
    well: str
    site: int

    def label(self) -> str:
        prefix = f"{self.plate} " if self.plate else ""
        return f"{prefix}{self.well} s{self.site}"


class ChannelRef(NamedTuple):
    """Where one channel of a site lives: a path relative to the plate folder and, for multi-channel
    files, the index along the channel axis (``None`` for one 2-D image per file).

    ``kind`` says how to read it: ``"file"`` (an image file) or ``"zarr"`` (``path`` is an OME-Zarr
    image group, ``index`` its channel): one reader dispatches on it, every consumer stays the same.
    """

    path: str
    index: int | None = None
    kind: str = "file"


@dataclass
class PlateIndex:
    """What is on a plate. ``root`` is its local folder (None for a plate at a URL); ``location`` says
    where it lives either way; ``zarr`` is the open store of an OME-Zarr plate (``ome_zarr.ZarrSource``)."""

    root: Path | None
    layout: str
    channel_keys: list[str]
    channels: list[str]
    sites: dict[SiteKey, list[ChannelRef]]  # complete sites only, channels in ``channels`` order
    problems: list[Problem] = field(default_factory=list)
    colors: list[str | None] | None = None  # per channel "#rrggbb" stored by the instrument (OME-Zarr omero)
    name: str = ""  # the plate's own name where its metadata has one
    location: PlateLocation | None = None  # default: the folder ``root``
    zarr: Any = None  # the ZarrSource its OME-Zarr fields are read through (None: opened from ``root``)

    def __post_init__(self):
        if self.location is None:
            self.location = PlateLocation.of(self.root)
