"""The plate map's geometry without Qt: square cells fitted into the widget, hit-testing, header
labels and a well's tooltip text. Which wells a key or a drag reaches is the core's
(``plate/navigation``); editing labels is ``plate/label_book``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...plate.wells import row_letters, well_id, well_position


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


# --- tooltips -----------------------------------------------------------------------------------
def well_tooltip(well: str, present: bool, label: str | None, n_sites: int,
                 prediction: dict | None = None, problem: str | None = None, conditions: dict | None = None,
                 suggestion: tuple[int, str] | None = None) -> str:
    """Plain-text tooltip of a well: id, label, why it is suggested for labelling (rank, reason), its
    conditions (compound, dose…), sites and, when a model ran, its prediction."""
    if not present:
        return f"{well}: no images"
    lines = [f"{well}  ·  {n_sites} site{'s' if n_sites != 1 else ''}",
             f"label: {label if label else 'unlabeled'}"]
    if suggestion is not None:
        lines.append(f"suggested #{suggestion[0]} to label next: {suggestion[1]}")
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
