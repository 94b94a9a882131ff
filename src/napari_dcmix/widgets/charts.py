"""The base of every chart in a dock: napari's theme colours, a canvas, blitting, one throttle.

Matplotlib charts inside docks must look like napari and never stall it.

A full Agg draw costs 20-150 ms of GUI-thread time (more while training loads the CPU), so live
updates only repaint what moves: axes, ticks and labels are drawn once into a cached background and
the curves/bars are blitted on top (a few ms). A full draw happens only when the layout changes
(new channels, limits outgrown, theme, resize). Nothing here needs Qt except the canvas itself.
"""

from __future__ import annotations

from dataclasses import dataclass



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


def run_progress_bar(steps: int = 1000):
    """A long run's thin progress bar (0..``steps``, hidden while idle), in the dock itself: napari's own
    progress shows an animated activity spinner that recomposes the whole window at every frame, a CPU
    core under software OpenGL (README, demo)."""
    from qtpy.QtWidgets import QProgressBar

    bar = QProgressBar()
    bar.setRange(0, steps)
    bar.setTextVisible(False)
    bar.setMaximumHeight(8)
    bar.setVisible(False)
    return bar


def add_run_controls(layout, text: str, tooltip: str, on_click, idle: str, steps: int = 1000):
    """A long run's start/stop button, its thin progress bar (0..``steps``, hidden while idle) and its
    status line, added to ``layout``; returns (button, progress bar, status label)."""
    from qtpy.QtWidgets import QLabel, QPushButton

    button = QPushButton(text)
    button.setToolTip(tooltip)
    button.clicked.connect(on_click)
    layout.addWidget(button)
    bar = run_progress_bar(steps)
    layout.addWidget(bar)
    status = QLabel(idle)
    status.setWordWrap(True)
    layout.addWidget(status)
    return button, bar, status
