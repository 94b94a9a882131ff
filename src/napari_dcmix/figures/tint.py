"""Channels to colour, as napari draws additive layers: each channel scaled from its low (black) to its
high (full colour) contrast limit, tinted in its colour, summed. One helper for the plate map's
thumbnails and the top-sites montage, so both look like the viewer."""

from __future__ import annotations

from typing import Iterable

import numpy as np


def hex_rgb(colour: str | tuple) -> tuple[float, float, float]:
    """'#ff8000' -> (1.0, 0.5, 0.0); an (r, g, b) tuple in [0, 1] is returned as it is."""
    if not isinstance(colour, str):
        return tuple(float(v) for v in colour)  # type: ignore[return-value]
    colour = colour.lstrip("#")
    return tuple(int(colour[i:i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


def tint(channels: np.ndarray, low, high, colours: Iterable[str | tuple]) -> np.ndarray:
    """(C, y, x) intensities -> (y, x, 3) float32 in [0, 1]: additive colour composite."""
    low = np.asarray(low, np.float32).reshape(-1, 1, 1)
    high = np.asarray(high, np.float32).reshape(-1, 1, 1)
    norm = np.clip((np.asarray(channels, np.float32) - low) / np.maximum(high - low, 1e-6), 0.0, 1.0)
    rgb = np.array([hex_rgb(c) for c in colours], np.float32)
    return np.clip(np.tensordot(norm, rgb, axes=([0], [0])), 0.0, 1.0)  # (y, x, 3)
