"""Read sites lazily: one (C, Y, X) array per site, on demand, with a small thread-safe cache.

Images are opened read-only; nothing is ever written into the plate folder.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import PlateError


def _load(path: Path) -> tuple[np.ndarray, str]:
    """Decode one image file: (pixels, axes) with tifffile's axis letters (``YX`` for PNG grey)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                data = series.asarray()
                axes = series.axes
            if len(axes) != data.ndim:
                axes = "Q" * (data.ndim - 2) + "YX"
            return data, axes
        import imageio.v3 as iio

        data = np.asarray(iio.imread(path))
        if data.ndim == 3 and data.shape[-1] in (2, 3, 4):
            return data, "YXS"  # grey + alpha, RGB, RGBA
        return data, ("Q" * max(0, data.ndim - 2) + "YX")[-data.ndim:] if data.ndim else ""
    except PlateError:
        raise
    except FileNotFoundError:
        raise PlateError(f"{path} has disappeared; re-open the plate") from None
    except MemoryError:
        raise PlateError(f"{path.name} is too large to read into memory; crop or split the image") from None
    except Exception as err:  # tifffile/imageio raise many types on corrupt files
        raise PlateError(
            f"{path.name} could not be read ({type(err).__name__}: {err}); the file may be corrupt: "
            "re-export it, or move it out of the plate folder"
        ) from None


def _read_2d(path: Path, index: int | None) -> np.ndarray:
    data, axes = _load(path)
    return _plane(data, axes, index, path)


def _channel_axis(axes: str) -> str | None:
    """The axis that holds channels in a multi-channel file: C, else samples (S), else a generic one."""
    for ax in ("C", "S", "Q", "I"):
        if ax in axes:
            return ax
    return None


def _plane(data: np.ndarray, axes: str, index: int | None, path: Path) -> np.ndarray:
    """Reduce any TIFF series to one 2-D plane: the channel ``index``, first time point and z-plane."""
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
            data = np.take(data, 0, axis=pos)
        else:
            if ax == "C" and data.shape[pos] > 1:
                raise PlateError(f"{path.name} holds {data.shape[pos]} channels; use a pattern with one file per channel or an OME-TIFF layout")
            data = np.take(data, 0, axis=pos)
        axes = axes.replace(ax, "", 1)
    if data.ndim != 2 or axes not in ("YX", "XY"):
        raise PlateError(f"{path.name} is not a 2-D image (shape {data.shape})")
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
        with tifffile.TiffFile(path) as tif:
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


def _zarr_planes(root: Path, refs, min_side: int | None) -> dict[int, np.ndarray]:
    """Position in ``refs`` -> plane, for channels stored in OME-Zarr fields: one read per field."""
    from .ome_zarr import read_field

    by_field: dict[str, list[int]] = {}
    for i, ref in enumerate(refs):
        if ref.kind == "zarr":
            by_field.setdefault(ref.path, []).append(i)
    planes: dict[int, np.ndarray] = {}
    for path, positions in by_field.items():
        data = read_field(root, path, [refs[i].index for i in positions], min_side)
        planes.update(zip(positions, data))
    return planes


def read_channels(root: Path, refs, channels: list[str], label: str, min_side: int | None = None) -> np.ndarray:
    """Stack one site's channel files into (C, Y, X); different shapes are a clear error.

    A multi-channel file is decoded once for all of its channels, not once per channel.
    ``min_side`` allows a lower pyramid level (thumbnails) where the format stores one.
    """
    decoded: dict[str, tuple[np.ndarray, str]] = {}
    zarr_planes = _zarr_planes(root, refs, min_side) if any(ref.kind == "zarr" for ref in refs) else {}
    planes = []
    for i, ref in enumerate(refs):
        if i in zarr_planes:
            planes.append(zarr_planes[i])
            continue
        path = root / ref.path
        if ref.index is None:
            planes.append(_read_2d(path, None))
            continue
        if ref.path not in decoded:
            decoded[ref.path] = _load(path)
        planes.append(_plane(*decoded[ref.path], ref.index, path))
    shapes = {p.shape for p in planes}
    if len(shapes) > 1:
        detail = ", ".join(f"{name} {p.shape[0]}×{p.shape[1]}" for name, p in zip(channels, planes))
        raise PlateError(f"{label}: channels have different shapes ({detail}); re-export the site or exclude it")
    dtypes = {p.dtype for p in planes}
    dtype = planes[0].dtype if len(dtypes) == 1 else np.result_type(*dtypes)
    return np.stack([p.astype(dtype, copy=False) for p in planes])
