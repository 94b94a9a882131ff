"""All sites of a well tiled into one image per channel (the plate browser's "All sites" view, and the
composite of a tiled well). No Qt, no torch."""

from __future__ import annotations

import math

import numpy as np

from .index import SiteKey
from .plate import Plate


def tile_sites(sites: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Tile (C, Y, X) sites row by row into one near-square (C, H, W) mosaic with ``gap`` px of zeros
    between tiles; sites of different sizes are placed top-left in equal tiles."""
    if not sites:
        raise ValueError("no site to tile")
    n = len(sites)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    c = sites[0].shape[0]
    th = max(s.shape[1] for s in sites)
    tw = max(s.shape[2] for s in sites)
    dtype = np.result_type(*[s.dtype for s in sites])
    out = np.zeros((c, rows * th + (rows - 1) * gap, cols * tw + (cols - 1) * gap), dtype)
    for i, site in enumerate(sites):
        r, q = divmod(i, cols)
        y, x = r * (th + gap), q * (tw + gap)
        out[:, y:y + site.shape[1], x:x + site.shape[2]] = site
    return out


def read_mosaic(plate: Plate, key: SiteKey) -> np.ndarray:
    """All sites of ``key``'s well tiled into one (C, H, W) array (PlateError if one is unreadable)."""
    keys = plate.sites_of(key.well, key.plate) or [key]
    return tile_sites([plate.read_site(k) for k in keys])
