"""Pure logic behind the plate browser (no Qt): grid geometry and hit-testing, well selection and
keyboard navigation, class colours, tooltips and where labels are saved (editing them is plate.label_book's).

Kept free of Qt so it is tested fast and exactly, and so the train/apply docks can reuse it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..._io import is_inside
from ...plate.labels import csv_columns  # noqa: F401 - one labels reader for CLI and docks
from ...plate.wells import row_letters, well_id, well_position

from ...colors import CLASS_PALETTE, class_colors  # noqa: F401 - shared with the figures


# --- geometry -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridGeometry:
    """Square cells fitted into a widget, with a row-letter band left and a column-number band on top.

    ``ox, oy`` is the top-left corner of well A01; headers sit just left of / above the wells.
    """

    rows: int
    cols: int
    ox: float
    oy: float
    cell: float
    left: float
    top: float

    @classmethod
    def fit(cls, rows: int, cols: int, width: float, height: float, left: float = 22, top: float = 16,
            margin: float = 2, max_cell: float = 44) -> "GridGeometry":
        avail_w = max(1.0, width - left - 2 * margin)
        avail_h = max(1.0, height - top - 2 * margin)
        cell = max(1.0, min(avail_w / cols, avail_h / rows, max_cell))
        ox = margin + left + (avail_w - cell * cols) / 2
        oy = margin + top
        return cls(rows, cols, ox, oy, cell, left, top)

    def cell_rect(self, row: int, col: int) -> tuple[float, float, float, float]:
        """(x, y, w, h) of the cell of 0-based ``row``, ``col``."""
        return self.ox + col * self.cell, self.oy + row * self.cell, self.cell, self.cell

    def well_rect(self, well: str) -> tuple[float, float, float, float]:
        return self.cell_rect(*well_position(well))

    def well_center(self, well: str) -> tuple[float, float]:
        x, y, w, h = self.well_rect(well)
        return x + w / 2, y + h / 2

    def cell_at(self, x: float, y: float, clamp: bool = False) -> tuple[int, int] | None:
        """0-based (row, col) under a point; ``clamp`` snaps points outside to the nearest cell."""
        col = math.floor((x - self.ox) / self.cell)
        row = math.floor((y - self.oy) / self.cell)
        if clamp:
            return min(max(row, 0), self.rows - 1), min(max(col, 0), self.cols - 1)
        if 0 <= row < self.rows and 0 <= col < self.cols:
            return row, col
        return None

    def hit(self, x: float, y: float) -> tuple:
        """What a click at (x, y) means: ("well", id) | ("row", r) | ("col", c) | ("all",) | ("none",)."""
        cell = self.cell_at(x, y)
        if cell is not None:
            return ("well", well_id(cell[0], cell[1] + 1))
        in_rows = self.oy <= y < self.oy + self.rows * self.cell
        in_cols = self.ox <= x < self.ox + self.cols * self.cell
        left_band = self.ox - self.left <= x < self.ox
        top_band = self.oy - self.top <= y < self.oy
        if left_band and in_rows:
            return ("row", int((y - self.oy) // self.cell))
        if top_band and in_cols:
            return ("col", int((x - self.ox) // self.cell))
        if left_band and top_band:
            return ("all",)
        return ("none",)


def label_step(n: int, cell: float, text_size: float) -> int:
    """Show every k-th header label so labels of ``text_size`` pixels never overlap in ``cell`` px."""
    for k in (1, 2, 3, 4, 6, 8, 12, 16):
        if k * cell >= text_size or k >= n:
            return k
    return 16


def header_labels(rows: int, cols: int) -> tuple[list[str], list[str]]:
    return [row_letters(r) for r in range(rows)], [str(c + 1) for c in range(cols)]


# --- selection and navigation ------------------------------------------------------------------
def rect_wells(a: str, b: str, present: Iterable[str]) -> list[str]:
    """Present wells in the rectangle spanned by wells ``a`` and ``b`` (shift-click, drag), plate order."""
    (r0, c0), (r1, c1) = well_position(a), well_position(b)
    rlo, rhi, clo, chi = min(r0, r1), max(r0, r1), min(c0, c1), max(c0, c1)
    inside = [w for w in present if rlo <= well_position(w)[0] <= rhi and clo <= well_position(w)[1] <= chi]
    return sorted(inside, key=well_position)


def row_wells(row: int, present: Iterable[str]) -> list[str]:
    return sorted((w for w in present if well_position(w)[0] == row), key=well_position)


def col_wells(col: int, present: Iterable[str]) -> list[str]:
    return sorted((w for w in present if well_position(w)[1] == col), key=well_position)


def step_well(current: str | None, direction: str, present: Iterable[str]) -> str | None:
    """The well reached from ``current`` by a key: "next"/"prev" in reading order (wrapping rows),
    "up"/"down" to the nearest present well in the same column. Stays put at the plate's edge."""
    order = sorted(present, key=well_position)
    if not order:
        return None
    if current is None or current not in order:
        return order[0] if direction in ("next", "down") else order[-1]
    if direction in ("next", "prev"):
        i = order.index(current) + (1 if direction == "next" else -1)
        return order[min(max(i, 0), len(order) - 1)]
    row, col = well_position(current)
    same_col = [w for w in order if well_position(w)[1] == col]
    if direction == "down":
        below = [w for w in same_col if well_position(w)[0] > row]
        return below[0] if below else current
    above = [w for w in same_col if well_position(w)[0] < row]
    return above[-1] if above else current


# --- tooltips -----------------------------------------------------------------------------------
def well_tooltip(well: str, present: bool, label: str | None, n_sites: int,
                 prediction: dict | None = None, problem: str | None = None, conditions: dict | None = None) -> str:
    """Plain-text tooltip of a well: id, label, its conditions (compound, dose…), sites and, when a
    model ran, its prediction."""
    if not present:
        return f"{well}: no images"
    lines = [f"{well}  ·  {n_sites} site{'s' if n_sites != 1 else ''}",
             f"label: {label if label else 'unlabeled'}"]
    lines += [f"{column}: {value}" for column, value in (conditions or {}).items() if value]
    if prediction:
        conf = float(prediction.get("confidence", 0.0))
        lines.append(f"prediction: {prediction.get('prediction', '?')} ({conf:.0%} confident)")
        probs = prediction.get("probabilities") or {}
        for name, p in sorted(probs.items(), key=lambda kv: -kv[1]):
            lines.append(f"   {name}: {float(p):.0%}")
    if problem:
        lines.append(f"could not be read: {problem}")
    return "\n".join(lines)


# --- label files ----------------------------------------------------------------------------
def default_labels_path(plate_root: Path, loaded_csv: Path | None = None, home: Path | None = None) -> Path:
    """Where "Save labels" proposes to write: beside the CSV the labels came from, else
    ~/napari-dcmix/; never inside the plate folder (images stay untouched) and never over the
    loaded CSV itself (it may hold columns the plugin does not write)."""
    plate_root = Path(plate_root)
    folder = Path(home or Path.home()) / "napari-dcmix"
    if loaded_csv is not None and not is_inside(Path(loaded_csv).parent, plate_root):
        folder = Path(loaded_csv).parent
    name = f"{plate_root.name or 'plate'}_labels.csv"
    path = folder / name
    if loaded_csv is not None and path.resolve() == Path(loaded_csv).resolve():
        path = folder / f"{plate_root.name or 'plate'}_labels_edited.csv"
    return path


def display_classes(classes: Iterable[str], predictions: dict | None = None) -> list[str]:
    """The class list in display (and colour) order: the user's classes, then any class a model
    predicts that the user has not listed."""
    out = list(dict.fromkeys(classes))
    for pred in (predictions or {}).values():
        name = pred.get("prediction")
        if name and name not in out:
            out.append(name)
    return out
