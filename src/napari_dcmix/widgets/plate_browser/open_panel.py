"""The "open a plate" form of the plate browser: folder, optional file-name pattern, optional labels
CSV with its label column, and the plate selector for folders holding several plates (RxRx1)."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                            QSizePolicy, QToolButton, QWidget)

from ...errors import DcmixError
from ...plate.labels import csv_columns, default_label_column, guess_labels_csv

PATTERN_HELP = ("Only needed when the plate is not recognised: a regular expression over file names with "
                "named groups well, site and channel, e.g.\n"
                "(?P<well>[A-P]\\d+)_s(?P<site>\\d+)_(?P<channel>w\\d)\\.tif")


PATH_HELP = ("A plate folder, or the URL of an OME-Zarr HCS plate: https://… (e.g. an IDR plate) or s3://… "
             "(public buckets; S3 endpoint and caches: Plugins › napari-dcmix › Open plate URL…). A URL is read "
             "in the background: metadata when opened, each site's pixels when shown.")


NAMES_HELP = ("Rename channels as OLD=NEW pairs, e.g. w1=DNA,w2=ER. The new names are what layers, charts, "
              "CSVs and saved models show; a model trained on renamed channels needs the same names to apply.")


def _path_row(edit: QLineEdit, button: QToolButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row


class OpenPanel(QWidget):
    """Collects what ``open_plate`` needs; emits ``open_requested``, ``csv_chosen`` and ``column_changed``."""

    open_requested = Signal()
    csv_chosen = Signal(str)  # a CSV picked or typed: the dock loads it, then fills the field once from what it read
    column_changed = Signal(str)
    plate_selected = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("plate folder, or an OME-Zarr plate's URL")
        self.path_edit.setToolTip(PATH_HELP)
        self.path_edit.returnPressed.connect(self.open_requested)
        browse = QToolButton(text="…", toolTip="Choose the plate folder")
        browse.clicked.connect(self.browse_folder)
        form.addRow("Plate", _path_row(self.path_edit, browse))

        self.pattern_edit = QLineEdit()
        self.pattern_edit.setPlaceholderText("optional; detected automatically")
        self.pattern_edit.setToolTip(PATTERN_HELP)
        form.addRow("File pattern", self.pattern_edit)

        self.names_edit = QLineEdit()
        self.names_edit.setPlaceholderText("optional, e.g. w1=DNA,w2=ER")
        self.names_edit.setToolTip(NAMES_HELP)
        self.names_edit.returnPressed.connect(self.open_requested)
        form.addRow("Channel names", self.names_edit)

        self.csv_edit = QLineEdit()
        self.csv_edit.setPlaceholderText("optional labels CSV (well, class…)")
        self.csv_edit.editingFinished.connect(self._csv_edited)
        browse_csv = QToolButton(text="…", toolTip="Choose a labels CSV with a 'well' column")
        browse_csv.clicked.connect(self.browse_csv)
        form.addRow("Labels CSV", _path_row(self.csv_edit, browse_csv))

        self.column_combo = QComboBox(toolTip="The CSV column that holds each well's class")
        self.column_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.column_combo.setMinimumContentsLength(10)
        self.column_combo.activated.connect(lambda _i: self.column_changed.emit(self.column_combo.currentText()))
        form.addRow("Label column", self.column_combo)

        self.open_button = QPushButton("Open plate")
        self.open_button.setToolTip("Index the folder by file names, or read a URL's metadata, in the background "
                                    "(no pixels are read) and show the plate map")
        self.open_button.clicked.connect(self.open_requested)
        form.addRow(self.open_button)

        self.plate_combo = QComboBox(toolTip="This folder holds several plates; choose the one to show")
        self.plate_combo.activated.connect(lambda _i: self.plate_selected.emit(self.plate_combo.currentData()))
        self.plate_label = QLabel("Plate")
        form.addRow(self.plate_label, self.plate_combo)
        self.set_plates([])

        self.info = QLabel("No plate open.")
        self.info.setWordWrap(True)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        form.addRow(self.info)

    # --- values -------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self.path_edit.text().strip()

    @property
    def pattern(self) -> str | None:
        return self.pattern_edit.text().strip() or None

    @property
    def channel_names(self) -> str | None:
        return self.names_edit.text().strip() or None

    @property
    def csv_path(self) -> str | None:
        return self.csv_edit.text().strip() or None

    @property
    def column(self) -> str | None:
        return self.column_combo.currentText() or None

    def set_csv(self, path: str | None, column: str | None = None) -> list[str]:
        """Show ``path`` and fill the column combo from its header (empty if it cannot be read)."""
        self.csv_edit.setText(str(path) if path else "")
        self.column_combo.clear()
        columns: list[str] = []
        if path:
            try:
                columns = csv_columns(path)
            except (DcmixError, OSError, UnicodeDecodeError):
                columns = []  # loading the labels says what is wrong with the file
        choices = [c for c in columns if c.lower() not in ("well", "plate", "site")]
        self.column_combo.addItems(choices)
        pick = column if column in choices else default_label_column(columns)
        if pick in choices:
            self.column_combo.setCurrentText(pick)
        return columns

    def show_plate(self, plate, pattern: str | None) -> None:
        """Reflect an opened plate: its folder, pattern, plate selector and a one-line summary."""
        self.path_edit.setText(str(plate.location))
        self.pattern_edit.setText(pattern or "")
        self.set_plates(plate.plates, plate.plates[0])
        keys = plate.well_keys()
        n_sites = max((len(plate.sites_of(w, p)) for p, w in keys), default=0)
        where = f" (on {plate.location.scheme}://, read as you go)" if plate.is_remote else ""
        text = (f"{plate.location.name}{where}: {plate.format.wells}-well, {len(keys)} wells with images, up to "
                f"{n_sites} sites, {len(plate.channels)} channels ({', '.join(plate.channels)})")
        problems = list(plate.problems)
        if problems:
            text += f" · ⚠ {len(problems)} problem{'s' if len(problems) > 1 else ''} (listed under Problems)"
        self.info.setText(text)
        self.info.setToolTip("\n".join(map(str, problems)))

    def set_plates(self, plates: list[str], current: str | None = None) -> None:
        self.plate_combo.clear()
        for plate in plates:
            self.plate_combo.addItem(plate or "(plate)", plate)
        if current is not None and current in plates:
            self.plate_combo.setCurrentIndex(plates.index(current))
        many = len(plates) > 1
        self.plate_combo.setVisible(many)
        self.plate_label.setVisible(many)

    # --- dialogs ------------------------------------------------------------------------------
    def browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the plate folder", self.path or str(Path.home()))
        if folder:
            self.path_edit.setText(folder)
            if not self.csv_path:
                found = guess_labels_csv(Path(folder))
                if found:
                    self.set_csv(str(found))

    def browse_csv(self) -> None:
        start = self.csv_path or self.path or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Choose a labels CSV", start, "CSV tables (*.csv *.tsv *.txt)")
        if path:
            self.csv_chosen.emit(path)

    def _csv_edited(self) -> None:
        if self.csv_path and self.csv_edit.isModified():
            self.csv_edit.setModified(False)
            self.csv_chosen.emit(self.csv_path)

