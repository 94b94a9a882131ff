"""The plate a user opened: index, lazy site reads, statistics. The one object every front end uses."""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np

from .._io import protect_plate_folder
from ..errors import PlateError, SourceUnavailable
from .channels import renamed_channels
from .index import iter_index
from .location import PlateLocation
from .problems import SKIPPED, ProblemLog, make
from .reader import SiteCache, read_channels
from .sites import PlateIndex, SiteKey
from .stats import ChannelStats, compute_stats
from .wells import PlateFormat, infer_format, normalize_well, well_position


MIN_SITE_SIDE = 8  # half the smallest tile (16 px): a thinner site is mostly padding to the network
MAX_ASPECT = 8.0  # a longer strip is a line scan, a stitching slice or a wrong export, not a field of view
REMOTE_READERS = 8  # sites of a plate at a URL read at once for its statistics (each waits on the network)


def _plate_order(key: SiteKey):
    # plain tuple order puts AA01 between A48 and B01 on 1536-well plates
    return key.plate, well_position(key.well), key.site


class Plate:
    """A plate opened read-only, from a folder or a URL. Opening reads names (or metadata) only;
    pixels are read per site on demand."""

    def __init__(self, index: PlateIndex, cache_sites: int = 16):
        self.index = index
        protect_plate_folder(index.location)
        self.problems = ProblemLog(index.problems)  # the data-quality report, filled as sites are read
        self._dtypes: dict[str, dict] = {}  # channel -> dtype -> (first file, site) read with it
        self._odd_shapes: set[tuple[int, int]] = set()  # site shapes already named as too thin or long
        self._cache = SiteCache(cache_sites)
        self._stats: ChannelStats | None = None
        self._plate_stats: dict[str, ChannelStats] = {}
        self._lock = threading.Lock()
        self._by_well: dict[tuple[str, str], list[SiteKey]] = defaultdict(list)
        for key in self.sites:
            self._by_well[(key.plate, key.well)].append(key)

    @classmethod
    def open(cls, path, pattern: str | None = None, channel_names=None, remote=None) -> "Plate":
        steps = cls.open_steps(path, pattern, channel_names, remote)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    @classmethod
    def open_steps(cls, path, pattern: str | None = None, channel_names=None, remote=None):
        """:meth:`open` as a generator of ``OpenProgress`` (a plate at a URL reports its wells'
        metadata as it arrives; a folder none); returns the Plate."""
        index = yield from iter_index(path, pattern or None, remote)
        if channel_names:
            index.channels = renamed_channels(index.channels, index.channel_keys, channel_names)
        return cls(index)

    # --- what is on the plate -------------------------------------------------------------------
    @property
    def location(self) -> PlateLocation:
        """Where the plate lives (folder or URL): what outputs, labels and messages ask."""
        return self.index.location

    @property
    def root(self) -> Path | None:
        """The plate's local folder; None for a plate at a URL (ask :attr:`location`)."""
        return self.index.root

    @property
    def is_remote(self) -> bool:
        return self.index.location.is_remote

    def transfers(self) -> dict | None:
        """What was fetched over the network so far (requests, bytes, retries, cache hits), None for a folder."""
        source = self.index.zarr
        counts = source.transfers if source is not None and self.is_remote else None
        return counts.to_dict() if counts is not None else None

    def is_cached(self, key: SiteKey) -> bool:
        """Whether ``read_site(key)`` is answered from memory (no disk, no network)."""
        return self._cache.get(SiteKey(*key)) is not None

    @property
    def layout(self) -> str:
        return self.index.layout

    @property
    def channels(self) -> list[str]:
        return list(self.index.channels)

    @property
    def channel_colors(self) -> list[str | None]:
        """Per channel the "#rrggbb" the plate's metadata stores (OME-Zarr omero), else None."""
        colors = list(self.index.colors or [])
        return colors if len(colors) == len(self.index.channels) else [None] * len(self.index.channels)

    @property
    def name(self) -> str:
        """What figures and exports call this plate: its metadata name, else the folder's name."""
        return self.index.name or self.location.name

    @cached_property
    def sites(self) -> list[SiteKey]:
        """Every complete site in plate order: plate, then row (A..Z, AA..AF), column, site number."""
        return sorted(self.index.sites, key=_plate_order)

    @cached_property
    def plates(self) -> list[str]:
        return sorted({key.plate for key in self.index.sites})

    def wells(self, plate: str | None = None) -> list[str]:
        """Wells with at least one complete site, in plate order (A01, A02, …)."""
        wells = {w for (p, w) in self._by_well if plate is None or p == plate}
        return sorted(wells, key=well_position)

    def sites_of(self, well: str, plate: str | None = None) -> list[SiteKey]:
        """Sites of ``well`` (any spelling: ``B2``, ``b02``) on ``plate`` (default: the first plate)."""
        plate = self.plates[0] if plate is None else plate
        try:
            well = normalize_well(well)
        except PlateError:
            return []
        return list(self._by_well.get((plate, well), []))

    def well_keys(self) -> list[tuple[str, str]]:
        """(plate, well) pairs in order: the unit of labels, splits and per-well predictions."""
        return sorted(self._by_well, key=lambda pw: (pw[0], well_position(pw[1])))

    @cached_property
    def format(self) -> PlateFormat:
        return infer_format(w for (_, w) in self._by_well)

    # --- pixels --------------------------------------------------------------------------------
    def read_site(self, key: SiteKey) -> np.ndarray:
        """(C, Y, X) pixels of one site, channels in ``self.channels`` order; PlateError if unreadable."""
        try:
            key = SiteKey(*key)  # a plain (plate, well, site) tuple works too
        except TypeError:
            raise PlateError(f"{key!r} is not a site; give (plate, well, site)") from None
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        refs = self.index.sites.get(key)
        if refs is None:
            raise PlateError(f"{key.label()} is not on this plate")
        notes, dtypes = [], []
        try:
            data = read_channels(self.root, refs, self.channels, key.label(), notes, dtypes, zarr=self.index.zarr)
        except SourceUnavailable:
            raise  # the server stopped answering: not this site's fault, never a skipped site
        except PlateError as err:
            self.problems.report(getattr(err, "problem", None) or make("unreadable", str(err), site=key.label(), action=SKIPPED))
            raise
        for note in notes:
            self.problems.report(note)
        self._check_bit_depth(key, refs, dtypes)
        self._check_site_shape(key, data.shape[-2:], refs)
        data.setflags(write=False)  # shared between threads and layers: nobody may edit it in place
        self._cache.put(key, data)
        return data

    def _check_bit_depth(self, key: SiteKey, refs, dtypes: list[str]) -> None:
        """8- and 16-bit files in one channel of one plate: intensities are not comparable (warned, used).

        Reads are lazy, so which depth is the odd one is not known yet: the problem names both files.
        """
        for name, ref, dtype in zip(self.channels, refs, dtypes):
            with self._lock:
                seen = self._dtypes.setdefault(name, {dtype: (ref.path, key.label())})
                new = dtype not in seen
                if new:
                    seen[dtype] = (ref.path, key.label())
            if new:
                (other, (o_file, o_site)) = next((d, v) for d, v in seen.items() if d != dtype)
                self.problems.report(make(
                    "mixed-bit-depth", f"channel {name} mixes bit depths: {ref.path} ({key.label()}) is {dtype}, "
                    f"{o_file} ({o_site}) is {other}", "used as is, but the intensities are not comparable; "
                    "re-export the plate at one bit depth", file=ref.path, site=key.label()))

    def _check_site_shape(self, key: SiteKey, shape, refs) -> None:
        """Name (once per shape) sites too thin or too elongated to be fields of view: used, but warned."""
        h, w = int(shape[0]), int(shape[1])
        thin, long = min(h, w) < MIN_SITE_SIDE, max(h, w) > MAX_ASPECT * max(1, min(h, w))
        if not (thin or long):
            return
        with self._lock:
            if (h, w) in self._odd_shapes:
                return
            self._odd_shapes.add((h, w))
        why = (f"thinner than {MIN_SITE_SIDE} px, half the smallest tile" if thin else
               f"more than {MAX_ASPECT:g} times longer than wide")
        self.problems.report(make(
            "site-shape", f"{key.label()} is {h}×{w} px ({why}): tiles of it would be mostly padding",
            "check the export (a line scan, a stitching slice or a crop?); leave such sites out of the labels",
            file=refs[0].path, site=key.label()))

    def read_preview(self, key: SiteKey, min_side: int) -> np.ndarray:
        """(C, Y, X) of one site at the coarsest pyramid level whose sides have ``min_side`` pixels
        (full resolution where the format has no pyramid): for thumbnails. Not cached (the sites the
        user looks at stay in the cache); what it finds wrong goes into ``problems``."""
        notes: list = []
        try:
            data = read_channels(self.root, self.index.sites[key], self.channels, key.label(), notes,
                                 min_side=min_side, zarr=self.index.zarr)
        except SourceUnavailable:
            raise
        except PlateError as err:
            self.problems.report(getattr(err, "problem", None) or str(err))
            raise
        for note in notes:
            self.problems.report(note)
        return data

    def first_readable_site(self) -> tuple[SiteKey, np.ndarray]:
        last = None
        for key in self.sites[:50]:
            try:
                return key, self.read_site(key)
            except SourceUnavailable:
                raise
            except PlateError as err:
                last = err
        if last is not None and "imagecodecs" in str(last):  # one missing package, not a corrupt plate
            raise PlateError(f"none of the first sites of {self.location} could be read: {last}")
        raise PlateError(f"none of the first sites of {self.location} could be read; the files may be corrupt")

    def channel_stats(self, n_sites: int = 24, seed: int = 0, plate_id: str | None = None) -> ChannelStats:
        """Robust per-channel percentiles from a seeded sample of sites, computed once per plate.

        ``plate_id`` restricts the sample to one plate of a multi-plate folder (RxRx1): every plate is
        imaged with its own exposure, so each is normalised on its own.
        """
        if plate_id is not None and len(self.plates) == 1 and plate_id == self.plates[0]:
            plate_id = None  # the same sample as the whole folder: compute it once
        with self._lock:
            cached = self._stats if plate_id is None else self._plate_stats.get(plate_id)
            if cached is not None:
                return cached
        candidates = self.sites if plate_id is None else [k for k in self.sites if k.plate == plate_id]
        if not candidates:
            raise PlateError(f"plate {plate_id!r} is not in {self.location}")
        rng = np.random.default_rng(seed)
        arrays = self._first_readable([candidates[i] for i in rng.permutation(len(candidates))], n_sites)
        if not arrays:
            where = self.location if plate_id is None else f"plate {plate_id} of {self.location}"
            raise PlateError(f"no site of {where} could be read; the files may be corrupt")
        stats = compute_stats(self.channels, arrays)
        with self._lock:
            if plate_id is None:
                self._stats = stats
            else:
                self._plate_stats[plate_id] = stats
        return stats

    def _first_readable(self, keys: list[SiteKey], n: int) -> list[np.ndarray]:
        """The first ``n`` readable sites of ``keys``, in order (the same ones whatever the timing).
        A plate at a URL reads several at once: each read waits on the network, not on the CPU."""
        if not self.is_remote:
            return self._first_readable_sequential(keys, n)
        arrays: list[np.ndarray] = []
        with ThreadPoolExecutor(max_workers=REMOTE_READERS, thread_name_prefix="dcmix-stats") as pool:
            start = 0
            while len(arrays) < n and start < len(keys):
                batch = keys[start:start + n - len(arrays)]
                start += len(batch)
                arrays += [a for a in pool.map(self._readable, batch) if a is not None]
        return arrays

    def _first_readable_sequential(self, keys: list[SiteKey], n: int) -> list[np.ndarray]:
        arrays: list[np.ndarray] = []
        for key in keys:
            if len(arrays) >= n:
                break
            data = self._readable(key)
            if data is not None:
                arrays.append(data)
        return arrays

    def _readable(self, key: SiteKey) -> np.ndarray | None:
        """The site's pixels, or None when it is unreadable (reported); SourceUnavailable propagates."""
        try:
            return self.read_site(key)
        except SourceUnavailable:
            raise
        except PlateError:
            return None

    def computed_channel_stats(self) -> ChannelStats | None:
        """The statistics if already computed (never reads pixels), else None."""
        with self._lock:
            return self._stats

    def set_channel_stats(self, stats: ChannelStats) -> None:
        """Use a model's stored statistics instead (so predictions see what training saw)."""
        with self._lock:
            self._stats = stats

    def summary(self) -> dict:
        """What ``napari-dcmix inspect`` prints: layout, counts, channels, one site's shape and dtype."""
        per_well = defaultdict(int)
        for key in self.sites:
            per_well[(key.plate, key.well)] += 1
        counts = sorted(set(per_well.values()))
        try:
            _, site = self.first_readable_site()
            shape, dtype = list(site.shape), str(site.dtype)
        except SourceUnavailable:
            raise
        except PlateError as err:
            shape, dtype = None, None
            self.problems.report(make("unreadable", str(err), action=SKIPPED))
        return {
            "layout": self.layout,
            "plates": [p for p in self.plates],
            "format": self.format.wells,
            "wells": len(per_well),
            "sites": counts[0] if len(counts) == 1 else counts,
            "sites_per_well": {f"{p} {w}" if p else w: n for (p, w), n in sorted(per_well.items(), key=lambda kv: (
                kv[0][0], well_position(kv[0][1])))},
            "channels": self.channels,
            "shape": shape,
            "dtype": dtype,
            "problems": [p.to_dict() for p in self.problems],
        }


def open_plate(path: str | os.PathLike, pattern: str | None = None, channel_names=None, remote=None) -> Plate:
    """Open a plate folder (layout detected, or described by ``pattern``) or an OME-Zarr plate at a
    URL; PlateError if unusable, SourceUnavailable when its server stops answering.

    ``channel_names`` (``"w1=DNA,w2=ER"`` or a mapping) renames channels for everything downstream;
    ``remote`` (``remote.RemoteSettings``) says how a plate at a URL is read (default: the environment).
    """
    return Plate.open(path, pattern, channel_names, remote)
