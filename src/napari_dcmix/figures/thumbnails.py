"""Well thumbnails: a pure compositing function, a generator that reads one site per well off the
GUI thread (run as a job of the plate browser, see ``widgets/plate_browser/background``).

Thumbnails use the same channel colours and plate statistics as the channel layers, so the grid
looks like what napari shows when the well is clicked.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from ..colors import channel_rgb
from ..errors import DcmixError
from ..plate import Plate
from ..plate.reader import read_channels
from ..plate.stats import ChannelStats
from .tint import tint


def thumbnail_size(n_wells: int) -> int:
    """Pixels per thumbnail side: cells of a 1536-well grid are small, so are their thumbnails."""
    return 48 if n_wells <= 96 else 32 if n_wells <= 384 else 16


def downsample(site: np.ndarray, size: int) -> np.ndarray:
    """(C, Y, X) -> (C, y, x) float32 by block averaging, longest side about ``size`` pixels."""
    c, h, w = site.shape
    f = max(1, int(np.ceil(max(h, w) / size)))
    h2, w2 = max(1, h // f), max(1, w // f)
    if f == 1:
        return site.astype(np.float32)
    block = site[:, : h2 * f, : w2 * f].astype(np.float32)
    return block.reshape(c, h2, f, w2, f).mean(axis=(2, 4))


def make_thumbnail(site: np.ndarray, low, high, colours: Iterable[str | tuple], size: int = 48) -> np.ndarray:
    """Additive colour composite of a (C, Y, X) site as (y, x, 3) uint8, each channel scaled from
    ``low`` (black) to ``high`` (full colour) as napari does with the layers' contrast limits."""
    out = tint(downsample(np.asarray(site), size), low, high, colours)
    return (out * 255.0 + 0.5).astype(np.uint8)


def thumbnail_stream(plate: Plate, wells: list[tuple[str, str]], stats: ChannelStats,
                     size: int = 48) -> Iterator[tuple[str, str, np.ndarray | None, str | None]]:
    """Yield (plate, well, thumbnail or None, problem or None) per well, first site of each.

    Reads files directly (not through the plate's site cache) so a sweep over 1536 wells never
    evicts the sites the user is looking at; what it finds wrong goes into ``plate.problems``.
    One yield per well keeps ``worker.quit()`` prompt.
    """
    colours = channel_rgb(plate.channels, plate.channel_colors)
    for plate_id, well in wells:
        keys = plate.sites_of(well, plate_id)
        if not keys:
            continue
        key = keys[0]
        try:
            notes: list = []
            site = read_channels(plate.root, plate.index.sites[key], plate.channels, key.label(), notes,
                                 min_side=size)
            for note in notes:  # what the sweep finds is in the plate's report before anyone clicks
                plate.problems.report(note)
            thumb = make_thumbnail(site, stats.low, stats.high, colours, size)
            yield plate_id, well, thumb, None
        except DcmixError as err:
            plate.problems.report(getattr(err, "problem", None) or str(err))
            yield plate_id, well, None, str(err)
        except Exception as err:  # a background sweep must never die on one odd file
            yield plate_id, well, None, f"{type(err).__name__}: {err}"
