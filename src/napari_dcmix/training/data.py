"""Training data from a plate: by-well splits and folds, normalised site reads, tiles.

Everything here works on lists of :class:`SiteKey` (sharded by rank for data-parallel training);
nothing loads a whole plate. The streaming loader that feeds training is ``pipeline.TileStream``.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, defaultdict

import numpy as np

from ..errors import DcmixError, PlateError, SourceUnavailable
from ..plate import ChannelStats, Plate, SiteKey
from .site_losses import SiteLosses


def _wells_by_class(site_labels: dict[SiteKey, str]) -> dict[str, list[tuple[str, str]]]:
    wells: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for key, label in site_labels.items():
        wells[label].add((key.plate, key.well))
    return {label: sorted(w) for label, w in sorted(wells.items())}


def _pick(wells: list, fraction: float, rng: np.random.Generator, keep: int) -> set:
    """A seeded ``fraction`` of ``wells`` (at least one), leaving at least ``keep`` behind; else none."""
    if fraction <= 0 or len(wells) <= keep:
        return set()
    n = min(len(wells) - keep, max(1, int(round(fraction * len(wells)))))
    return {wells[i] for i in rng.permutation(len(wells))[:n]}


def split_wells(site_labels: dict[SiteKey, str], val_fraction: float, test_fraction: float, seed: int,
                test_wells: set | None = None) -> tuple[list[SiteKey], list[SiteKey], list[SiteKey]]:
    """Stratified by-well split -> (train, val, test) sites; the sites of one well stay together.

    *val* wells choose the checkpoint (early stopping), *test* wells are never looked at during
    training: only they may say whether the model learned anything. A class with fewer than 3 wells
    gives no test well and fewer than 2 no validation well (it is trained on, and the gate says so).
    ``test_wells`` (k-fold) replaces the random test pick.
    """
    rng = np.random.default_rng(seed)
    test: set = set(test_wells) if test_wells is not None else set()
    val: set = set()
    for label, wells in _wells_by_class(site_labels).items():
        if test_wells is None:
            test |= _pick(wells, test_fraction, rng, keep=2)
        rest = [w for w in wells if w not in test]
        val |= _pick(rest, val_fraction / max(1e-9, 1 - (test_fraction if test_wells is None else 0)), rng, keep=1)
    side = lambda k: 2 if (k.plate, k.well) in test else 1 if (k.plate, k.well) in val else 0  # noqa: E731
    parts: list[list[SiteKey]] = [[], [], []]
    for key in sorted(site_labels):
        parts[side(key)].append(key)
    return parts[0], parts[1], parts[2]


def split_by_well(site_labels: dict[SiteKey, str], val_fraction: float, seed: int) -> tuple[list[SiteKey], list[SiteKey]]:
    """Stratified split of *wells* (never sites of one well on both sides) -> (train, val) sites."""
    train, val, _ = split_wells(site_labels, val_fraction, 0.0, seed)
    return train, val


def well_folds(site_labels: dict[SiteKey, str], n_folds: int, seed: int) -> list[set[tuple[str, str]]]:
    """``n_folds`` disjoint sets of wells, stratified by class, together holding every labeled well."""
    rng = np.random.default_rng(seed)
    folds: list[set] = [set() for _ in range(n_folds)]
    offset = 0
    for _, wells in _wells_by_class(site_labels).items():
        for j, i in enumerate(rng.permutation(len(wells))):
            folds[(j + offset) % n_folds].add(wells[i])
        offset += len(wells)  # classes with few wells do not all land in fold 0
    return folds


def tiles_for_site(shape: tuple[int, int], tile: int, coverage: float = 1.0) -> int:
    """How many random tiles cover a site's area ``coverage`` times (a 96² site with 96 px tiles: 1)."""
    return max(1, math.ceil(coverage * shape[0] * shape[1] / float(tile * tile)))


class SiteSource:
    """Sites in the model's channel order, normalised on read, with a byte-bounded cache of the *raw*
    integers (half the bytes of float32 for 16-bit images), safe to call from decode threads.

    ``stats`` is one :class:`ChannelStats` for every site, or ``"plate"``: each plate of the folder
    normalised with its own robust statistics, so a re-imaged (brighter, offset) screen looks the same.
    """

    def __init__(self, plate: Plate, stats: ChannelStats | str, channel_order: list[int] | None = None,
                 cache_bytes: int = 1 << 30):
        self.plate = plate
        self.stats = stats
        self.order = list(range(len(plate.channels))) if channel_order is None else list(channel_order)
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[SiteKey, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.skipped: list[str] = []
        #: a run's watch over its sites (training): losses counted, a storage gone noted instead of raised
        self.losses: SiteLosses | None = None

    def raw(self, key: SiteKey) -> np.ndarray | None:
        """(C, Y, X) raw pixels in model order, or None (and reported) when the site cannot be read.

        A storage that stops answering raises :class:`SourceUnavailable` (the site is not at fault), unless
        a run watches (``losses``): then it is noted there, the run stops at its next step, and sites not
        in memory are not asked for again.
        """
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        losses = self.losses
        if losses is not None and losses.down:
            return None
        try:
            raw = self.plate.read_site(key)
        except SourceUnavailable as err:
            err.site_key = getattr(err, "site_key", None) or key
            if losses is None:
                raise
            losses.source_down(key, err)
            return None
        except PlateError as err:
            with self._lock:
                self.skipped.append(str(err))
            if losses is not None:
                losses.failed(key, err)
            return None
        if losses is not None:
            losses.read(key)
        raw = raw if self.order == list(range(raw.shape[0])) else raw[self.order]
        if self.cache_bytes > 0:
            with self._lock:
                self._cache[key] = raw
                self._bytes += raw.nbytes
                while self._bytes > self.cache_bytes and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._bytes -= old.nbytes
        return raw

    def get(self, key: SiteKey) -> np.ndarray | None:
        """(C, Y, X) float32 normalised, or None when the site cannot be read."""
        raw = self.raw(key)
        return None if raw is None else self.stats_for(key.plate).normalize(raw)

    def grid(self, key: SiteKey, tile: int) -> np.ndarray | None:
        """The tiles covering a site, normalised: only the cut tiles become float32, never a float copy
        of the whole site first (bit-identical to ``grid_tiles(self.get(key), tile)``)."""
        raw = self.raw(key)
        return None if raw is None else normalize_tiles(self.stats_for(key.plate), grid_tiles(raw, tile))

    def stats_for(self, plate_id: str) -> ChannelStats:
        if isinstance(self.stats, ChannelStats):
            return self.stats
        return self.plate.channel_stats(plate_id=plate_id).subset(self.order)


MAX_PADDING = 0.5  # above this share of a tile, training would mostly look at padding: refused


def tile_problem(shape: tuple[int, int], tile: int) -> str | None:
    """A warning when tiles larger than the sites (``shape``: Y, X) must be padded; DcmixError when
    most of every tile would be padding (a 160 px site in a 512 px tile is 90 % padding)."""
    h, w = int(shape[0]), int(shape[1])
    if h >= tile and w >= tile:
        return None
    padding = 1 - min(h, tile) * min(w, tile) / float(tile * tile)
    what = (f"the tile ({tile} px) is larger than the sites ({h}×{w} px): {100 * padding:.0f}% of every tile "
            "is padding")
    fix = f"choose a tile of {max(16, min(h, w) // 16 * 16)} px or less (--tile in the CLI, tile size in the Train dock)"
    if padding > MAX_PADDING:
        raise DcmixError(f"{what}, so the model would learn mostly from padding; {fix}")
    return f"{what} (mirrored edges); {fix}"


def _fit(site: np.ndarray, tile: int) -> np.ndarray:
    """Pad a site smaller than the tile (reflect) so every tile has the model's input size."""
    _, h, w = site.shape
    if h >= tile and w >= tile:
        return site
    pad_h, pad_w = max(0, tile - h), max(0, tile - w)
    mode = "reflect" if pad_h < h and pad_w < w else "edge"
    return np.pad(site, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)


def _windows(site: np.ndarray, tile: int) -> np.ndarray:
    """Every tile of a site as one strided view (Y', X', C, tile, tile): cutting is then one gather."""
    view = np.lib.stride_tricks.sliding_window_view(_fit(site, tile), (tile, tile), axis=(1, 2))
    return np.moveaxis(view, 0, 2)


def grid_tiles(site: np.ndarray, tile: int) -> np.ndarray:
    """Cover a whole site with tiles (the last row/column aligned to the border) -> (N, C, tile, tile)."""
    _, h, w = _fit(site, tile).shape
    ys = sorted({min(y, h - tile) for y in range(0, h, tile)})
    xs = sorted({min(x, w - tile) for x in range(0, w, tile)})
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    return _windows(site, tile)[grid_y.ravel(), grid_x.ravel()]


def normalize_tiles(stats: ChannelStats, tiles: np.ndarray) -> np.ndarray:
    """(N, C, t, t) raw tiles -> float32 exactly as ``stats.normalize`` maps a whole site, computed on
    the cut tiles only (in place on one float32 array, no float64 intermediate)."""
    out = np.empty(tiles.shape, dtype=np.float32)
    shape = (1, -1, 1, 1)
    with np.errstate(invalid="ignore", over="ignore"):
        np.subtract(tiles, stats.low.reshape(shape), out=out, casting="unsafe")
        np.divide(out, (stats.high - stats.low).reshape(shape), out=out)
    if tiles.dtype.kind == "f" and not np.isfinite(out).all():  # integers cannot overflow float32
        out[~np.isfinite(out)] = 0.0
    return out


def labeled_sites(plate: Plate, well_or_site_labels: dict, classes: list[str] | None = None) -> dict[SiteKey, str]:
    """Site -> class for training, from per-site or per-well ((plate, well) -> class) labels."""
    site_labels: dict[SiteKey, str] = {}
    for key, label in well_or_site_labels.items():
        if not label:
            continue
        if isinstance(key, SiteKey):
            site_labels[key] = label
        else:
            for site in plate.sites_of(key[1], key[0]):
                site_labels[site] = label
    if classes:
        unknown = sorted(set(classes) - set(site_labels.values()))
        if unknown:
            raise DcmixError(f"no labeled well has class {', '.join(unknown)}; check the class names or the label column")
        site_labels = {k: v for k, v in site_labels.items() if v in classes}
    return site_labels
