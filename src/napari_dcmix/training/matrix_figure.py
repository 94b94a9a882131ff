"""The phenotype x channel matrix as a figure (heat map with values) and as CSV, for CLI and docks.

Rows a model did not learn are greyed and say so: an α nobody should read is never drawn like one.
Drawing goes into a given matplotlib Figure, so the dock's themed canvas and the CLI's PNG share it.
"""

from __future__ import annotations

import csv
import io
import os

from .._io import atomic_write, atomic_write_bytes
from .explain import PhenotypeMatrix

NOT_LEARNED_SHADE = "#9a9a9a"


def row_label(row, compact: bool = False) -> str:
    v = row.verdict
    if compact:
        return f"{row.phenotype}\nacc {v.accuracy:.2f} · AUC {v.auc:.2f}"
    label = f"{row.phenotype}\nheld-out acc {v.accuracy:.2f}, AUC {v.auc:.2f}"
    return label + ("" if row.learned else "\nNOT LEARNED")


def draw_matrix(fig, matrix: PhenotypeMatrix, text_color: str = "black", compact: bool = False) -> None:
    """Heat map of mean α (annotated ± sd) on ``fig``. Not-learned rows are a grey band that says so,
    with no α values to misread. ``compact``: for a narrow dock (no colour bar, channels on top)."""
    fig.clear()
    ax = fig.add_subplot()
    if not matrix.rows:
        ax.axis("off")
        ax.text(0.5, 0.5, "no phenotype explained yet", ha="center", va="center", color=text_color)
        return
    size = 7 if compact else 8
    image = ax.imshow(matrix.values(), cmap="magma", vmin=0.0, vmax=1.0, aspect="auto")
    for i, row in enumerate(matrix.rows):
        if not row.learned:
            ax.add_patch(_grey_band(i, len(matrix.channels)))
            ax.text(len(matrix.channels) / 2 - 0.5, i, "NOT LEARNED" if compact else "not learned: do not read these α",
                    ha="center", va="center", fontsize=size, color="black", fontweight="bold")
            continue
        for j, channel in enumerate(matrix.channels):
            v, sd = row.importance[channel], row.spread[channel]
            text = f"{v:.2f}" + (f"\n±{sd:.2f}" if row.repeats > 1 else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=size, color="black" if v > 0.6 else "white")
    ax.tick_params(colors=text_color, labelsize=size)
    ax.set_xticks(range(len(matrix.channels)), matrix.channels)
    ax.set_yticks(range(len(matrix.rows)), [row_label(r, compact) for r in matrix.rows], fontsize=size)
    for tick, row in zip(ax.get_yticklabels(), matrix.rows):  # after tick_params, which would reset them
        tick.set_color(text_color if row.learned else NOT_LEARNED_SHADE)
    if compact:
        ax.xaxis.tick_top()
        ax.tick_params(axis="y", length=0)
        return
    ax.set_title(f"Channel importance α per phenotype (vs {matrix.reference})", color=text_color, fontsize=10)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("α (share of the blend)", color=text_color)
    bar.ax.tick_params(colors=text_color)


def _grey_band(i: int, n_columns: int):
    from matplotlib.patches import Rectangle

    return Rectangle((-0.5, i - 0.5), n_columns, 1.0, facecolor=NOT_LEARNED_SHADE, alpha=0.85, edgecolor="none")


def matrix_png(matrix: PhenotypeMatrix, dpi: int = 150) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.4 + 1.0 * len(matrix.channels), 1.2 + 0.75 * max(1, len(matrix.rows))), dpi=dpi)
    FigureCanvasAgg(fig)
    draw_matrix(fig, matrix)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_matrix(matrix: PhenotypeMatrix, csv_path: str | os.PathLike | None, png_path: str | os.PathLike | None) -> None:
    """Write the matrix as CSV and/or PNG, atomically (callers check the paths with the output guard)."""
    if csv_path is not None:
        rows = matrix.csv_rows()
        with atomic_write(csv_path, "w") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["phenotype"])
            writer.writeheader()
            writer.writerows(rows)
    if png_path is not None:
        atomic_write_bytes(png_path, matrix_png(matrix))


__all__ = ["draw_matrix", "matrix_png", "row_label", "save_matrix"]
