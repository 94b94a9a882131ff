"""The Explain dock's phenotype × channel matrix: the heat map (themed, fitted to the dock, rows clickable)
and the list of its rows (not-learned rows greyed, the reason in the tooltip). It shows a matrix and
says which row was chosen; what a row means is the dock's."""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from ...training import explain_text as texts
from ...training.matrix_figure import NOT_LEARNED_SHADE, draw_matrix
from ..charts import make_canvas, theme_colors


def fit_to_dock(fig, matrix, colors) -> None:
    """The compact matrix (no colour bar, channels on top) in the napari theme's colours."""
    draw_matrix(fig, matrix, colors.text, compact=True)
    ax = fig.axes[0]
    ax.set_facecolor(colors.background)
    for spine in ax.spines.values():
        spine.set_color(colors.grid)


class MatrixView(QWidget):
    """The heat map and the row list of one PhenotypeMatrix; ``row_chosen(index)`` when a row is clicked."""

    row_chosen = Signal(int)

    def __init__(self, viewer):
        super().__init__()
        self.viewer = viewer
        self.matrix = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.figure, self.canvas = make_canvas(200)
        self.canvas.mpl_connect("button_press_event", self._on_canvas_click)
        self.canvas.mpl_connect("resize_event", lambda *_: self._relayout())
        self.canvas.setToolTip("click a row to see that phenotype's composite of the current site")
        layout.addWidget(self.canvas)
        self.row_list = QListWidget()
        self.row_list.setMaximumHeight(110)
        self.row_list.setWordWrap(True)
        self.row_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.row_list.currentRowChanged.connect(self.row_chosen.emit)
        layout.addWidget(self.row_list)

    def show(self, matrix) -> None:
        """Draw ``matrix`` (None: nothing yet) and list its rows, keeping the chosen row."""
        self.matrix = matrix
        current = self.row_list.currentRow()
        self.row_list.blockSignals(True)
        self.row_list.clear()
        for row in (matrix.rows if matrix is not None else []):
            item = QListWidgetItem(texts.row_text(row))
            item.setToolTip(texts.row_tooltip(row))
            if not row.learned:
                item.setForeground(QColor(NOT_LEARNED_SHADE))
            self.row_list.addItem(item)
        if matrix is not None and 0 <= current < len(matrix.rows):
            self.row_list.setCurrentRow(current)
        self.row_list.blockSignals(False)
        self.draw()

    def draw(self) -> None:
        """The matrix in the theme's colours, fitted to the dock (hidden before the first row)."""
        colors = theme_colors(self.viewer)
        shown = self.matrix is not None and bool(self.matrix.rows)
        for widget in (self.canvas, self.row_list):  # nothing to show before the first row
            widget.setVisible(shown)
        if not shown:
            self.figure.clear()
            return
        self.canvas.setMinimumHeight(70 + 46 * len(self.matrix.rows))
        fit_to_dock(self.figure, self.matrix, colors)
        self.figure.patch.set_facecolor(colors.background)
        self._relayout()

    def _relayout(self) -> None:
        """Fit labels to the canvas's current size (the dock resizes it after the first draw)."""
        if self.matrix is None or not self.figure.axes:
            return
        try:
            self.figure.tight_layout(pad=0.4)
        except ValueError:  # too small to lay out (dock collapsed): draw as is
            pass
        self.canvas.draw_idle()

    def row_at(self, ydata) -> int | None:
        """Index of the matrix row at data coordinate ``ydata`` of the heat map (None outside it)."""
        if self.matrix is None or ydata is None:
            return None
        index = int(round(ydata))
        return index if 0 <= index < len(self.matrix.rows) else None

    def _on_canvas_click(self, event) -> None:
        axes = self.figure.axes
        if not axes or event.inaxes is not axes[0]:
            return
        index = self.row_at(event.ydata)
        if index is not None:
            self.row_list.setCurrentRow(index)

