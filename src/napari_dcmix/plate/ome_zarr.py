"""OME-Zarr HCS plates (NGFF 0.4 on zarr v2, 0.5 on zarr v3) as a plate layout.

plate → wells → fields: a field is a site, its multiscale image's ``c`` axis the channels. Opening
reads only metadata (plate, each well, the first field); pixels are read per field on demand, at
full resolution for training, at a lower pyramid level for thumbnails. Only the chunks that hold
the first time point and plane are read. zarr-python reads both zarr formats; ome-zarr-py (which
builds on it) writes the test plates, but its reader stitches a whole plate into one array, which
is the opposite of lazy per-field reads.

A plate is read through one :class:`ZarrSource`: its store (a local folder, or a URL through
``remote.RemoteStore``: retried, cached), its root group and its fields, each opened once. Over a
network the wells' metadata is fetched concurrently when the plate is opened.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from ..errors import PlateError, SourceUnavailable
from .channels import distinct_names
from .location import PlateLocation
from .problems import SKIPPED, per_file
from .sites import ChannelRef, PlateIndex, SiteKey
from .wells import normalize_well

LAYOUT = "ome-zarr"


def _json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _cheap_attrs(folder: Path) -> dict:
    """A group's OME attributes read straight from its JSON (no zarr import): v3, else v2."""
    meta = _json(folder / "zarr.json") if (folder / "zarr.json").is_file() else {}
    if meta:
        attrs = meta.get("attributes") or {}
    else:
        attrs = _json(folder / ".zattrs") if (folder / ".zattrs").is_file() else {}
    return attrs.get("ome", attrs) if isinstance(attrs, dict) else {}


def is_hcs_plate(folder: str | Path) -> bool:
    """True when ``folder`` is the root group of an OME-Zarr plate (metadata only, microseconds)."""
    folder = Path(folder)
    return isinstance(_cheap_attrs(folder).get("plate"), dict)


def plates_inside(folder: Path, limit: int = 5) -> list[str]:
    """Names of OME-Zarr plates directly in ``folder``: for 'open the .zarr folder itself' messages."""
    found = []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and p.suffix.lower() == ".zarr")
    except OSError:
        return []
    for child in children:
        if is_hcs_plate(child):
            found.append(child.name)
            if len(found) >= limit:
                break
    return found


def _zarr():
    try:
        import zarr
    except ImportError:  # pragma: no cover - zarr is a dependency
        raise PlateError("reading OME-Zarr plates needs the zarr package: pip install 'zarr>=3'") from None
    return zarr


def _open_group(store, location: PlateLocation):
    """The plate's root group; PlateError saying what to check when there is none."""
    zarr = _zarr()
    try:
        return zarr.open_group(store=store, mode="r")
    except (SourceUnavailable, PlateError):
        raise
    except Exception as err:  # zarr raises many types for missing or damaged groups
        if location.is_remote:
            missing = isinstance(err, (FileNotFoundError, KeyError)) or "NotFound" in type(err).__name__
            what = "no zarr.json, .zgroup or .zattrs answered there" if missing else f"{type(err).__name__}: {err}"
            raise PlateError(f"{location} holds no readable zarr group ({what}); check the URL: it must name "
                             "the plate's .zarr folder (the group with 'plate' metadata)") from None
        raise PlateError(f"{location} is not a readable zarr group ({type(err).__name__}: {err}); "
                         "check the OME-Zarr plate is complete") from None


def _child(root_group, path: str, location: PlateLocation):
    """The group ``path`` below the plate's root (from consolidated metadata when the plate has it)."""
    if not path:
        return root_group
    try:
        return root_group[path]
    except (SourceUnavailable, PlateError):
        raise
    except Exception as err:  # zarr raises KeyError, FileNotFoundError… for a missing or damaged group
        raise PlateError(f"{path} in {location.name} is not a readable zarr group ({type(err).__name__}: {err}); "
                         "check the OME-Zarr plate is complete") from None


def _ome(group) -> dict:
    """NGFF 0.5 nests its metadata under ``ome``; 0.4 keeps it at the top of the attributes."""
    attrs = dict(group.attrs)
    ome = attrs.get("ome")
    return ome if isinstance(ome, dict) else attrs


def _axes(multiscale: dict, ndim: int) -> list[str]:
    axes = multiscale.get("axes")
    if not axes:  # NGFF ≤ 0.3: always 5-D t, c, z, y, x
        return list("tczyx")[-ndim:]
    return [str(a.get("name") if isinstance(a, dict) else a).lower() for a in axes]


class FieldImage:
    """One field's multiscale image: axes and pyramid levels (metadata only until sliced)."""

    def __init__(self, source: "ZarrSource", path: str):
        self.label = path
        name = source.location.name
        group = source.group(path)
        multiscales = _ome(group).get("multiscales")
        if not multiscales:
            raise PlateError(f"{path} in {name} has no 'multiscales' metadata; it is not an OME-Zarr image")
        self.multiscale = multiscales[0]
        self.omero = _ome(group).get("omero") or {}
        try:
            self.levels = [group[str(d["path"])] for d in self.multiscale["datasets"]]
        except (SourceUnavailable, PlateError):
            raise
        except (KeyError, TypeError) as err:
            raise PlateError(f"{path} in {name} lists a resolution level that is missing ({err}); "
                             "re-export the plate") from None
        self.axes = _axes(self.multiscale, len(self.levels[0].shape))
        if "y" not in self.axes or "x" not in self.axes or len(self.axes) != len(self.levels[0].shape):
            raise PlateError(f"{path} in {name} has axes {self.axes} for shape {self.levels[0].shape}; "
                             "an image needs y and x axes")

    def fill_value(self, level: int = 0):
        """What a missing chunk reads as (the zarr spec): the array's fill value, 0 when unset."""
        fill = self.levels[level].fill_value
        return 0 if fill is None else fill

    def size(self, axis: str, level: int = 0) -> int:
        return int(self.levels[level].shape[self.axes.index(axis)]) if axis in self.axes else 1

    def level_for(self, min_side: int | None) -> int:
        """The coarsest level whose shorter side still has ``min_side`` pixels (0 = full resolution)."""
        if not min_side:
            return 0
        best = 0
        for i in range(len(self.levels)):
            if min(self.size("y", i), self.size("x", i)) >= min_side:
                best = i
        return best

    def read(self, channels: list[int], level: int = 0) -> np.ndarray:
        """(len(channels), Y, X) of the first time point and plane; reads only those chunks."""
        n = self.size("c", level)
        bad = [c for c in channels if not 0 <= c < n]
        if bad:
            raise PlateError(f"field {self.label} holds {n} channels, fewer than the plate's first field; "
                             "re-export it with every channel")
        lo, hi = min(channels), max(channels) + 1
        selection = []
        for ax in self.axes:
            if ax == "c":
                selection.append(slice(lo, hi))
            elif ax in ("y", "x"):
                selection.append(slice(None))
            else:
                selection.append(0)  # first time point, first plane
        try:
            data = np.asarray(self.levels[level][tuple(selection)])
        except (SourceUnavailable, PlateError):
            raise  # the server stopped answering (a long run stops), or refused: not this field's fault
        except Exception as err:  # corrupt chunks
            raise PlateError(f"field {self.label} could not be read ({type(err).__name__}: {err}); "
                             "the plate may be incomplete") from None
        kept = [ax for ax in self.axes if ax in ("c", "y", "x")]
        if "c" not in kept:
            data, kept = data[None], ["c"] + kept
        data = np.transpose(data, [kept.index("c"), kept.index("y"), kept.index("x")])
        return data[[c - lo for c in channels]]


class ZarrSource:
    """One OME-Zarr plate's store (a folder, or a URL read through ``remote.RemoteStore``), its root
    group and its fields, each opened once and shared by every thread that reads the plate."""

    def __init__(self, location: "PlateLocation | str | os.PathLike", settings=None):
        self.location = PlateLocation.of(location)
        self.settings = settings  # remote.RemoteSettings for a URL (None: the defaults and environment)
        self._store = None
        self._root = None
        self._fields: dict[str, FieldImage] = {}
        self._lock = threading.Lock()

    @property
    def store(self):
        with self._lock:
            if self._store is None:
                if self.location.is_remote:
                    from .remote import open_remote_store

                    self._store = open_remote_store(self.location, self.settings)
                else:
                    self._store = _zarr().storage.LocalStore(self.location.folder, read_only=True)
            return self._store

    @property
    def transfers(self):
        """What was fetched over the network (``remote.Transfers``), None for a local plate."""
        return getattr(self.store, "transfers", None)

    def root_group(self):
        store = self.store
        with self._lock:
            if self._root is None:
                self._root = _open_group(store, self.location)
            return self._root

    def group(self, path: str):
        return _child(self.root_group(), path, self.location)

    def field(self, path: str) -> FieldImage:
        with self._lock:
            image = self._fields.get(path)
        if image is None:
            image = FieldImage(self, path)
            with self._lock:
                image = self._fields.setdefault(path, image)
        return image

    def read(self, path: str, channels: list[int], min_side: int | None = None) -> tuple[np.ndarray, object]:
        """(C, Y, X) of one field — full resolution, or the coarsest level ≥ ``min_side`` — and its fill value."""
        image = self.field(path)
        level = image.level_for(min_side)
        return image.read(channels, level), image.fill_value(level)


def _channel_meta(image: FieldImage) -> tuple[list[str], list[str | None]]:
    n = image.size("c")
    channels = image.omero.get("channels") if isinstance(image.omero, dict) else None
    channels = channels if isinstance(channels, list) and len(channels) == n else [{}] * n
    names, colors = [], []
    for i, ch in enumerate(channels):
        ch = ch if isinstance(ch, dict) else {}
        names.append(str(ch.get("label") or "").strip() or f"C{i}")
        colour = str(ch.get("color") or "").strip().lstrip("#")
        valid = len(colour) == 6 and all(c in "0123456789abcdefABCDEF" for c in colour)
        colors.append(f"#{colour.lower()}" if valid else None)
    return names, colors


def _well_id(plate: dict, well: dict) -> str:
    try:
        row = plate["rows"][int(well["rowIndex"])]["name"]
        col = plate["columns"][int(well["columnIndex"])]["name"]
        return normalize_well(f"{row}{col}")
    except (KeyError, IndexError, TypeError, ValueError, PlateError):
        parts = str(well.get("path", "")).strip("/").split("/")
        return normalize_well("".join(parts[-2:]))


class OpenProgress(NamedTuple):
    """How far opening a plate has come: ``done`` of ``total`` wells' metadata read."""

    done: int
    total: int
    what: str


def _well_images(source: ZarrSource, plate: dict, well) -> tuple[str, str, list]:
    """(well id, well path, its images' metadata); PlateError/any error when unreadable."""
    path = str(well.get("path", "")).strip("/") if isinstance(well, dict) else ""
    well_id = _well_id(plate, well)
    images = _ome(source.group(path)).get("well", {}).get("images") or []
    return well_id, path, images


def _read_wells(source: ZarrSource, plate: dict, wells: list) -> Iterator:
    """Yields OpenProgress; returns ``[(index, result or None)]`` in plate order. Over a network the
    wells are read concurrently (their metadata is a few small JSON documents each)."""
    results: dict[int, tuple | None] = {}
    workers = 16 if source.location.is_remote else 1
    if workers == 1:
        for i, well in enumerate(wells):
            results[i] = _guarded(source, plate, well)
        return sorted(results.items())
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dcmix-open")
    try:
        futures = {pool.submit(_guarded, source, plate, well): i for i, well in enumerate(wells)}
        step = max(1, len(wells) // 50)
        for n, future in enumerate(as_completed(futures), 1):
            results[futures[future]] = future.result()
            if n % step == 0 or n == len(wells):
                yield OpenProgress(n, len(wells), f"read the metadata of {n}/{len(wells)} wells")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return sorted(results.items())


def _guarded(source: ZarrSource, plate: dict, well):
    try:
        return _well_images(source, plate, well)
    except SourceUnavailable:
        raise  # the server, not the well: opening stops with the reason
    except Exception:  # unreadable well group or id: listed, the rest of the plate stays usable
        return None


def iter_zarr_index(source: ZarrSource) -> Iterator:
    """Index an OME-Zarr plate from its metadata, yielding OpenProgress; returns the PlateIndex.
    PlateError with a fix when it cannot be used; SourceUnavailable when its server stops answering."""
    location = source.location
    plate = _ome(source.root_group()).get("plate")
    if not isinstance(plate, dict) or not plate.get("wells"):
        raise PlateError(f"{location} is a zarr group without plate wells; open an OME-Zarr HCS plate (NGFF 0.4/0.5)")
    problems: list[str] = []
    acquisitions = [a.get("id") for a in plate.get("acquisitions") or [] if isinstance(a, dict)]
    first_acq = acquisitions[0] if len(acquisitions) > 1 else None
    if first_acq is not None:
        problems.append(f"{len(acquisitions)} acquisitions found: using acquisition {first_acq} only")
    fields: dict[SiteKey, str] = {}
    bad_wells: list[str] = []
    wells = list(plate["wells"])
    for i, result in (yield from _read_wells(source, plate, wells)):
        if result is None:
            well = wells[i]
            bad_wells.append(str(well.get("path", "")).strip("/") if isinstance(well, dict) else repr(well))
            continue
        well_id, path, images = result
        images = [im for im in images if first_acq is None or im.get("acquisition", first_acq) == first_acq]
        for j, image in enumerate(images, 1):
            fields[SiteKey("", well_id, j)] = f"{path}/{str(image.get('path')).strip('/')}"
    per_file(problems, [w or "(no path)" for w in bad_wells], "unreadable",
             "the well's metadata could not be read; the well is skipped", SKIPPED,
             "check the plate's .zattrs/zarr.json files or re-export the plate")
    if not fields:
        raise PlateError(f"no well of {location} lists a field of view; check the plate was written completely")
    first = source.field(fields[min(fields)])
    if first.size("t") > 1:
        problems.append("time series found: using time point 0 only")
    if first.size("z") > 1:
        problems.append("z-stack found: using plane 0 only")
    names, colors = _channel_meta(first)
    keys = [str(i) for i in range(len(names))]
    names = distinct_names(names, [f"C{k}" for k in keys])
    sites = {key: [ChannelRef(path, i, "zarr") for i in range(len(names))] for key, path in fields.items()}
    return PlateIndex(location.folder, LAYOUT, keys, names, sites, problems, colors=colors,
                      name=str(plate.get("name") or ""), location=location, zarr=source)


def build_zarr_index(root: "Path | PlateLocation | ZarrSource"):
    """Index an OME-Zarr plate from its metadata; PlateError with a fix when it cannot be used."""
    source = root if isinstance(root, ZarrSource) else ZarrSource(root)
    steps = iter_zarr_index(source)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def looks_like_zarr_url(text: str) -> bool:
    """Whether a URL names a zarr folder (``…/plate.zarr``): what File > Open claims without fetching."""
    try:
        location = PlateLocation.of(text)
    except PlateError:
        return False
    return location.is_remote and location.name.lower().endswith(".zarr")
