"""Well thumbnails: a pure compositing function, a generator that reads one site per well off the
GUI thread (run as a job of the plate browser, see ``widgets/plate_browser/background``).

Thumbnails use the same channel colours and plate statistics as the channel layers, so the grid
looks like what napari shows when the well is clicked.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np

from ..colors import channel_rgb
from ..errors import DcmixError, SourceUnavailable
from ..plate import Plate
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

    Reads through :meth:`Plate.read_preview` (the coarsest pyramid level that is large enough, not
    the plate's site cache) so a sweep over 1536 wells never evicts the sites the user is looking at;
    what it finds wrong goes into ``plate.problems``. A plate at a URL is read a few wells ahead on
    threads (each read waits on the network). One yield per well keeps ``worker.quit()`` prompt;
    SourceUnavailable (the server stopped answering) ends the sweep.
    """
    colours = channel_rgb(plate.channels, plate.channel_colors)
    todo = [(plate_id, well, plate.sites_of(well, plate_id)) for plate_id, well in wells]
    todo = [(plate_id, well, keys[0]) for plate_id, well, keys in todo if keys]
    for plate_id, well, result in _previews(plate, todo, size, REMOTE_READERS if plate.is_remote else 1):
        if isinstance(result, SourceUnavailable):
            raise result
        if isinstance(result, DcmixError):
            yield plate_id, well, None, str(result)
        elif isinstance(result, Exception):  # a background sweep must never die on one odd file
            yield plate_id, well, None, f"{type(result).__name__}: {result}"
        else:
            yield plate_id, well, make_thumbnail(result, stats.low, stats.high, colours, size), None


REMOTE_READERS = 8  # wells of a plate at a URL read ahead for thumbnails


def _preview(plate: Plate, key, size: int):
    try:
        return plate.read_preview(key, size)
    except Exception as err:  # noqa: BLE001 - handed to the stream, which decides
        return err


def _previews(plate: Plate, todo: list, size: int, workers: int):
    """(plate id, well, pixels or the exception) in the order of ``todo``, ``workers`` reads at a time."""
    if workers <= 1:
        for plate_id, well, key in todo:
            yield plate_id, well, _preview(plate, key, size)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dcmix-thumbs")
    pending: deque = deque()
    try:
        for plate_id, well, key in todo:
            pending.append((plate_id, well, pool.submit(_preview, plate, key, size)))
            if len(pending) >= 2 * workers:
                plate_id, well, future = pending.popleft()
                yield plate_id, well, future.result()
        while pending:
            plate_id, well, future = pending.popleft()
            yield plate_id, well, future.result()
    finally:  # closed early (the sweep was cancelled): drop what was read ahead
        pool.shutdown(wait=False, cancel_futures=True)
