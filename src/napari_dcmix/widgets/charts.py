"""Matplotlib charts inside docks that look like napari and never stall it.

A full Agg draw costs 20-150 ms of GUI-thread time (more while training loads the CPU), so live
updates only repaint what moves: axes, ticks and labels are drawn once into a cached background and
the curves/bars are blitted on top (a few ms). A full draw happens only when the layout changes
(new channels, limits outgrown, theme, resize). Nothing here needs Qt except the canvas itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..colors import channel_rgb
from ..training.matrix_figure import NOT_LEARNED_SHADE  # α of a model that learned nothing: grey, like the matrix

MAX_REDRAWS_PER_S = 4
BAR_TOP = 1.12  # α and normalised permutation importance are in [0, 1]: a fixed axis never re-layouts


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
    """A (figure, Qt canvas) pair sized for a dock (fixed margins: constrained layout doubles draw time)."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure
    from qtpy.QtWidgets import QSizePolicy

    fig = Figure(figsize=(4, height_px / 100), dpi=100)
    canvas = FigureCanvasQTAgg(fig)
    canvas.setMinimumHeight(height_px)
    canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    return fig, canvas


class Blitter:
    """Keep a background of everything static; repaint only ``animated`` artists on updates."""

    def __init__(self, canvas):
        self.canvas = canvas
        self.artists: list = []
        self._background = None
        canvas.mpl_connect("draw_event", self._on_draw)

    def full(self) -> None:
        """Layout changed: a full draw (deferred to the event loop) re-caches the background."""
        self._background = None
        self.canvas.draw_idle()

    def fast(self) -> None:
        """Only the animated artists changed."""
        if self._background is None:
            self.full()
            return
        self.canvas.restore_region(self._background)
        self._draw_artists()
        self.canvas.update()  # not blit(): blit repaints synchronously, update() coalesces with other paints

    def _on_draw(self, event) -> None:
        if event is not None and (event.canvas is not self.canvas or event.canvas.is_saving()):
            self._background = None  # savefig renders at another dpi: never reuse that as background
            return
        self._background = self.canvas.copy_from_bbox(self.canvas.figure.bbox)
        self._draw_artists()

    def _draw_artists(self) -> None:
        fig = self.canvas.figure
        for artist in self.artists:
            if artist.figure is fig:
                fig.draw_artist(artist)


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


# --- training curves --------------------------------------------------------------------------------
class CurvesChart:
    """Loss per step (line) and per epoch (dots) above train/validation accuracy per epoch."""

    def __init__(self, canvas, colors: ChartColors):
        fig = canvas.figure
        self.loss_ax, self.acc_ax = fig.subplots(2, 1, sharex=True)
        fig.subplots_adjust(left=0.15, right=0.97, top=0.96, bottom=0.15, hspace=0.12)
        self.blitter = Blitter(canvas)
        kw = dict(animated=True)
        self.step_line, = self.loss_ax.plot([], [], color="#7fb3ff", lw=1, **kw)
        self.epoch_dots, = self.loss_ax.plot([], [], "o", color="#7fb3ff", ms=3, **kw)
        self.train_line, = self.acc_ax.plot([], [], "o-", color="#2ecc40", ms=3, label="train", **kw)
        self.val_line, = self.acc_ax.plot([], [], "s-", color="#ffdc00", ms=3, label="validation", **kw)
        self.blitter.artists = [self.step_line, self.epoch_dots, self.train_line, self.val_line]
        self.loss_ax.set_ylabel("train loss", fontsize=8)
        self.acc_ax.set_ylabel("accuracy", fontsize=8)
        self.acc_ax.set_xlabel("held-out evaluation round", fontsize=8)
        self.acc_ax.set_ylim(0, 1.02)
        self.acc_ax.legend(loc="upper left", fontsize=7, ncols=2)
        self.reset(1)
        self.restyle(colors)

    def restyle(self, colors: ChartColors) -> None:
        style_axes(self.loss_ax.figure, (self.loss_ax, self.acc_ax), colors)
        self.blitter.full()

    def reset(self, epochs: int, loss_top: float = 1.0) -> None:
        """A new run: empty curves, x axis over all its epochs, loss axis up to ``loss_top`` (≈ the
        first loss, so the axes need no re-layout while the loss falls)."""
        for line in self.blitter.artists:
            line.set_data([], [])
        self.acc_ax.set_xlim(0, max(1, epochs))
        self.loss_ax.set_ylim(0, loss_top)
        self.blitter.full()

    def update(self, curves) -> None:
        self.step_line.set_data(curves.step_x, curves.step_loss)
        self.epoch_dots.set_data(curves.epochs, curves.epoch_loss)
        self.train_line.set_data(curves.epochs, curves.train_accuracy)
        self.val_line.set_data(curves.epochs, [v if math.isfinite(v) else math.nan for v in curves.val_accuracy])
        finite = [v for v in curves.step_loss + curves.epoch_loss if math.isfinite(v)]
        top = max(finite) if finite else 1.0
        low, high = self.loss_ax.get_ylim()
        last_x = max(curves.step_x[-1:] + curves.epochs[-1:] + [0])
        if top > high or top < 0.4 * high or last_x > self.acc_ax.get_xlim()[1]:
            self.loss_ax.set_ylim(0, top * 1.15 or 1.0)  # outgrown (or far too loose): re-layout once
            self.acc_ax.set_xlim(0, max(self.acc_ax.get_xlim()[1], math.ceil(last_x)))
            self.blitter.full()
        else:
            self.blitter.fast()


# --- importance bars --------------------------------------------------------------------------------
ALPHA_GROUP, PERMUTATION_GROUP = "α", "permutation"
GROUP_LABELS = {"dcmix": "α", "se-attention": "SE attention"}


@dataclass
class ChartData:
    """What the importance bar chart draws: one group of bars per measure, one bar per channel."""

    channels: list[str]
    colors: list[str]
    groups: dict[str, list[float]] = field(default_factory=dict)  # group name -> heights in channel order
    note: str = ""  # shown in the chart when there is nothing (or not everything) to draw
    muted: bool = False  # the model learned nothing: α bars are greyed, never drawn like an answer


def chart_data(snapshot, permutation: dict | None = None) -> ChartData:
    """Bars of an ImportanceSnapshot: α (if the model has it) and, beside them, normalised permutation
    importance; α of a model that learned nothing is greyed with a note."""
    if snapshot is None:
        return ChartData([], [], note="no model yet: train one or load one")
    channels = list(snapshot.channels)
    data = ChartData(channels, channel_rgb(channels))
    if snapshot.importance:
        data.groups[ALPHA_GROUP] = [float(snapshot.importance.get(c, math.nan)) for c in channels]
        if snapshot.learned is False:
            data.muted = True
            data.note = "NOT LEARNED: do not read these α"
    else:
        data.note = f"the {snapshot.kind or 'all-channels'} model has no α; use permutation importance"
    if permutation:
        normalized = permutation.get("normalized", {})
        data.groups[PERMUTATION_GROUP] = [float(normalized.get(c, math.nan)) for c in channels]
    return data


class ImportanceChart:
    """Grouped bars (α, permutation) per channel in its layer colour with values on them, or α history.

    Per-epoch α updates change bar heights and labels in place and blit; the axes are redrawn only
    when channels, groups or the mode change.
    """

    def __init__(self, canvas, colors: ChartColors):
        self.ax = canvas.figure.subplots()
        canvas.figure.subplots_adjust(left=0.13, right=0.97, top=0.95, bottom=0.14)
        self.blitter = Blitter(canvas)
        self.colors = colors
        self._layout = None
        self._bars: dict[str, list] = {}
        self._texts: dict[str, list] = {}

    def show(self, snapshot, permutation: dict | None = None) -> None:
        """Draw an ImportanceSnapshot's α (greyed if it learned nothing) beside permutation importance."""
        labels = {ALPHA_GROUP: GROUP_LABELS.get(getattr(snapshot, "kind", None), "α"),
                  PERMUTATION_GROUP: "permutation (normalised)"}
        self.show_bars(chart_data(snapshot, permutation), labels)

    def show_bars(self, data, labels: dict[str, str] | None = None) -> None:
        layout = ("bars", tuple(data.channels), tuple(data.groups), data.note, data.muted,
                  tuple(sorted((labels or {}).items())))
        if layout != self._layout:
            self._draw_bars(data, labels)
            self._layout = layout
            self.blitter.full()
            return
        for name, heights in data.groups.items():
            for patch, text, h in zip(self._bars[name], self._texts[name], heights):
                patch.set_height(h)
                text.set_position((patch.get_x() + patch.get_width() / 2, h if math.isfinite(h) else 0.0))
                text.set_text(f"{h:.2f}" if math.isfinite(h) else "")
        self.blitter.fast()

    def _draw_bars(self, data, labels) -> None:
        ax, colors = self.ax, self.colors
        ax.clear()
        self._bars, self._texts, self.blitter.artists = {}, {}, []
        width = 0.8 / max(1, len(data.groups))
        positions = list(range(len(data.channels)))
        for g, (name, heights) in enumerate(data.groups.items()):
            xs = [p - 0.4 + width * (g + 0.5) for p in positions]
            hatched = name == PERMUTATION_GROUP
            grey = data.muted and not hatched
            bars = ax.bar(xs, heights, width * 0.92, color=NOT_LEARNED_SHADE if grey else data.colors,
                          alpha=0.55 if hatched or grey else 1.0,
                          hatch="///" if hatched else None, edgecolor=colors.text if hatched else "none",
                          linewidth=0.0, label=(labels or {}).get(name, name))
            self._bars[name] = list(bars)
            self._texts[name] = []
            for patch, h in zip(bars, heights):
                patch.set_gid(name)  # lets tests and exports read each bar's group back from the artist
                patch.set_animated(True)
                text = ax.text(patch.get_x() + patch.get_width() / 2, h if math.isfinite(h) else 0.0,
                               f"{h:.2f}" if math.isfinite(h) else "", ha="center", va="bottom", fontsize=7,
                               color=colors.text, animated=True)
                self._texts[name].append(text)
                self.blitter.artists += [patch, text]
        ax.set_xticks(positions, data.channels)
        ax.set_xlim(-0.6, max(0, len(positions) - 1) + 0.6)
        ax.set_ylim(0, BAR_TOP)
        ax.set_ylabel("importance", fontsize=8)
        if len(data.groups) > 1:
            ax.legend(fontsize=7, loc="upper right")
        if data.note:  # above the bars when there are bars (not learned), else in the middle
            ax.text(0.5, 0.93 if data.groups else 0.55, data.note, transform=ax.transAxes, ha="center",
                    va="center", wrap=True, fontsize=8, color=colors.warning,
                    fontweight="bold" if data.muted else "normal")
        style_axes(ax.figure, (ax,), colors)

    def show_history(self, epochs: list[int], series: dict[str, list[float]], line_colors: list[str]) -> None:
        """α of each channel over the epochs, one line per channel in its layer colour."""
        ax, colors = self.ax, self.colors
        ax.clear()
        self._layout, self.blitter.artists = ("history",), []
        for (name, values), color in zip(series.items(), line_colors):
            ax.plot(epochs, values, "o-", ms=3, lw=1.5, color=color, label=name)
        if series:
            ax.legend(fontsize=7, loc="best")
            ax.set_xlabel("evaluation round", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no history yet: it grows with every evaluation round", transform=ax.transAxes,
                    ha="center", va="center", fontsize=8, color=colors.warning)
        ax.set_ylabel("α", fontsize=8)
        ax.set_ylim(0, 1.0)
        style_axes(ax.figure, (ax,), colors)
        self.blitter.full()

    def restyle(self, colors: ChartColors) -> None:
        self.colors, self._layout = colors, None  # next show_* redraws everything in the new colours


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
