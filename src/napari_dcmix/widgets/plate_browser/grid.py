"""The plate map: one painted widget (not 1536 buttons) that stays fast and legible from 96 to 1536
wells. It only draws and reports clicks; the dock decides what a click does.

Mouse: click shows a well, shift-click selects a rectangle from the last clicked well, ctrl-click
toggles, dragging selects a rectangle, a row letter / column number selects the row / column.
Keys (grid focused): arrows move between wells, 1-9 assign class n, 0/Delete unlabel, Esc clears.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QPoint, QPointF, QRectF, QSize, Qt, Signal
from qtpy.QtGui import QColor, QFontMetrics, QImage, QPainter, QPalette, QPen
from qtpy.QtWidgets import QSizePolicy, QToolTip, QWidget

from ...plate.wells import well_id
from ...plate.navigation import col_wells, rect_wells, row_wells, step_well
from .grid_geometry import GridGeometry, header_labels, label_step, well_tooltip

NEUTRAL = QColor("#5b616b")       # a well with images but no label
CURRENT = QColor("#ffd400")       # the well shown in napari
PROBLEM = QColor("#ff4136")
SUGGESTED = QColor("#00e5ff")     # wells suggested for labelling: cyan on a dark edge, seen on every class colour
GRID_HINT = "click: view · shift/ctrl-click, drag: select · 1-9: assign"
GRID_HELP = ("Click a well to show it in napari. Shift-click selects a rectangle from the last clicked well, "
             "ctrl-click adds or removes one well, dragging selects a rectangle, a row letter or column number "
             "selects the row or column.\nWith the plate map focused: arrow keys move between wells, 1-9 assign "
             "class 1-9, 0 or Delete unlabel, Esc clears the selection.")
_ARROWS = {Qt.Key.Key_Right: "next", Qt.Key.Key_Left: "prev", Qt.Key.Key_Down: "down", Qt.Key.Key_Up: "up"}
_OWN_KEYS = set(_ARROWS) | {Qt.Key.Key_Escape, Qt.Key.Key_Delete, Qt.Key.Key_Backspace, Qt.Key.Key_Space,
                            Qt.Key.Key_Return, Qt.Key.Key_Enter} | {Qt.Key(Qt.Key.Key_0.value + i) for i in range(10)}


class PlateGrid(QWidget):
    """Painted plate map of one plate id; state is set by the owner, user intent goes out as signals."""

    well_clicked = Signal(str, str)      # plate id, well: show this well
    selection_changed = Signal(list)     # selected wells (present ones only), plate order
    assign_requested = Signal(int)       # digit key n: assign class n-1 to the selection
    unlabel_requested = Signal()

    LEFT, TOP = 24, 16

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.plate_id, self.rows, self.cols = "", 8, 12
        self.sites: dict[str, int] = {}           # present well -> number of sites
        self.labels: dict[str, str] = {}          # well -> class
        self.colors: dict[str, QColor] = {}       # class -> colour
        self.predictions: dict[str, dict] = {}    # well -> {prediction, confidence, probabilities}
        self.conditions: dict[str, dict] = {}     # well -> {compound, dose, …} from the condition table
        self.color_mode = "labels"
        self.current: str | None = None
        self.selection: set[str] = set()
        self.anchor: str | None = None
        self.thumbs: dict[str, QImage] = {}
        self.show_thumbs = True
        self.problems: dict[str, str] = {}
        self.suggestions: dict[str, tuple[int, str]] = {}  # well -> (rank, reason): outlined, reason on hover
        self._press = None
        self._drag: tuple[str, str] | None = None
        self._hover: str | None = None

    # --- state from the owner ---------------------------------------------------------------
    def set_layout(self, plate_id: str, rows: int, cols: int, sites: dict[str, int]) -> None:
        self.plate_id, self.rows, self.cols, self.sites = plate_id, rows, cols, dict(sites)
        self.current, self.anchor, self.selection = None, None, set()
        self.thumbs, self.problems = {}, {}
        self.updateGeometry()
        self.update()

    def set_labels(self, labels: dict[str, str], colors: dict[str, str]) -> None:
        self.labels = dict(labels)
        self.colors = {k: QColor(v) for k, v in colors.items()}
        self.update()

    def set_conditions(self, conditions: dict[str, dict]) -> None:
        """Well -> {compound, dose, …}: shown in the tooltips."""
        self.conditions = dict(conditions)

    def set_predictions(self, predictions: dict[str, dict]) -> None:
        self.predictions = dict(predictions)
        self.update()

    def set_suggestions(self, suggestions: dict[str, tuple[int, str]]) -> None:
        """Well -> (rank, reason) of the wells suggested for labelling on this plate (outlined)."""
        self.suggestions = dict(suggestions)
        self.update()

    def set_color_mode(self, mode: str) -> None:
        self.color_mode = mode
        self.update()

    def set_current(self, well: str | None) -> None:
        for old_or_new in (self.current, well):
            if old_or_new:
                self.update_well(old_or_new)
        self.current = well

    def set_thumbnail(self, well: str, image: QImage | None, problem: str | None = None) -> None:
        if image is not None:
            self.thumbs[well] = image
        if problem:
            self.problems[well] = problem
        self.update_well(well)

    def update_well(self, well: str) -> None:
        """Repaint one cell only: a 1536-well sweep must not repaint the whole map per thumbnail."""
        x, y, w, h = self.grid_geometry().well_rect(well)
        self.update(QRectF(x - 3, y - 3, w + 6, h + 6).toAlignedRect())

    def set_problem(self, well: str, problem: str | None) -> None:
        if problem:
            self.problems[well] = problem
        else:
            self.problems.pop(well, None)
        self.update()

    def set_thumbnails_visible(self, on: bool) -> None:
        self.show_thumbs = on
        self.update()

    def set_selection(self, wells, add: bool = False) -> None:
        wells = {w for w in wells if w in self.sites}
        new = (self.selection | wells) if add else wells
        if new != self.selection:
            self.selection = new
            self.update()
        self.selection_changed.emit(self.selected())

    def selected(self) -> list[str]:
        return rect_wells("A01", well_id(self.rows - 1, self.cols), self.selection)

    # --- geometry -----------------------------------------------------------------------------
    def grid_geometry(self) -> GridGeometry:
        return GridGeometry.fit(self.rows, self.cols, self.width(), self.height(), self.LEFT, self.TOP)

    def cell_center(self, well: str) -> QPoint:
        """Pixel centre of ``well`` in widget coordinates (for tests and scripted clicks)."""
        x, y = self.grid_geometry().well_center(well)
        return QPoint(int(x), int(y))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        cell = min((width - self.LEFT - 4) / self.cols, 44)
        return int(self.TOP + 4 + self.rows * cell + 1)

    def sizeHint(self) -> QSize:
        return QSize(360, self.heightForWidth(360))

    def minimumSizeHint(self) -> QSize:
        cell = 14 if self.cols <= 12 else 10 if self.cols <= 24 else 6
        return QSize(self.LEFT + 4 + self.cols * cell, self.TOP + 4 + self.rows * cell)

    # --- painting -----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        g = self.grid_geometry()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        dirty = event.rect()
        if dirty.left() < g.ox or dirty.top() < g.oy:
            self._paint_headers(p, g)
        pad = max(0.5, g.cell * 0.07)
        r0, c0 = g.cell_at(dirty.left(), dirty.top(), clamp=True)
        r1, c1 = g.cell_at(dirty.right(), dirty.bottom(), clamp=True)
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                x, y, w, h = g.cell_rect(r, c)
                self._paint_well(p, well_id(r, c + 1), QRectF(x + pad, y + pad, w - 2 * pad, h - 2 * pad), g.cell)
        if self._drag:
            (x0, y0, _, _), (x1, y1, _, _) = g.well_rect(self._drag[0]), g.well_rect(self._drag[1])
            rect = QRectF(QPointF(min(x0, x1), min(y0, y1)), QPointF(max(x0, x1) + g.cell, max(y0, y1) + g.cell))
            p.setPen(QPen(QColor(255, 255, 255, 220), 1.5, Qt.PenStyle.DashLine))
            p.setBrush(QColor(255, 255, 255, 40))
            p.drawRect(rect)
        p.end()

    def _paint_headers(self, p: QPainter, g: GridGeometry) -> None:
        font = self.font()
        font.setPixelSize(int(max(8, min(11, g.cell * 0.75))))
        p.setFont(font)
        fm = QFontMetrics(font)
        p.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        row_names, col_names = header_labels(self.rows, self.cols)
        no_clip = int(Qt.TextFlag.TextDontClip)  # a 1536-well row is shorter than its letters
        krow = label_step(self.rows, g.cell, fm.height())
        kcol = label_step(self.cols, g.cell, fm.horizontalAdvance("48") + 3)
        for r in range(0, self.rows, krow):
            rect = QRectF(g.ox - g.left, g.oy + r * g.cell, g.left - 4, g.cell)
            p.drawText(rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) | no_clip, row_names[r])
        for c in range(0, self.cols, kcol):
            rect = QRectF(g.ox + c * g.cell - g.cell, g.oy - g.top, 3 * g.cell, g.top - 1)
            p.drawText(rect, int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom) | no_clip, col_names[c])

    def _well_fill(self, well: str) -> tuple[QColor, bool]:
        """Fill colour, and whether it carries information (a label or a prediction)."""
        if self.color_mode == "predictions":
            pred = self.predictions.get(well)
            if pred and pred.get("prediction") in self.colors:
                conf = min(max(float(pred.get("confidence", 0.0)), 0.0), 1.0)
                base, top = NEUTRAL, self.colors[pred["prediction"]]
                a = 0.25 + 0.75 * conf
                mixed = (a * t + (1 - a) * b for t, b in zip(top.getRgbF()[:3], base.getRgbF()[:3]))
                return QColor.fromRgbF(*mixed), True
            return NEUTRAL, False
        label = self.labels.get(well)
        if label and label in self.colors:
            return self.colors[label], True
        return NEUTRAL, False

    def _paint_well(self, p: QPainter, well: str, rect: QRectF, cell: float) -> None:
        radius = cell * 0.18
        if well not in self.sites:  # no images: outline only
            outline = QColor(self.palette().color(QPalette.ColorRole.WindowText))
            outline.setAlpha(70)
            p.setPen(QPen(outline, 1))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect, radius, radius)
            return
        fill, informative = self._well_fill(well)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(fill)
        p.drawRoundedRect(rect, radius, radius)
        thumb = self.thumbs.get(well) if self.show_thumbs else None
        if thumb is not None and not thumb.isNull():
            ring = max(1.5, cell * 0.13) if informative else max(0.5, cell * 0.04)
            inner = rect.adjusted(ring, ring, -ring, -ring)
            scale = min(inner.width() / thumb.width(), inner.height() / thumb.height())
            tw, th = thumb.width() * scale, thumb.height() * scale
            target = QRectF(inner.center().x() - tw / 2, inner.center().y() - th / 2, tw, th)
            p.drawImage(target, thumb)
        label = self.labels.get(well)
        if self.color_mode == "predictions" and label in self.colors:  # true label: a corner dot
            d = max(3.0, cell * 0.3)
            p.setPen(QPen(QColor(0, 0, 0, 160), 0.8))
            p.setBrush(self.colors[label])
            p.drawEllipse(QRectF(rect.left(), rect.top(), d, d))
        if well in self.problems:
            p.setPen(QPen(PROBLEM, max(1.0, cell * 0.08)))
            m = cell * 0.2
            p.drawLine(QPointF(rect.left() + m, rect.top() + m), QPointF(rect.right() - m, rect.bottom() - m))
            p.drawLine(QPointF(rect.right() - m, rect.top() + m), QPointF(rect.left() + m, rect.bottom() - m))
        if well in self.suggestions:
            self._paint_suggestion(p, rect, cell, self.suggestions[well][0])
        if well in self.selection:
            p.setPen(QPen(QColor(255, 255, 255), max(1.0, min(2.0, cell * 0.08))))
            p.setBrush(QColor(255, 255, 255, 80))
            p.drawRoundedRect(rect, radius, radius)
        if well == self._hover and well != self.current:
            p.setPen(QPen(QColor(255, 255, 255, 150), 1))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect, radius, radius)
        if well == self.current:
            width = max(2.0, cell * 0.12)
            p.setPen(QPen(CURRENT, width))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect.adjusted(-width / 3, -width / 3, width / 3, width / 3), radius, radius)

    def _paint_suggestion(self, p: QPainter, rect: QRectF, cell: float, rank: int) -> None:
        """A cyan outline on a dark edge inside the cell (the current well's ring stays outside it), and
        the rank in a corner badge where the cell has room."""
        width = max(1.2, cell * 0.09)
        inner = rect.adjusted(width, width, -width, -width)
        radius = cell * 0.15
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(0, 0, 0, 220), width + 2))
        p.drawRoundedRect(inner, radius, radius)
        p.setPen(QPen(SUGGESTED, width))
        p.drawRoundedRect(inner, radius, radius)
        if cell < 22:
            return
        d = cell * 0.42
        badge = QRectF(rect.right() - d, rect.top(), d, d)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 220))
        p.drawEllipse(badge)
        font = self.font()
        font.setPixelSize(int(max(7, d * (0.7 if rank < 10 else 0.5))))
        font.setBold(True)
        p.setFont(font)
        p.setPen(SUGGESTED)
        p.drawText(badge, int(Qt.AlignmentFlag.AlignCenter), str(rank))

    # --- mouse --------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position()
        self._press = (pos, self.grid_geometry().hit(pos.x(), pos.y()), event.modifiers())
        self._drag = None

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        g = self.grid_geometry()
        hit = g.hit(pos.x(), pos.y())
        hover = hit[1] if hit[0] == "well" else None
        if hover != self._hover:
            for well in (self._hover, hover):
                if well:
                    self.update_well(well)
            self._hover = hover
        if self._press is None or not (event.buttons() & Qt.MouseButton.LeftButton):
            return
        start, first, _ = self._press
        if first[0] == "well" and (self._drag or (pos - start).manhattanLength() > 4):
            r, c = g.cell_at(pos.x(), pos.y(), clamp=True)
            self._drag = (first[1], well_id(r, c + 1))
            self.update()

    def leaveEvent(self, event) -> None:
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._press is None:
            return super().mouseReleaseEvent(event)
        _, hit, mods = self._press
        self._press = None
        add = bool(mods & Qt.KeyboardModifier.ControlModifier)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        if self._drag:
            a, b = self._drag
            self._drag = None
            self.anchor = a
            self.set_selection(rect_wells(a, b, self.sites), add=add)
            self.update()
            return
        kind = hit[0]
        if kind == "well":
            well = hit[1]
            if shift and self.anchor:
                self.set_selection(rect_wells(self.anchor, well, self.sites), add=add)
            elif add:
                self.anchor = well
                self.set_selection(self.selection ^ {well})
            else:
                self.anchor = well
                self.set_selection([well])
                if well in self.sites:
                    self.set_current(well)
                    self.well_clicked.emit(self.plate_id, well)
        elif kind == "row":
            self.set_selection(row_wells(hit[1], self.sites), add=add)
        elif kind == "col":
            self.set_selection(col_wells(hit[1], self.sites), add=add)
        elif kind == "all":
            self.set_selection(self.sites)

    # --- keyboard and tooltips ---------------------------------------------------------------
    def step(self, direction: str) -> str | None:
        """Move to the next/prev/up/down well, select it and ask for it to be shown."""
        new = step_well(self.current, direction, self.sites)
        if new is not None and new != self.current:
            self.anchor = new
            self.set_selection([new])
            self.set_current(new)
            self.well_clicked.emit(self.plate_id, new)
        return new

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in _ARROWS:
            self.step(_ARROWS[key])
        elif Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.assign_requested.emit(int(key) - int(Qt.Key.Key_1))
        elif key in (Qt.Key.Key_0, Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.unlabel_requested.emit()
        elif key == Qt.Key.Key_Escape:
            self.set_selection([])
        elif key == Qt.Key.Key_A and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.set_selection(self.sites)
        elif key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.current:
            self.well_clicked.emit(self.plate_id, self.current)
        else:
            super().keyPressEvent(event)

    def tooltip_for(self, well: str) -> str:
        return well_tooltip(well, well in self.sites, self.labels.get(well), self.sites.get(well, 0),
                            self.predictions.get(well), self.problems.get(well), self.conditions.get(well),
                            self.suggestions.get(well))

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in _OWN_KEYS \
                and not (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            event.accept()  # the grid's keys win over napari's window shortcuts while it has focus
            return True
        if event.type() == QEvent.Type.ToolTip:
            hit = self.grid_geometry().hit(event.pos().x(), event.pos().y())
            if hit[0] == "well":
                QToolTip.showText(event.globalPos(), self.tooltip_for(hit[1]), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)
