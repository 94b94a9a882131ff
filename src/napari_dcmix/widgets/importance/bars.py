"""The α bar chart: the one place a snapshot's α becomes bars (beside permutation importance), or
α history lines; greyed with a note when the model learned nothing. Live rounds change the bars in
place and blit (see ``widgets/charts.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...colors import channel_rgb
from ...training.matrix_figure import NOT_LEARNED_SHADE  # α of a model that learned nothing: grey, like the matrix
from ..charts import Blitter, ChartColors, style_axes

BAR_TOP = 1.12  # α and normalised permutation importance are in [0, 1]: a fixed axis never re-layouts
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

    def show_history(self, snapshot) -> None:
        """α of each channel over the evaluation rounds, one line per channel in its layer colour."""
        epochs, series = snapshot.history_series() if snapshot is not None else ([], {})
        line_colors = channel_rgb(list(series))
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
