"""Show a site in napari as one additive Image layer per channel, replacing the plugin's channel
layers IN PLACE when the user moves to another well.

In place matters to biologists: contrast, visibility and colormap they tuned for a channel, the
camera, and their own layers all survive switching wells. Every dock (plate browser, train,
apply) calls :func:`show_site`, so there is one set of channel layers per viewer.
"""

from __future__ import annotations

import numpy as np

from .._layers import META_KEY, site_layer_data, site_metadata
from ..colors import channel_colormaps
from ..plate import Plate, SiteKey
from ..plate.stats import ChannelStats, compute_stats

from ..plate.mosaic import read_mosaic

__all__ = ["apply_plate_contrast", "plugin_layers", "provisional_stats", "show_site"]


def provisional_stats(plate: Plate, site: np.ndarray) -> ChannelStats:
    """Contrast from the shown site alone, used until the plate-wide statistics are computed."""
    return compute_stats(plate.channels, [site])


def plugin_layers(viewer) -> dict[str, object]:
    """Channel name -> the plugin's Image layer for it (the topmost one if there are several)."""
    from napari.layers import Image

    found = {}
    for layer in viewer.layers:
        meta = layer.metadata.get(META_KEY) if isinstance(layer.metadata, dict) else None
        if isinstance(meta, dict) and meta.get("channel") is not None and isinstance(layer, Image):
            found[str(meta["channel"])] = layer
    return found


def _layer_tuples(plate: Plate, key: SiteKey, data: np.ndarray, stats: ChannelStats | None,
                  pattern: str | None) -> list[tuple]:
    if stats is None:
        tuples = site_layer_data(plate, key, pattern)  # reads the site, plate-wide contrast limits
        return [(data[i], kw, kind) for i, (_, kw, kind) in enumerate(tuples)]
    colormaps = channel_colormaps(plate.channels, plate.channel_colors)
    return [(data[i], {"name": name, "colormap": colormaps[i], "blending": "additive",
                       "contrast_limits": stats.contrast_limits(i),
                       "metadata": site_metadata(plate, key, name, pattern)}, "image")
            for i, name in enumerate(plate.channels)]


def show_site(viewer, plate: Plate, key: SiteKey, *, mosaic: bool = False, pattern: str | None = None,
              stats: ChannelStats | None = None, provisional: bool = False, session=None) -> list:
    """Show ``key`` (or, with ``mosaic``, all sites of its well) as one layer per channel; returns the
    layers in channel order. Existing plugin layers get the new pixels in place; missing ones are
    created with the channel colour, additive blending and contrast from ``stats`` (default: the
    plate statistics; ``provisional``: stand-ins that :func:`apply_plate_contrast` replaces later). With
    ``session``, publishes ``session.set_site(key)`` (the plate dock then marks the well).
    Raises PlateError if a file cannot be read; the viewer is then unchanged."""
    data = read_mosaic(plate, key) if mosaic else plate.read_site(key)
    existing = plugin_layers(viewer)
    need_new = any(name not in existing for name in plate.channels)
    tuples = _layer_tuples(plate, key, data, stats, pattern) if need_new else None
    layers, reshaped = [], False
    for i, name in enumerate(plate.channels):
        meta = site_metadata(plate, key, name, pattern)[META_KEY]
        meta["mosaic"] = bool(mosaic)
        layer = existing.get(name)
        if layer is None:
            arr, kwargs, _ = tuples[i]
            kwargs = dict(kwargs)
            kwargs["metadata"] = {META_KEY: {**meta, "auto_contrast": list(kwargs["contrast_limits"]),
                                             "provisional": bool(provisional and stats is not None)}}
            layer = viewer.add_image(arr, **kwargs)
        else:
            reshaped = reshaped or tuple(layer.data.shape) != tuple(data[i].shape)
            layer.data = data[i]
            old = layer.metadata.get(META_KEY, {})
            layer.metadata[META_KEY] = {**old, **meta}
        layers.append(layer)
    for name, layer in existing.items():  # channels of another plate would mix in additively
        if name not in plate.channels:
            layer.visible = False
    if reshaped:
        viewer.reset_view()
    if session is not None:
        session.set_site(key)
    return layers


def apply_plate_contrast(viewer, stats: ChannelStats) -> None:
    """Once plate-wide statistics exist, move layers still on provisional contrast to them, unless
    the user already changed that layer's contrast (then the user's choice wins)."""
    for name, layer in plugin_layers(viewer).items():
        meta = layer.metadata.get(META_KEY, {})
        if not meta.get("provisional") or name not in stats.channels:
            continue
        auto = meta.get("auto_contrast")
        limits = stats.contrast_limits(stats.channels.index(name))
        if auto is not None and np.allclose(layer.contrast_limits, auto):
            layer.contrast_limits = limits
            meta["auto_contrast"] = list(limits)
        meta["provisional"] = False
