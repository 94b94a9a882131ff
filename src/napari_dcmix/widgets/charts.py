"""Matplotlib charts inside docks that look like napari: theme colours, throttled redraws, and the
drawing of the training curves and the importance bars (pure matplotlib: testable without Qt).

Redraws are throttled (at most ``MAX_REDRAWS_PER_S``) because an Agg draw costs tens of ms on the GUI
thread and training yields far more events than a person can see; drawing on each would stall napari.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_REDRAWS_PER_S = 4


@dataclass(frozen=True)
class ChartColors:
    background: str = "#23242b"
    text: str = "#f0f1f2"
    grid: str = "#565f6c"
    warning: str = "#e3b617"


def theme_colors(viewer) -> ChartColors:
    """Chart colours from the viewer's napari theme (dark defaults if the theme cannot be read)."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return ChartColors(theme.background.as_hex(), theme.text.as_hex(), theme.secondary.as_hex(),
                           theme.warning.as_hex())
    except Exception:  # noqa: BLE001 - a custom or missing theme must not break a chart
        return ChartColors()


def style_axes(fig, axes, colors: ChartColors) -> None:
    """Paint figure and axes in theme colours (call after every ``ax.clear()``)."""
    fig.patch.set_facecolor(colors.background)
    for ax in axes:
        ax.set_facecolor(colors.background)
        for spine in ax.spines.values():
            spine.set_color(colors.grid)
        ax.tick_params(colors=colors.text, labelsize=8)
        ax.xaxis.label.set_color(colors.text)
        ax.yaxis.label.set_color(colors.text)
        ax.title.set_color(colors.text)
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor(colors.background)
            legend.get_frame().set_edgecolor(colors.grid)
            for text in legend.get_texts():
                text.set_color(colors.text)


def make_canvas(height_px: int = 220):
    """A (figure, Qt canvas) pair sized for a dock."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure
    from qtpy.QtWidgets import QSizePolicy

    fig = Figure(figsize=(4, height_px / 100), dpi=100, layout="constrained")
    canvas = FigureCanvasQTAgg(fig)
    canvas.setMinimumHeight(height_px)
    canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    return fig, canvas


class ThrottledRedraw:
    """Call ``draw`` at most ``MAX_REDRAWS_PER_S`` times a second, and once more after the last request."""

    def __init__(self, parent, draw, max_per_s: int = MAX_REDRAWS_PER_S):
        from qtpy.QtCore import QTimer

        self._draw = draw
        self._timer = QTimer(parent)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(1000 / max_per_s))
        self._timer.timeout.connect(self._fire)
        self._pending = False

    def request(self) -> None:
        if self._timer.isActive():
            self._pending = True
            return
        self._draw()
        self._pending = False
        self._timer.start()

    def flush(self) -> None:
        """Draw now (end of training, tests)."""
        self._timer.stop()
        self._pending = False
        self._draw()

    def _fire(self) -> None:
        if self._pending:
            self._pending = False
            self._draw()
            self._timer.start()


# --- what the docks draw ----------------------------------------------------------------------------
def draw_training_curves(loss_ax, acc_ax, curves, colors: ChartColors) -> None:
    """Loss per step (line) and per epoch (dots) above train/validation accuracy per epoch."""
    fig = loss_ax.figure
    for ax in (loss_ax, acc_ax):
        ax.clear()
    loss_ax.plot(curves.step_x, curves.step_loss, color="#7fb3ff", lw=1)
    if curves.epochs:
        loss_ax.plot(curves.epochs, curves.epoch_loss, "o", color="#7fb3ff", ms=3)
        acc_ax.plot(curves.epochs, curves.train_accuracy, "o-", color="#2ecc40", ms=3, label="train")
        if any(math.isfinite(v) for v in curves.val_accuracy):
            acc_ax.plot(curves.epochs, curves.val_accuracy, "s-", color="#ffdc00", ms=3, label="validation")
        acc_ax.legend(loc="lower right", fontsize=7)
    loss_ax.set_ylabel("train loss", fontsize=8)
    acc_ax.set_ylabel("accuracy", fontsize=8)
    acc_ax.set_ylim(0, 1.02)
    acc_ax.set_xlabel("epoch", fontsize=8)
    style_axes(fig, (loss_ax, acc_ax), colors)


def draw_importance_bars(ax, data, colors: ChartColors, labels: dict[str, str] | None = None) -> None:
    """Grouped bars: one group per measure (α, permutation), one bar per channel in its layer colour,
    the value written on each bar. ``labels`` renames groups in the legend."""
    from .importance_logic import PERMUTATION_GROUP

    ax.clear()
    n_groups = max(1, len(data.groups))
    width = 0.8 / n_groups
    positions = list(range(len(data.channels)))
    for g, (name, heights) in enumerate(data.groups.items()):
        xs = [p - 0.4 + width * (g + 0.5) for p in positions]
        hatched = name == PERMUTATION_GROUP
        bars = ax.bar(xs, heights, width * 0.92, color=data.colors, alpha=0.55 if hatched else 1.0,
                      hatch="///" if hatched else None, edgecolor=colors.text if hatched else "none",
                      linewidth=0.0, label=(labels or {}).get(name, name))
        for patch in bars:
            patch.set_gid(name)  # lets tests and exports read each bar's group back from the artist
        ax.bar_label(bars, fmt="%.2f", fontsize=7, color=colors.text, padding=1)
    ax.set_xticks(positions, data.channels)
    top = max([h for heights in data.groups.values() for h in heights if math.isfinite(h)] + [0.0])
    ax.set_ylim(0, max(0.1, top * 1.18))
    ax.set_ylabel("importance", fontsize=8)
    if len(data.groups) > 1:
        ax.legend(fontsize=7, loc="upper right")
    if data.note:
        ax.text(0.5, 0.55, data.note, transform=ax.transAxes, ha="center", va="center", wrap=True,
                fontsize=8, color=colors.warning)
    style_axes(ax.figure, (ax,), colors)


def draw_importance_history(ax, epochs: list[int], series: dict[str, list[float]], line_colors: list[str],
                            colors: ChartColors) -> None:
    """α of each channel over the epochs, one line per channel in its layer colour."""
    ax.clear()
    for (name, values), color in zip(series.items(), line_colors):
        ax.plot(epochs, values, "o-", ms=3, lw=1.5, color=color, label=name)
    if series:
        ax.legend(fontsize=7, loc="best")
        ax.set_xlabel("epoch", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no history yet: it grows with every training epoch", transform=ax.transAxes,
                ha="center", va="center", fontsize=8, color=colors.warning)
    ax.set_ylabel("α", fontsize=8)
    ax.set_ylim(0, 1.0)
    style_axes(ax.figure, (ax,), colors)


def bar_heights(ax, group: str) -> dict[str, float]:
    """{channel: height} of one bar group, read back from the drawn artists and tick labels."""
    ticks = list(ax.get_xticks())
    names = [t.get_text() for t in ax.get_xticklabels()]
    found: dict[str, float] = {}
    for patch in ax.patches:
        if patch.get_gid() != group:
            continue
        centre = patch.get_x() + patch.get_width() / 2
        nearest = min(range(len(ticks)), key=lambda i: abs(ticks[i] - centre))
        found[names[nearest]] = float(patch.get_height())
    return found
