"""One colour per channel, everywhere in the plugin: channel layers, importance bars, legends.

Known stains get their conventional colour; other channels cycle through distinct colormaps.
"""

from __future__ import annotations

#: napari colormap name -> RGB hex for charts drawn with matplotlib.
COLORMAP_RGB = {
    "blue": "#3b6cff",
    "green": "#2ecc40",
    "red": "#ff4136",
    "magenta": "#f012be",
    "yellow": "#ffdc00",
    "cyan": "#39cccc",
    "bop orange": "#ff851b",
    "bop purple": "#b10dc9",
    "gray": "#aaaaaa",
}

_KNOWN = {
    "dna": "blue", "hoechst": "blue", "dapi": "blue", "nuclei": "blue", "nucleus": "blue",
    "er": "green", "cona": "green", "concanavalin": "green",
    "rna": "yellow", "syto14": "yellow", "syto": "yellow", "nucleoli": "yellow",
    "agp": "red", "actin": "red", "phalloidin": "red", "wga": "cyan", "golgi": "cyan",
    "mito": "magenta", "mitotracker": "magenta", "mitochondria": "magenta",
    "brightfield": "gray", "bf": "gray",
}
#: Categorical palette for classes (Tableau 10: distinct, colour-blind friendlier than rainbow).
CLASS_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


def class_colors(classes) -> dict[str, str]:
    """Class -> hex colour, by position in the (editable) class list, so colours stay put."""
    return {name: CLASS_PALETTE[i % len(CLASS_PALETTE)] for i, name in enumerate(classes)}


_CYCLE = ["blue", "green", "red", "magenta", "yellow", "cyan", "bop orange", "bop purple", "gray"]


def channel_colormaps(channels: list[str], colors: list[str | None] | None = None) -> list[str]:
    """napari colormap names for ``channels``: the plate's own colours (``"#rrggbb"``, e.g. from
    OME-Zarr omero metadata) where given, else conventional stain colours, then unused ones in turn."""
    own = list(colors or [])[: len(channels)]
    own += [None] * (len(channels) - len(own))
    chosen: list[str | None] = [own[i] or _KNOWN.get(name.strip().lower()) for i, name in enumerate(channels)]
    taken = {c for c in chosen if c}
    spare = [c for c in _CYCLE if c not in taken] or list(_CYCLE)
    result = []
    for i, colour in enumerate(chosen):
        if colour is None:
            colour = spare[i % len(spare)] if len(set(chosen) - {None}) else _CYCLE[i % len(_CYCLE)]
        result.append(colour)
    return result


def channel_rgb(channels: list[str], colors: list[str | None] | None = None) -> list[str]:
    """Hex colours matching :func:`channel_colormaps`, for bars and legends."""
    return [c if c.startswith("#") else COLORMAP_RGB[c] for c in channel_colormaps(channels, colors)]
