"""A gallery of the k most confident sites per predicted class (CellProfiler Analyst's "fetch top
k"): the quickest way to see what a model learned, and to spot a class that learned an artefact.

Sites are drawn as the plate browser draws them (channel colours, plate statistics, additive), so
the montage looks like napari. ``montage_image`` gives the RGB array (a napari layer); ``save_montage``
adds row and tile captions with matplotlib (Agg) and writes the PNG atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .._io import atomic_write_bytes
from ..colors import channel_rgb
from ..errors import DcmixError, SourceUnavailable
from ..plate import Plate, SiteKey
from ..plate.stats import ChannelStats
from .plate_map import figure_png
from .tint import tint


@dataclass(frozen=True)
class Pick:
    key: SiteKey
    probability: float


def top_sites(site_probs: Mapping[SiteKey, np.ndarray], classes: list[str], k: int) -> dict[str, list[Pick]]:
    """Per class, up to ``k`` sites predicted as that class, most probable first (ties: plate order)."""
    if k < 1:
        raise DcmixError(f"the montage needs at least one site per class, not {k}; give k ≥ 1")
    picks: dict[str, list[Pick]] = {c: [] for c in classes}
    for key, probs in site_probs.items():
        best = int(np.argmax(probs))
        picks[classes[best]].append(Pick(SiteKey(*key), float(probs[best])))
    return {c: sorted(p, key=lambda pick: (-pick.probability, pick.key))[:k] for c, p in picks.items()}


def composite(site: np.ndarray, stats: ChannelStats, colours: list[str], tile: int) -> np.ndarray:
    """(C, Y, X) -> (tile, tile, 3) float in [0, 1]: centre square, block-averaged to about ``tile``."""
    c, h, w = site.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    square = site[:, y0:y0 + side, x0:x0 + side].astype(np.float32)
    f = max(1, side // tile)
    n = side // f
    small = square[:, : n * f, : n * f].reshape(c, n, f, n, f).mean(axis=(2, 4))
    rgb = tint(small, stats.low, stats.high, colours)
    if n != tile:  # nearest-neighbour to the exact tile size, so tiles line up in the grid
        idx = (np.arange(tile) * n // tile).clip(0, n - 1)
        rgb = rgb[idx][:, idx]
    return rgb


def montage_image(plate: Plate, picks: dict[str, list[Pick]], k: int, tile: int = 128, gap: int = 6,
                  stats: ChannelStats | None = None) -> tuple[np.ndarray, list[str]]:
    """(rows·tile, k·tile, 3) uint8: one row per class, its best sites left to right; black where a
    class has fewer than k sites. Returns (image, problems) — unreadable sites are left black."""
    stats = stats or plate.channel_stats()
    colours = channel_rgb(plate.channels, plate.channel_colors)
    classes = list(picks)
    out = np.ones((len(classes) * (tile + gap) - gap, k * (tile + gap) - gap, 3), np.float32)  # white gaps
    problems = []
    for r, cls in enumerate(classes):
        for i in range(k):  # empty slots dark grey: a class with fewer sites than k
            out[r * (tile + gap):r * (tile + gap) + tile, i * (tile + gap):i * (tile + gap) + tile] = 0.15
        for i, pick in enumerate(picks[cls][:k]):
            try:
                rgb = composite(plate.read_site(pick.key), stats, colours, tile)
            except SourceUnavailable:
                raise  # the storage stopped answering: the montage cannot be made now
            except DcmixError as err:
                problems.append(str(err))
                continue
            y, x = r * (tile + gap), i * (tile + gap)
            out[y:y + tile, x:x + tile] = rgb
    return (out * 255.0 + 0.5).astype(np.uint8), problems


def montage_figure(image: np.ndarray, picks: dict[str, list[Pick]], k: int, tile: int, gap: int = 6, *,
                   plate_id: str = "", model_name: str = "", dpi: int = 150):
    """The montage with class names per row and ``well s<site> · p`` under each tile."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = len(picks)
    scale = max(1.0, image.shape[1] / 1400)  # inches per 100 px, so wide montages stay printable
    width, height = image.shape[1] / 100 / scale + 1.8, image.shape[0] / 100 / scale + 0.7
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(image, interpolation="antialiased")
    ax.set_xticks([])
    ax.set_yticks([r * (tile + gap) + tile / 2 for r in range(rows)], list(picks), fontsize=10)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for r, cls in enumerate(picks):
        for i, pick in enumerate(picks[cls][:k]):
            ax.text(i * (tile + gap) + 3, r * (tile + gap) + tile - 4, f"{pick.key.well} s{pick.key.site} · "
                    f"{pick.probability:.2f}", color="white", fontsize=6.5, va="bottom",
                    bbox={"facecolor": "black", "alpha": 0.55, "pad": 1.2, "edgecolor": "none"})
        if not picks[cls]:
            ax.text(tile / 2, r * (tile + gap) + tile / 2, "none\npredicted", color="#bbbbbb",
                    fontsize=8, va="center", ha="center")
    fig.suptitle(f"{plate_id or 'plate'} · {k} most confident sites per predicted class", x=0.01, ha="left",
                 fontsize=11, fontweight="bold")
    ax.set_title(f"model: {model_name or 'unnamed'} · caption: well, site, p(class) · napari-dcmix", loc="left",
                 fontsize=7.5, color="#555555")
    return fig


def save_montage(path: str | os.PathLike, plate: Plate, site_probs: Mapping[SiteKey, np.ndarray],
                 classes: list[str], k: int = 6, tile: int = 128, *, model_name: str = "",
                 stats: ChannelStats | None = None) -> list[str]:
    """Pick, draw and write the montage PNG atomically; returns the problems (unreadable sites)."""
    picks = top_sites(site_probs, classes, k)
    first = next((p.key for ps in picks.values() for p in ps), None)
    if first is not None:  # never enlarge small sites: blocky tiles hide the phenotype
        tile = max(16, min(tile, *plate.read_site(first).shape[1:]))
    image, problems = montage_image(plate, picks, k, tile, stats=stats)
    fig = montage_figure(image, picks, k, tile, plate_id=plate.name, model_name=model_name)
    atomic_write_bytes(path, figure_png(fig))
    return problems
