"""A site as napari layer data (no Qt): one additive Image layer per channel, tagged so the docks
can find the plugin's layers again and leave the user's own layers alone."""

from __future__ import annotations

from .colors import channel_colormaps
from .plate import ChannelStats, Plate, SiteKey
from .plate.stats import compute_stats

#: Key of the layer metadata that marks the plugin's layers.
META_KEY = "napari_dcmix"


def site_metadata(plate: Plate, key: SiteKey, channel: str, pattern: str | None = None) -> dict:
    return {META_KEY: {"plate": str(plate.location), "pattern": pattern, "site": list(key), "channel": channel}}


def site_layer_data(plate: Plate, key: SiteKey, pattern: str | None = None, stats: ChannelStats | None = None) -> list[tuple]:
    """LayerDataTuples for one site: channel names, stable colormaps, contrast limits.

    Contrast comes from ``stats``, else the plate's statistics if already computed, else this site's
    own percentiles: File → Open runs on the GUI thread and must not read dozens of sites first.
    """
    data = plate.read_site(key)
    stats = stats or plate.computed_channel_stats() or compute_stats(plate.channels, [data])
    colormaps = channel_colormaps(plate.channels, plate.channel_colors)
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
