"""Publication-quality plate heat map of predictions (96/384/1536 wells), drawn with matplotlib's
object API on an Agg canvas: no pyplot global state, so docks, threads and the CLI can draw at once.

One well is one disc (a square on 1536-well plates); wells without a prediction are drawn as
empty outlines, so a missing well never looks like a low value.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Mapping

import numpy as np

from .._io import atomic_write_bytes
from ..colors import class_colors
from ..errors import DcmixError
from ..plate.wells import PlateFormat, well_position

#: "prediction" colours wells by their predicted class; a class name by that class's probability.
PREDICTION = "prediction"

_SIZES = {96: (7.2, 4.9), 384: (9.6, 6.1), 1536: (13.0, 8.4)}


def check_value(value: str, classes: list[str]) -> None:
    if value != PREDICTION and value not in classes:
        raise DcmixError(f"'{value}' is not a class of the model ({', '.join(classes)}); "
                         f"colour by '{PREDICTION}' or by one of these classes")


def plate_map_figure(well_probs: Mapping[str, np.ndarray], classes: list[str], fmt: PlateFormat, *,
                     value: str = PREDICTION, plate_id: str = "", model_name: str = "", dpi: int = 200):
    """A matplotlib Figure (Agg canvas) of ``well_probs`` (well id -> class probabilities)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    check_value(value, classes)
    fig = Figure(figsize=_SIZES.get(fmt.wells, _SIZES[384]), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if value == PREDICTION:
        palette = class_colors(classes)
        cmap = ListedColormap([palette[c] for c in classes])
        norm = BoundaryNorm(np.arange(len(classes) + 1) - 0.5, len(classes))
    else:
        cmap, norm = _probability_cmap(), Normalize(0.0, 1.0)
    index = classes.index(value) if value != PREDICTION else None

    radius = 0.42 if fmt.wells <= 384 else 0.46
    filled, values, empty = [], [], []
    for r in range(fmt.rows):
        for c in range(fmt.cols):
            empty.append(_well_patch(Circle, Rectangle, c, r, radius, fmt))
    for well, probs in well_probs.items():
        r, c = well_position(well)
        if r >= fmt.rows or c >= fmt.cols:
            continue
        probs = np.asarray(probs, float)
        filled.append(_well_patch(Circle, Rectangle, c, r, radius, fmt))
        values.append(float(np.argmax(probs)) if index is None else float(probs[index]))
    thin = 0.4 if fmt.wells >= 1536 else 0.7
    ax.add_collection(PatchCollection(empty, facecolor="#f4f4f4", edgecolor="#b8b8b8", linewidth=thin))
    if filled:
        wells = PatchCollection(filled, cmap=cmap, norm=norm, edgecolor="#606060", linewidth=thin)
        wells.set_array(np.asarray(values))
        ax.add_collection(wells)

    _axes_style(ax, fmt)
    mappable = ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(mappable, ax=ax, shrink=0.85, pad=0.02, aspect=25)
    if index is not None:
        bar.set_label(f"p({value})")
    if index is None:
        bar.set_ticks(range(len(classes)), labels=classes)
        bar.ax.invert_yaxis()  # the first class on top, in the order of the legend and the table
        bar.ax.tick_params(length=0)
    n_wells = sum(1 for w in well_probs if well_position(w)[0] < fmt.rows and well_position(w)[1] < fmt.cols)
    what = "predicted class" if index is None else f"probability of '{value}'"
    fig.suptitle(f"{plate_id or 'plate'} · {what}", x=0.01, ha="left", fontsize=12, fontweight="bold")
    ax.set_title(f"model: {model_name or 'unnamed'} · {n_wells} of {fmt.wells} wells predicted "
                 "(grey: no prediction) · napari-dcmix", loc="left", fontsize=8, color="#555555")
    return fig


def _probability_cmap():
    from matplotlib import colormaps

    return colormaps["viridis"]


def _well_patch(circle, rectangle, x, y, radius, fmt: PlateFormat):
    if fmt.wells >= 1536:
        return rectangle((x - radius, y - radius), 2 * radius, 2 * radius)
    return circle((x, y), radius)


def _axes_style(ax, fmt: PlateFormat) -> None:
    ax.set_xlim(-0.6, fmt.cols - 0.4)
    ax.set_ylim(fmt.rows - 0.4, -0.6)  # row A on top, as on the plate
    ax.set_aspect("equal")
    step = 1 if fmt.wells <= 384 else 2
    small = 9 if fmt.wells <= 96 else 7 if fmt.wells <= 384 else 6
    ax.set_xticks(range(0, fmt.cols, step), [str(c + 1) for c in range(0, fmt.cols, step)], fontsize=small)
    ax.set_yticks(range(0, fmt.rows, step), fmt.row_names()[::step], fontsize=small)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, facecolor="white", bbox_inches="tight", pad_inches=0.12)
    return buffer.getvalue()


def save_plate_map(path: str | os.PathLike, well_probs: Mapping[str, np.ndarray], classes: list[str],
                   fmt: PlateFormat, **kwargs) -> None:
    """Draw and write the PNG atomically (a crash never leaves half a figure behind)."""
    atomic_write_bytes(path, figure_png(plate_map_figure(well_probs, classes, fmt, **kwargs)))


def plate_map_paths(path: str | os.PathLike, plates: list[str]) -> list[Path]:
    """One PNG per plate: ``path`` itself for one plate, ``<stem>_<plate id>.png`` for several."""
    path = Path(path)
    if len(plates) <= 1:
        return [path]
    return [path.with_name(f"{path.stem}_{re.sub(r'[^A-Za-z0-9._-]+', '_', p).strip('_') or 'plate'}{path.suffix}")
            for p in plates]


def save_plate_maps(path: str | os.PathLike, plate, well_probs: Mapping[tuple[str, str], np.ndarray],
                    classes: list[str], **kwargs) -> list[Path]:
    """Plate maps of a Plate's (plate, well) -> probabilities, one file per plate; returns the paths."""
    written = []
    for plate_id, out in zip(plate.plates, plate_map_paths(path, plate.plates)):
        wells = {w: p for (pid, w), p in well_probs.items() if pid == plate_id}
        save_plate_map(out, wells, classes, plate.format, plate_id=plate_id or plate.name, **kwargs)
        written.append(out)
    return written
