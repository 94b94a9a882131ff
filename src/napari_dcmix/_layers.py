"""A site as napari layer data (no Qt): one additive Image layer per channel, tagged so the docks
can find the plugin's layers again and leave the user's own layers alone."""

from __future__ import annotations

from .colors import channel_colormaps
from .plate import Plate, SiteKey

#: Key of the layer metadata that marks the plugin's layers.
META_KEY = "napari_dcmix"


def site_metadata(plate: Plate, key: SiteKey, channel: str, pattern: str | None = None) -> dict:
    return {META_KEY: {"plate": str(plate.root), "pattern": pattern, "site": list(key), "channel": channel}}


def site_layer_data(plate: Plate, key: SiteKey, pattern: str | None = None) -> list[tuple]:
    """LayerDataTuples for one site: channel names, stable colormaps, plate-wide contrast limits."""
    data = plate.read_site(key)
    stats = plate.channel_stats()
    colormaps = channel_colormaps(plate.channels)
    layers = []
    for i, name in enumerate(plate.channels):
        kwargs = {
            "name": name,
            "colormap": colormaps[i],
            "blending": "additive",
            "contrast_limits": stats.contrast_limits(i),
            "metadata": site_metadata(plate, key, name, pattern),
        }
        layers.append((data[i], kwargs, "image"))
    return layers
