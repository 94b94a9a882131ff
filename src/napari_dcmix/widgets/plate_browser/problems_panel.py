"""The plate browser's problems list: every file or site that was skipped, repaired or re-planed, and
every doubtful label, one row each (hover for file, site, what was done and what to do).

Sites are read lazily (a click, the thumbnails, training), so new problems appear while the plate is
open: a light timer picks them up from the plate's live list. The user gets one notification per
plate or labels file, not one per problem; the rest is here.
"""

from __future__ import annotations

from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import QListWidget, QListWidgetItem, QToolButton, QVBoxLayout, QWidget

from ...plate.problems import Problem, as_problem, unique

POLL_MS = 1000
MAX_ROWS = 1000  # a plate can list tens of thousands; the CLI's inspect --json has them all


def summary(problems: list, what: str) -> str:
    """One notification for many problems: the first one and a count."""
    first = as_problem(problems[0]).message
    more = f" (and {len(problems) - 1} more: see Problems in the plate browser)" if len(problems) > 1 else ""
    return f"{what} with {len(problems)} problem{'s' if len(problems) > 1 else ''}: {first}{more}"


def tooltip(problem: Problem) -> str:
    parts = [f"what: {problem.kind} ({problem.action})"]
    if problem.site:
        parts.append(f"site: {problem.site}")
    if problem.file:
        parts.append(f"file: {problem.file}")
    if problem.fix:
        parts.append(f"what to do: {problem.fix}")
    return "\n".join(parts)


class ProblemsPanel(QWidget):
    """A collapsible list fed by live problem lists (the plate's, the labels'); emits ``well_requested``
    (plate id is the caller's) when a row naming a well is double-clicked."""

    well_requested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton(checkable=True, toolTip="Files and sites that were skipped, repaired or "
                                  "re-planed, and doubtful labels: one row each (hover for details)")
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.toggled.connect(self._toggled)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setVisible(False)
        self.list.itemDoubleClicked.connect(self._double_clicked)
        layout.addWidget(self.toggle)
        layout.addWidget(self.list)
        self._sources: dict[str, list] = {}
        self._shown: dict[Problem, None] = {}
        self._sizes: tuple | None = None
        self._timer = QTimer(self, interval=POLL_MS)
        self._timer.timeout.connect(self.refresh)
        self.refresh()

    def show_plate(self, plate) -> None:
        """A new plate: its problems, and no labels' yet."""
        self._sources.pop("labels", None)
        self.set_source("plate", plate.problems)

    def set_source(self, name: str, problems: list | None) -> None:
        """Show ``problems`` (a live list) under ``name`` ('plate', 'labels'); None removes it."""
        if problems is None:
            self._sources.pop(name, None)
        else:
            self._sources[name] = problems
        if name == "plate":
            self._timer.start() if problems is not None else self._timer.stop()
        self._shown, self._sizes = {}, None
        self.list.clear()
        self.refresh()

    def problems(self) -> list[Problem]:
        return unique(*self._sources.values())

    def refresh(self) -> list[Problem]:
        """Add the problems found since the last refresh; returns them."""
        sizes = tuple(len(source) for source in self._sources.values())
        if sizes == self._sizes:
            return []  # the lists only grow: nothing new (the timer calls this every second)
        self._sizes = sizes
        new = [p for p in self.problems() if p not in self._shown]
        for p in new:
            if len(self._shown) < MAX_ROWS:
                item = QListWidgetItem(p.message)
                item.setToolTip(tooltip(p))
                item.setData(Qt.ItemDataRole.UserRole, p.well)
                self.list.addItem(item)
            self._shown[p] = None
        n = len(self._shown)
        if n > MAX_ROWS:
            self.list.setToolTip(f"The first {MAX_ROWS} of {n} problems; 'napari-dcmix inspect --check --json' "
                                 "lists them all")
        self.toggle.setText(f"⚠ Problems ({n})" if n else "Problems (none)")
        self.setVisible(bool(n))  # no clutter on a clean plate
        return new

    def _toggled(self, on: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.list.setVisible(on)

    def _double_clicked(self, item: QListWidgetItem) -> None:
        well = item.data(Qt.ItemDataRole.UserRole)
        if well:
            self.well_requested.emit(well)
