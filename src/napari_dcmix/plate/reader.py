"""Read sites lazily: one (C, Y, X) array per site, on demand, with a small thread-safe cache.

Images are opened read-only; nothing is ever written into the plate folder.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import PlateError, SourceUnavailable
from .ome_zarr import ZarrSource
from .problems import REPAIRED, REPLANED, SKIPPED, capture_tifffile_log, make, tiff_detail
from .stats import LOW_PERCENTILE


def _unreadable(path: Path, what: str, fix: str = "re-export it, or move it out of the plate folder",
                kind: str = "unreadable") -> PlateError:
    err = PlateError(f"{path.name} {what}; {fix}")
    err.problem = make(kind, f"{path.name} {what}", fix, file=path.name, action=SKIPPED)
    return err


def _load(path: Path, notes: list | None = None) -> tuple[np.ndarray, str]:
    """Decode one image file: (pixels, axes) with tifffile's axis letters (``YX`` for PNG grey).

    What tifffile logs meanwhile (damage it worked around) becomes a named problem in ``notes``,
    or part of the error when the file cannot be read at all.
    """
    suffix = path.suffix.lower()
    with capture_tifffile_log() as logged:
        try:
            if path.stat().st_size == 0:
                raise _unreadable(path, "could not be read (it is empty: 0 bytes); the export or copy did not "
                                        "finish, the file may be corrupt")
            if suffix in (".tif", ".tiff"):
                import tifffile

                with tifffile.TiffFile(path) as tif:
                    series = tif.series[0]
                    data = series.asarray(maxworkers=1)  # decode in this thread: its log is captured
                    axes = series.axes
                if len(axes) != data.ndim:
                    axes = "Q" * (data.ndim - 2) + "YX"
            else:
                import imageio.v3 as iio

                data = np.asarray(iio.imread(path))
                if data.ndim == 3 and data.shape[-1] in (2, 3, 4):
                    axes = "YXS"  # grey + alpha, RGB, RGBA
                else:
                    axes = ("Q" * max(0, data.ndim - 2) + "YX")[-data.ndim:] if data.ndim else ""
        except PlateError:
            raise
        except FileNotFoundError:
            raise _unreadable(path, "has disappeared since the plate was opened (deleted, moved, or its drive is gone)",
                              "check the plate folder, then open the plate again", kind="vanished") from None
        except MemoryError:
            raise _unreadable(path, "is too large to read into memory", "crop or split the image") from None
        except Exception as err:  # tifffile/imageio raise many types on corrupt files
            codec = _missing_codec(path, err)
            if codec is not None:
                raise _unreadable(path, f"could not be decoded: its {codec} compression needs the imagecodecs "
                                  "package, which is not installed here", "install it with: pip install imagecodecs"
                                  ) from None
            detail = tiff_detail(logged)
            raise _unreadable(path, f"could not be read ({type(err).__name__}: {err}" + (f"; tifffile: {detail}" if detail
                              else "") + "); the file may be corrupt or truncated") from None
    if logged and notes is not None:
        notes.append(make("tiff-log", f"{path.name}: tifffile reported '{tiff_detail(logged)}' but the pixels were read",
                          "look at the image; re-export the file if it looks wrong", file=path.name))
    return data, axes


def _missing_codec(path: Path, err: Exception) -> str | None:
    """The compression tifffile could not decode for want of imagecodecs (its ValueError names the
    package; for zstd it tries a stdlib module that Python < 3.14 lacks), or None for other errors."""
    if "imagecodecs" not in str(err) and not isinstance(err, ImportError):
        return None
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return tif.pages[0].compression.name
    except Exception:  # noqa: BLE001 - the name is a courtesy; the advice stands without it
        return "image"


def _read_2d(path: Path, index: int | None, notes: list | None = None) -> np.ndarray:
    data, axes = _load(path, notes)
    return _plane(data, axes, index, path, notes)


def _channel_axis(axes: str) -> str | None:
    """The axis that holds channels in a multi-channel file: C, else samples (S), else a generic one."""
    for ax in ("C", "S", "Q", "I"):
        if ax in axes:
            return ax
    return None


def _plane(data: np.ndarray, axes: str, index: int | None, path: Path, notes: list | None = None) -> np.ndarray:
    """Reduce any TIFF series to one 2-D plane: the channel ``index``, first time point and z-plane.

    A stack or colour image where one plane was expected is re-planed (its first plane is used) and
    reported in ``notes``: the network must see the same kind of image at every site.
    """
    shape, dropped, axes0 = data.shape, [], axes
    if "Y" not in axes or "X" not in axes or data.ndim < 2:
        raise PlateError(f"{path.name} is not a 2-D image (shape {data.shape}, axes {axes or 'none'})")
    channel_axis = _channel_axis(axes) if index is not None else None
    for ax in list(axes):
        if ax in "YX":
            continue
        pos = axes.index(ax)
        if ax == channel_axis:
            if not 0 <= index < data.shape[pos]:
                raise PlateError(
                    f"{path.name} holds {data.shape[pos]} channels, fewer than the plate's other files; "
                    "re-export it with every channel, or move it out of the plate folder"
                )
            data = np.take(data, index, axis=pos)
        elif ax == "S" and data.shape[pos] in (3, 4) and index is None:
            first = np.take(data, 0, axis=pos)
            if any(not np.array_equal(first, np.take(data, i, axis=pos)) for i in (1, 2)):
                dropped.append("colour")
            data = first
        else:
            if ax == "C" and data.shape[pos] > 1:
                raise PlateError(f"{path.name} holds {data.shape[pos]} channels; use a pattern with one file per channel or an OME-TIFF layout")
            if data.shape[pos] > 1 and ax != "S":
                dropped.append(ax)
            data = np.take(data, 0, axis=pos)
        axes = axes.replace(ax, "", 1)
    if data.ndim != 2 or axes not in ("YX", "XY"):
        raise PlateError(f"{path.name} is not a 2-D image (shape {data.shape})")
    if dropped and notes is not None:
        what = ("a colour (RGB) image" if dropped == ["colour"] else
                f"a {'×'.join(map(str, shape))} stack (axes {axes0})")
        notes.append(make("stack", f"{path.name} is {what} where one plane was expected", "the first plane (red "
                          "samples for colour) is used; export one plane per file, or a projection, to use another",
                          file=path.name, action=REPLANED))
    return data if axes == "YX" else data.T


def ome_channel_names(ome: str) -> list[str]:
    """Channel names of the first image in an OME-XML document ('' where a channel has none)."""
    if not ome:
        return []
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(ome.encode("utf-8") if isinstance(ome, str) else ome)
    except ElementTree.ParseError:
        return []

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    for image in root:
        if local(image.tag) != "Image":
            continue
        for pixels in image:
            if local(pixels.tag) == "Pixels":
                return [(ch.get("Name") or "").strip() for ch in pixels if local(ch.tag) == "Channel"]
        return []
    return []


def multichannel_info(path: Path) -> tuple[int, list[str]]:
    """Channel count and names of one multi-channel (OME-)TIFF, from its header and OME-XML only."""
    import tifffile

    try:
        with capture_tifffile_log(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, series.shape
            ome = tif.ome_metadata or ""
    except Exception as err:
        raise PlateError(f"{path.name} could not be read ({type(err).__name__}: {err}); the file may be corrupt") from None
    ax = _channel_axis(axes)
    n = int(shape[axes.index(ax)]) if ax else 1
    names = ome_channel_names(ome)
    if len(names) != n:
        names = [""] * n
    names = [name or f"C{i}" for i, name in enumerate(names)]
    if len(set(names)) != n:  # repeated names: keep them readable but distinct
        names = [f"{name} (C{i})" if names.count(name) > 1 else name for i, name in enumerate(names)]
    return n, names


class SiteCache:
    """A small LRU of decoded sites; the GUI thread and background workers share it safely."""

    def __init__(self, max_sites: int = 16):
        self.max_sites = max_sites
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_sites:
                self._items.popitem(last=False)


def _site_error(err: PlateError, file: str, label: str) -> PlateError:
    """The same error, its problem naming the file (relative to the plate) and the site."""
    problem = getattr(err, "problem", None) or make("unreadable", str(err), action=SKIPPED)
    problem = replace(problem, file=file, site=label, message=f"{label}: {problem.message}")
    new = PlateError(f"{label}: {err}")
    new.problem = problem
    return new


def _finite(plane: np.ndarray, channel: str, file: str, label: str, notes: list | None) -> np.ndarray:
    """Float pixels that are NaN or ±Inf (masks, failed flat-field divisions) become the channel's
    1st percentile of the site's finite pixels, so no statistic and no tile is ever non-finite."""
    if plane.dtype.kind != "f":
        return plane
    bad = ~np.isfinite(plane)
    n_bad = int(bad.sum())
    if not n_bad:
        return plane
    n_nan = int(np.isnan(plane).sum())
    what = f"{file} (channel {channel}) has {n_nan} NaN and {n_bad - n_nan} infinite pixels of {plane.size}"
    if n_bad == plane.size:
        err = PlateError(f"{what}: every pixel is non-finite; re-export the channel or exclude the site")
        err.problem = make("non-finite", f"{what} (every pixel)", "re-export the channel or exclude the site",
                           file=file, site=label, action=SKIPPED)
        raise err
    fill = float(np.percentile(plane[~bad], LOW_PERCENTILE))
    if notes is not None:
        notes.append(make("non-finite", f"{label}: {what}",
                          f"replaced by the channel's {LOW_PERCENTILE:g}st percentile ({fill:.4g}) so statistics and "
                          "the network see finite values; export a mask as its own channel if it matters",
                          file=file, site=label, action=REPAIRED))
    return np.where(bad, np.asarray(fill, plane.dtype), plane)


def _zarr_planes(source, refs, channels: list[str], label: str, min_side: int | None) -> dict[int, np.ndarray]:
    """Position in ``refs`` -> plane, for channels stored in OME-Zarr fields: one read per field.

    By the zarr spec a missing chunk reads as the fill value; a channel whose every pixel is the fill
    value holds no image (its chunks are missing, or were written empty): the site is skipped, named.
    """
    by_field: dict[str, list[int]] = {}
    for i, ref in enumerate(refs):
        if ref.kind == "zarr":
            by_field.setdefault(ref.path, []).append(i)
    planes: dict[int, np.ndarray] = {}
    for path, positions in by_field.items():
        data, fill = source.read(path, [refs[i].index for i in positions], min_side)
        empty = [channels[i] for i, plane in zip(positions, data) if _all_fill(plane, fill)]
        if empty:
            raise _empty_field(path, label, empty, len(positions), fill)
        planes.update(zip(positions, data))
    return planes


def _all_fill(plane: np.ndarray, fill) -> bool:
    try:
        if isinstance(fill, float) and np.isnan(fill):
            return False  # all-NaN planes are the non-finite check's
        return not np.any(plane != fill)
    except (TypeError, ValueError):
        return False


def _empty_field(path: str, label: str, empty: list[str], n: int, fill) -> PlateError:
    what = "every channel" if len(empty) == n else ", ".join(empty)
    message = (f"{label} is empty: {what} holds no image (every pixel is the zarr fill value {fill}: "
               f"the chunks of field {path} are missing, or were written empty)")
    fix = "check that the plate was uploaded or exported completely, or leave the site out"
    err = PlateError(f"{message}: skipped; {fix}")
    err.problem = make("empty", message, fix, file=path, site=label, action=SKIPPED)
    return err


def read_channels(root: Path | None, refs, channels: list[str], label: str, notes: list | None = None,
                  dtypes: list | None = None, min_side: int | None = None, zarr=None) -> np.ndarray:
    """Stack one site's channel files into (C, Y, X), finite for float images; different shapes are a
    clear error (the site is skipped: cropping would misalign channels taken at different binnings).

    A multi-channel file is decoded once for all of its channels, not once per channel. What was
    repaired or re-planed is appended to ``notes`` as :class:`Problem` records naming file and site;
    each channel's own pixel type (before stacking promotes them) to ``dtypes``. ``min_side`` allows a
    lower pyramid level (thumbnails) where the format stores one (OME-Zarr); ``zarr`` is the plate's
    open ``ZarrSource`` (default: opened from ``root``).
    """
    decoded: dict[str, tuple[np.ndarray, str]] = {}
    zarr_planes = {}
    if any(ref.kind == "zarr" for ref in refs):
        zarr_planes = _zarr_planes(zarr if zarr is not None else ZarrSource(root), refs, channels, label, min_side)
    planes, local = [], []
    for i, (ref, name) in enumerate(zip(refs, channels)):
        if i in zarr_planes:
            planes.append(_finite(zarr_planes[i], name, ref.path, label, local))
            continue
        path = root / ref.path
        try:
            if ref.index is None:
                plane = _read_2d(path, None, local)
            else:
                if ref.path not in decoded:
                    decoded[ref.path] = _load(path, local)
                plane = _plane(*decoded[ref.path], ref.index, path, local)
            planes.append(_finite(plane, name, ref.path, label, local))
        except SourceUnavailable:
            raise  # the storage stopped answering: not this site's fault, never a damaged site
        except PlateError as err:
            raise _site_error(err, ref.path, label) from None
        local[:] = [p if p.site else replace(p, file=ref.path, site=label, message=f"{label}: {p.message}")
                    for p in local]
    shapes = {p.shape for p in planes}
    if len(shapes) > 1:
        detail = ", ".join(f"{name} {p.shape[0]}×{p.shape[1]}" for name, p in zip(channels, planes))
        err = PlateError(f"{label}: channels have different shapes ({detail}); re-export the site or exclude it")
        common = max(shapes, key=lambda shape: (sum(p.shape == shape for p in planes), shape[0] * shape[1]))
        odd = next(ref.path for ref, p in zip(refs, planes) if p.shape != common)  # the file to look at
        err.problem = make("mixed-shapes", f"{label}: channels have different shapes ({detail})",
                           "re-export the site or exclude it", file=odd, site=label, action=SKIPPED)
        raise err
    if notes is not None:
        notes.extend(local)
    if dtypes is not None:
        dtypes.extend(str(p.dtype) for p in planes)
    kinds = {p.dtype for p in planes}
    dtype = planes[0].dtype if len(kinds) == 1 else np.result_type(*kinds)
    return np.stack([p.astype(dtype, copy=False) for p in planes])
