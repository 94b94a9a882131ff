"""The input pipeline: site-major, streaming, decoded in parallel, memory bounded by configuration.

Random tiles drawn from random sites decode a whole site per tile once a plate outgrows the cache
(a 384-well plate always does). Instead every pass reads each training site *once*, in a shuffled
order, on a pool of decode threads (tifffile and PNG decoders release the GIL), and mixes its tiles
through a bounded shuffle buffer. Memory: the buffer (``buffer_bytes`` of raw integers: half the
bytes of float32 for 16-bit images), the sites read ahead (``ahead`` of them) and the raw-pixel
cache of the :class:`SiteSource`, whatever the plate's size.

Speed: the tiles of a just-decoded site (hot in cache) are copied straight into one preallocated
block that lives across passes (fresh pages cost more than the copies on a VM); a batch leaves as
raw integers with its flips/turns and statistics (:class:`RawTiles`), mirrored, turned and
normalised on the training device, so on a GPU the integers cross PCIe (half the bytes of float32)
and the float work is not done by the CPU cores that decode. The same prefetching serves
validation, prediction and permutation importance (:func:`prefetch`).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
import torch

from ..errors import DcmixError
from ..plate import SiteKey
from .data import SiteSource, _fit, tiles_for_site

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


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """An array on ``device``: on CUDA through pinned memory with a non-blocking copy (the next batch is
    cut while this one travels); on the CPU the array itself, no copy."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@dataclass
class RawTiles:
    """A batch as cut: raw pixels, each tile's flip/turn and channel ``low``/``span``, made into the
    network's input where it is used (:meth:`to`), so the loader itself never touches floats.

    ``(pixels - low) / span`` in float32 is exactly what :meth:`ChannelStats.normalize` computes.
    """

    pixels: np.ndarray  # (B, C, t, t), uint16 (8/16-bit plates) or float32
    variants: np.ndarray  # (B,) sorted, 0-7: mirrored when ≥ 4, then variant % 4 quarter turns
    low: np.ndarray  # (B, C), or (1, C) when one statistics serves the whole batch
    span: np.ndarray

    def __len__(self) -> int:
        return len(self.pixels)

    def _groups(self) -> Iterator[tuple[int, int, int]]:
        bounds = np.searchsorted(self.variants, np.arange(9)).tolist()
        return ((v, bounds[v], bounds[v + 1]) for v in range(8) if bounds[v] < bounds[v + 1])

    def to(self, device: torch.device) -> torch.Tensor:
        """Normalised, augmented float32 (B, C, t, t) on ``device``."""
        if device.type != "cuda":  # CPU (and MPS): numpy's one fused cast per variant is the fastest
            return torch.from_numpy(self.numpy()).to(device)
        pixels = to_device(self.pixels, device).to(torch.float32)
        x = torch.empty_like(pixels)
        for v, a, b in self._groups():
            part = pixels[a:b].flip(-1) if v >= 4 else pixels[a:b]
            x[a:b] = torch.rot90(part, k=v % 4, dims=(2, 3))
        x.sub_(to_device(self.low[:, :, None, None], device)).div_(to_device(self.span[:, :, None, None], device))
        return x

    def numpy(self) -> np.ndarray:
        x = np.empty(self.pixels.shape, dtype=np.float32)
        for v, a, b in self._groups():  # one strided cast per variant, not one copy per tile
            view = self.pixels[a:b, :, :, ::-1] if v >= 4 else self.pixels[a:b]
            np.copyto(x[a:b], np.rot90(view, k=v % 4, axes=(2, 3)), casting="unsafe")
        x -= self.low[:, :, None, None]
        x /= self.span[:, :, None, None]
        return x


class TileStream:
    """Shuffled (x: :class:`RawTiles`, y, keys) batches of augmented random tiles: one pass per iteration.

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
        self._buffer: _ShuffleBuffer | None = None  # kept across passes: its pages are touched once

    def estimate_tiles_per_pass(self) -> int:
        """Tiles of one pass from the first readable site's shape (HCS sites share a shape)."""
        for key in self.keys[:20]:
            raw = self.source.raw(key)
            if raw is not None:
                return len(self.keys) * tiles_for_site(raw.shape[1:], self.tile, self.coverage)
        if self.source.losses is not None:
            self.source.losses.check("before its first step")  # the storage stopped answering, not the sites
        return 0

    def _read(self, index: int):
        """On a decode thread: (index, the site's raw pixels padded to a tile, its statistics) or None."""
        key = self.keys[index]
        raw = self.source.raw(key)
        return None if raw is None else (index, _fit(raw, self.tile), self.source.stats_for(key.plate))

    def __iter__(self) -> Iterator[tuple[RawTiles, np.ndarray, list[SiteKey]]]:
        order = self.rng.permutation(len(self.keys)).tolist()
        buffer = self._buffer
        if buffer is not None:
            buffer.size = 0  # a pass left early (the step budget was reached) leaves no tiles behind
        drawn = 0
        for _, read in prefetch(self._read, order, self.workers):
            if read is None:
                continue
            index, raw, stats = read
            n = tiles_for_site(raw.shape[1:], self.tile, self.coverage)
            if buffer is None:
                buffer = self._buffer = _ShuffleBuffer((raw.shape[0], self.tile, self.tile), raw.dtype,
                                                       self.buffer_bytes, self.batch_size, n)
            while not buffer.room_for(n):
                yield self._batch(buffer)
            ys = self.rng.integers(0, raw.shape[1] - self.tile + 1, n)
            xs = self.rng.integers(0, raw.shape[2] - self.tile + 1, n)
            buffer.add(raw, ys, xs, index, self.labels[index], stats)
            drawn += n
        while buffer is not None and buffer.size:
            yield self._batch(buffer)
        self.tiles_per_pass = drawn
        if not drawn and self.keys:  # else the run would go round passes that never give a step
            if self.source.losses is not None:
                self.source.losses.check("in a pass over the training sites")
            raise DcmixError(f"none of the {len(self.keys)} training sites could be read in this pass (the plate's "
                             "problems name them); check the plate folder, then train again")

    def _batch(self, buffer: "_ShuffleBuffer"):
        x, y, indices = buffer.take(min(self.batch_size, buffer.size), self.rng, self.augment)
        return x, y, [self.keys[i] for i in indices]


class _ShuffleBuffer:
    """Preallocated raw tiles that never move: batches leave by swap-remove over the live slot numbers,
    and new tiles are scattered into the freed slots."""

    def __init__(self, tile_shape: tuple, dtype: np.dtype, buffer_bytes: int, batch_size: int, site_tiles: int):
        self.dtype = np.dtype(np.uint16) if np.can_cast(dtype, np.uint16) else np.dtype(np.float32)
        tile_bytes = int(np.prod(tile_shape)) * self.dtype.itemsize
        capacity = max(4 * batch_size, buffer_bytes // max(1, tile_bytes), site_tiles + batch_size)
        self.tiles = np.empty((capacity, *tile_shape), dtype=self.dtype)
        self.labels = np.empty(capacity, dtype=np.int64)
        self.sites = np.empty(capacity, dtype=np.int64)
        self.stats_ids = np.empty(capacity, dtype=np.int64)
        self.live = np.arange(capacity)  # live[:size] hold tiles, live[size:] are free
        self.low, self.span, self._stats_index = [], [], {}
        self.size = 0

    def room_for(self, n: int) -> bool:
        return self.size == 0 or self.size + n <= len(self.tiles)

    def add(self, raw: np.ndarray, ys: np.ndarray, xs: np.ndarray, site: int, label: int, stats) -> None:
        """Copy the tiles at (ys, xs) of a just-decoded site (hot in cache) straight into free slots."""
        end = self.size + len(ys)
        if end > len(self.tiles):  # a site larger than every one before: grow once
            self._grow(end)
        if not np.can_cast(raw.dtype, self.dtype):  # e.g. a float site after 16-bit ones
            self.tiles = self.tiles.astype(np.float32)
            self.dtype = self.tiles.dtype
        t, tiles = self.tiles.shape[-1], self.tiles
        for slot, y, x in zip(self.live[self.size:end].tolist(), ys.tolist(), xs.tolist()):
            tiles[slot] = raw[:, y:y + t, x:x + t]
        slots = self.live[self.size:end]
        self.labels[slots], self.sites[slots], self.stats_ids[slots] = label, site, self._stats_id(stats)
        self.size = end

    def take(self, k: int, rng: np.random.Generator, augment: bool) -> tuple[RawTiles, np.ndarray, list[int]]:
        """``k`` random tiles out -> (raw tiles with their flips/turns and statistics, labels, site indices)."""
        picked = rng.choice(self.size, k, replace=False)
        variants = rng.integers(0, 8, k) if augment else np.zeros(k, dtype=np.int64)
        order = np.argsort(variants, kind="stable")
        picked, variants = picked[order], variants[order]
        slots = self.live[picked]
        ids = self.stats_ids[slots]
        ids = ids[:1] if (ids == ids[0]).all() else ids  # one plate: one row broadcast over the batch
        x = RawTiles(self.tiles[slots], variants, np.stack(self.low)[ids], np.stack(self.span)[ids])
        y, sites = self.labels[slots], self.sites[slots].tolist()
        tail = np.arange(self.size - k, self.size)
        holes = picked[picked < self.size - k]
        movers = tail[~np.isin(tail, picked)]  # the tail's unpicked live slots fill the holes
        self.live[holes] = self.live[movers]
        self.live[self.size - k:self.size] = slots
        self.size -= k
        return x, y, sites

    def _stats_id(self, stats) -> int:
        key = id(stats)
        if key not in self._stats_index:
            self._stats_index[key] = len(self.low)
            self.low.append(np.asarray(stats.low, dtype=np.float32))
            self.span.append(np.asarray(stats.high - stats.low, dtype=np.float32))
        return self._stats_index[key]

    def _grow(self, capacity: int) -> None:
        old_capacity = len(self.tiles)
        for name in ("tiles", "labels", "sites", "stats_ids"):
            old = getattr(self, name)
            new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
            new[:old_capacity] = old
            setattr(self, name, new)
        self.live = np.concatenate([self.live, np.arange(old_capacity, capacity)])
