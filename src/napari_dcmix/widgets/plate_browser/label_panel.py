"""Labelling wells: the editable class list (which doubles as the colour legend with per-class
counts), assign/unlabel for the selected wells, and saving the labels as CSV.

All edits go through the viewer's session (its ``LabelBook``, then ``labels_changed``), so the grid
and the train dock see the same labels.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable

from napari.utils import notifications
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (QAbstractItemView, QGridLayout, QHeaderView, QLabel, QLineEdit, QMessageBox,
                            QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from ...errors import NO_PLATE
from ...plate.labels import write_labels
from ..._io import default_labels_path
from ...colors import class_colors
from ...plate.label_book import display_classes
from ..outputs import write_output
from ..session import LABELS_FILE


def _swatch(colour: str) -> QIcon:
    pix = QPixmap(14, 14)
    pix.fill(QColor(colour))
    return QIcon(pix)


class LabelPanel(QWidget):
    """Class list + label actions. ``selection()`` returns (plate id, selected wells) from the grid."""

    load_requested = Signal()

    def __init__(self, session, selection: Callable[[], tuple[str, list[str]]], parent=None):
        super().__init__(parent)
        self.session = session
        self.selection = selection
        self.saved_path: Path | None = None
        self.dirty = False
        self._refreshing = False

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.class_list = QTreeWidget()
        self.class_list.setRootIsDecorated(False)
        self.class_list.setColumnCount(3)
        self.class_list.setHeaderLabels(["Class", "Wells", "Predicted"])
        header = self.class_list.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.class_list.setToolTip("The legend of the plate map: each class, its colour and how many wells carry it.\n"
                                   "Double-click a class to rename it; keys 1-9 on the plate map assign class 1-9.")
        self.class_list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_list.itemChanged.connect(self._item_renamed)
        self.class_list.itemDoubleClicked.connect(lambda item, _col: self.class_list.editItem(item, 0))
        layout.addWidget(self.class_list)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        self.new_class = QLineEdit(placeholderText="new class name")
        self.new_class.returnPressed.connect(self.add_class)
        add = QPushButton("Add class")
        add.clicked.connect(self.add_class)
        delete = QPushButton("Delete class")
        delete.setToolTip("Remove the highlighted class; its wells become unlabeled")
        delete.clicked.connect(lambda: self.delete_class())
        self.assign_button = QPushButton("Assign to selected")
        self.assign_button.setToolTip("Give the selected wells the highlighted class")
        self.assign_button.clicked.connect(lambda: self.assign())
        unlabel = QPushButton("Unlabel selected")
        unlabel.clicked.connect(self.unlabel)
        load = QPushButton("Load labels…")
        load.clicked.connect(self.load_requested)
        self.save_button = QPushButton("Save labels…")
        self.save_button.setToolTip("Write the labels as a CSV (well, class); the image folder is never touched")
        self.save_button.clicked.connect(lambda: self.save())
        grid.addWidget(self.new_class, 0, 0)
        grid.addWidget(add, 0, 1)
        grid.addWidget(self.assign_button, 1, 0)
        grid.addWidget(unlabel, 1, 1)
        grid.addWidget(delete, 2, 0)
        grid.addWidget(load, 3, 0)
        grid.addWidget(self.save_button, 3, 1)
        layout.addLayout(grid)
        self.status = QLabel("Select wells on the plate map, pick a class, then Assign.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        events = session.events
        events.plate.connect(self._on_plate)
        events.labels_file.connect(self._on_labels_file)
        session.on_labels(self.refresh)
        session.on_predictions(self.refresh)
        self.refresh()

    # --- session ------------------------------------------------------------------------------
    def _on_plate(self, _plate) -> None:
        """A new plate, with the labels it came with: nothing edited, nothing saved yet."""
        self.saved_path = None
        self._take_file()
        self.refresh()

    def _on_labels_file(self, *_) -> None:
        """A CSV was loaded: its labels are unedited."""
        self._take_file()
        self.refresh()

    def _take_file(self) -> None:
        self.dirty = False  # labels just read from a file (or a new plate's): nothing edited yet

    @property
    def loaded_csv(self) -> Path | None:
        """The CSV the session's labels were read from (None: not from a file)."""
        source = self.session.labels_file
        return source.path if source is not None else None

    # --- view ---------------------------------------------------------------------------------
    def classes(self) -> list[str]:
        return display_classes(self.session.classes, self.session.predictions)

    def colors(self) -> dict[str, str]:
        return class_colors(self.classes())

    def refresh(self, *_) -> None:
        """Rebuild the legend from the session (keeps the highlighted class)."""
        current = self.current_class()
        preds = self.session.predictions
        counts = self.session.book.counts()
        predicted = Counter(v.get("prediction") for v in preds.values())
        colors = self.colors()
        self._refreshing = True
        self.class_list.clear()
        for i, name in enumerate(self.classes()):
            item = QTreeWidgetItem([name, str(counts.get(name, 0)), str(predicted.get(name, 0))])
            item.setIcon(0, _swatch(colors[name]))
            item.setData(0, Qt.ItemDataRole.UserRole, name)
            item.setToolTip(0, f"key {i + 1} on the plate map assigns '{name}'" if i < 9 else name)
            if name in self.session.classes:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.class_list.addTopLevelItem(item)
            if name == current:
                self.class_list.setCurrentItem(item)
        if self.class_list.currentItem() is None and self.class_list.topLevelItemCount():
            self.class_list.setCurrentItem(self.class_list.topLevelItem(0))
        self.class_list.setColumnHidden(2, not preds)
        rows = max(2, min(self.class_list.topLevelItemCount(), 8))
        row_h = self.class_list.sizeHintForRow(0) if self.class_list.topLevelItemCount() else 18
        self.class_list.setFixedHeight(self.class_list.header().sizeHint().height() + rows * max(row_h, 16) + 6)
        self._refreshing = False
        self.save_button.setText("Save labels… •" if self.dirty else "Save labels…")

    def current_class(self) -> str | None:
        item = self.class_list.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def select_class(self, name: str) -> None:
        for i in range(self.class_list.topLevelItemCount()):
            item = self.class_list.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == name:
                self.class_list.setCurrentItem(item)

    # --- edits --------------------------------------------------------------------------------
    def _edited(self, message: str) -> None:
        self.dirty = True
        self.save_button.setText("Save labels… •")
        self.status.setText(message)

    def add_class(self, name: str | None = None) -> str | None:
        name = (name if isinstance(name, str) else self.new_class.text()).strip()
        if not name:
            notifications.show_warning("Type a class name (e.g. 'positive_control') next to 'Add class' first.")
            return None
        self.new_class.clear()
        self.session.add_class(name)
        self.select_class(name)
        return name

    def rename(self, old: str, new: str) -> bool:
        new = new.strip()
        if not new or new == old:
            return False
        if new in self.session.classes:
            notifications.show_warning(f"There is already a class '{new}'; choose another name.")
            return False
        if not self.session.rename_class(old, new):
            return False
        self._edited(f"Renamed '{old}' to '{new}'.")
        self.select_class(new)
        return True

    def _item_renamed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._refreshing or column != 0:
            return
        old, new = item.data(0, Qt.ItemDataRole.UserRole), item.text(0)
        QTimer.singleShot(0, lambda: self.rename(old, new) or self.refresh())  # not inside the item's own signal

    def delete_class(self, name: str | None = None, confirm: bool = True) -> bool:
        name = name or self.current_class()
        if name is None or name not in self.session.classes:
            notifications.show_warning("Highlight one of your classes in the list first, then Delete class.")
            return False
        used = self.session.book.well_count(name)
        if used and confirm:
            answer = QMessageBox.question(self, "Delete class", f"{used} wells are labeled '{name}'. "
                                          "Delete the class and unlabel them?")
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.session.remove_class(name)
        self._edited(f"Deleted '{name}'; {used} wells unlabeled.")
        return True

    def assign(self, cls: str | None = None) -> int:
        """Label the selected wells with ``cls`` (default: the highlighted class); returns how many."""
        cls = cls or self.current_class()
        plate_id, wells = self.selection()
        if cls is None:
            notifications.show_warning("Add a class first (type its name, then 'Add class').")
            return 0
        if not wells:
            notifications.show_warning("Select wells on the plate map first (click, shift-click or drag).")
            return 0
        self.session.assign_labels(plate_id, wells, cls)
        self._edited(f"{len(wells)} wells → {cls}")
        return len(wells)

    def assign_index(self, index: int) -> int:
        classes = self.classes()
        if 0 <= index < len(classes):
            return self.assign(classes[index])
        notifications.show_warning(f"There is no class {index + 1}; add classes first.")
        return 0

    def unlabel(self) -> int:
        plate_id, wells = self.selection()
        if not wells:
            notifications.show_warning("Select wells on the plate map first (click, shift-click or drag).")
            return 0
        self.session.assign_labels(plate_id, wells, None)
        self._edited(f"{len(wells)} wells unlabeled")
        return len(wells)

    # --- files --------------------------------------------------------------------------------
    def default_path(self) -> Path | None:
        plate = self.session.plate
        if plate is None:
            return None
        return self.saved_path or default_labels_path(plate.location, self.loaded_csv)

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write the labels atomically; without ``path`` ask where, proposing :meth:`default_path`."""
        if self.session.plate is None:
            notifications.show_warning(NO_PLATE)
            return None
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            default = self.default_path()
            try:
                default.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass
            path, _ = QFileDialog.getSaveFileName(self, "Save labels", str(default), "CSV table (*.csv)")
            if not path:
                return None
        written: list[Path] = []
        n = len(self.session.labels)
        if not write_output(self.session, path, "labels",  # saving edits back over the CSV read is fine
                            lambda: written.append(Path(write_labels(path, self.session.labels,
                                                                     self.session.label_column or "label"))),
                            keep=(LABELS_FILE,)):
            return None
        out = written[0]
        self.saved_path, self.dirty = out, False
        self.refresh()
        self.status.setText(f"Saved {n} labeled wells to {out}")
        notifications.show_info(f"Saved {n} labeled wells to {out}")
        return out
