"""The input pipeline: site-major, streaming, decoded in parallel, memory bounded by configuration.

Random tiles drawn from random sites decode a whole site per tile once a plate outgrows the cache
(a 384-well plate always does). Instead every pass reads each training site *once*, in a shuffled
order, on a pool of decode threads (tifffile and PNG decoders release the GIL), cuts all of that
site's tiles at once and mixes them through a bounded shuffle buffer. Memory: the buffer
(``buffer_bytes``), the sites read ahead (``ahead`` of them) and the raw-pixel cache of the
:class:`SiteSource`, whatever the plate's size. The same prefetching serves validation, prediction
and permutation importance (:func:`prefetch`).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from ..plate import SiteKey
from .data import SiteSource, random_tile, tiles_for_site

T = TypeVar("T")


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def prefetch(fn: Callable[[SiteKey], T], keys: Iterable[SiteKey], workers: int | None = None,
             ahead: int | None = None) -> Iterator[tuple[SiteKey, T]]:
    """``(key, fn(key))`` in the order of ``keys``, with up to ``ahead`` calls running on threads."""
    workers = workers or default_workers()
    ahead = ahead or 2 * workers
    keys = iter(keys)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dcmix-read") as pool:
        pending: deque = deque()
        try:
            for key in keys:
                pending.append((key, pool.submit(fn, key)))
                if len(pending) >= ahead:
                    k, future = pending.popleft()
                    yield k, future.result()
            while pending:
                k, future = pending.popleft()
                yield k, future.result()
        finally:  # closed early (Stop): drop what was read ahead, never wait for the whole queue
            for _, future in pending:
                future.cancel()


class TileStream:
    """Shuffled (x, y, keys) batches of augmented random tiles: one pass per iteration.

    ``coverage`` sets how many tiles a site gives per pass (its area covered that many times).
    """

    def __init__(self, source: SiteSource, keys: list[SiteKey], labels: list[int], tile: int, batch_size: int,
                 rng: np.random.Generator, coverage: float = 1.0, augment: bool = True,
                 buffer_bytes: int = 128 << 20, workers: int | None = None):
        self.source, self.keys, self.labels = source, list(keys), list(labels)
        self.tile, self.batch_size, self.rng = tile, batch_size, rng
        self.coverage, self.augment, self.workers = coverage, augment, workers
        self.buffer_bytes = buffer_bytes
        self.tiles_per_pass = 0  # known after the first pass; estimated before

    def estimate_tiles_per_pass(self) -> int:
        """Tiles of one pass from the first readable site's shape (HCS sites share a shape)."""
        for key in self.keys[:20]:
            raw = self.source.raw(key)
            if raw is not None:
                return len(self.keys) * tiles_for_site(raw.shape[1:], self.tile, self.coverage)
        return 0

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, list[SiteKey]]]:
        order = self.rng.permutation(len(self.keys))
        label_of = dict(zip(self.keys, self.labels))
        buffer: list = []
        capacity = None
        drawn = 0
        for key, site in prefetch(self.source.get, [self.keys[i] for i in order], self.workers):
            if site is None:
                continue
            n = tiles_for_site(site.shape[1:], self.tile, self.coverage)
            if capacity is None:
                tile_bytes = site.shape[0] * self.tile * self.tile * 4
                capacity = max(4 * self.batch_size, self.buffer_bytes // max(1, tile_bytes))
            for _ in range(n):
                buffer.append((random_tile(site, self.tile, self.rng, self.augment), label_of[key], key))
            drawn += n
            while len(buffer) >= capacity:
                yield self._batch(buffer)
        while buffer:
            yield self._batch(buffer)
        self.tiles_per_pass = drawn

    def _batch(self, buffer: list):
        """Take ``batch_size`` random items out of the buffer (swap-remove: O(1) each)."""
        picked = []
        for _ in range(min(self.batch_size, len(buffer))):
            i = int(self.rng.integers(len(buffer)))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            picked.append(buffer.pop())
        x = np.stack([p[0] for p in picked])
        y = np.asarray([p[1] for p in picked], dtype=np.int64)
        return x, y, [p[2] for p in picked]
