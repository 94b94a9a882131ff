"""Apply dock: run a trained model on the current well or the whole plate; see, sort, export, judge (Z′).

Prediction streams one site at a time from a napari thread worker, so the viewer never freezes, Cancel
stops after the site in hand, and the plate grid recolours as wells arrive (throttled to 4 Hz). The table
and the export (csv or pycytominer, per well or per site) are built by the CLI's own table writer
(``training/exports``), so the dock's file and ``napari-dcmix predict`` agree byte for byte. Pure logic
lives in the core (``training/controls``, ``training/jobs``) and in this folder's ``results``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QFileDialog, QHBoxLayout, QLabel,
                            QPushButton, QRadioButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from ..._io import default_export_path
from ...errors import NO_PLATE, DcmixError
from ...plate import SiteKey
from ...training.controls import positive_choices, reference_choices, z_prime_text
from ...training.exports import FORMATS, in_plate_order, write_table
from ...training.jobs import load_model, stream_predictions
from ...training.trained import TrainedModel
from .exports import ExportPanel
from ..outputs import write_output
from ..throttle import REDRAW_MS, Throttle
from .results import PredictionResults, counts_text, sort_key
from ..dock_base import DcmixDock
from ..session import APPLY_MODEL_FILE

LIVE_TABLE_ROWS = 2000   # bigger tables are filled when the run ends, not while it streams


class _Item(QTableWidgetItem):
    """A read-only cell that sorts by a typed key (numbers as numbers, wells in plate order), not text."""

    def __init__(self, text: str, key):
        super().__init__(text)
        self.key = key
        self.setFlags(self.flags() & ~Qt.ItemFlag.ItemIsEditable)

    def __lt__(self, other):
        return self.key < other.key if isinstance(other, _Item) else super().__lt__(other)


def _fill_combo(combo: QComboBox, items: list[str], default: str) -> None:
    """New items, silently; the user's pick stays when it is still among them."""
    keep = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(items)
    combo.setCurrentText(keep if keep in items else default)
    combo.blockSignals(False)


class ApplyWidget(DcmixDock):
    """Predict wells with a trained model; publish per-well records to the session (the grid colours them)."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.device = "auto"
        s = self.session
        self.job = None  # the running prediction Job
        self.loader = None  # the Job loading a model file
        self.results = PredictionResults()  # what the last run streamed in: the table, exports and figures
        self._run_id, self._last, self._message = 0, None, None
        self._expected = self._received = 0
        self._build()
        events = s.events
        events.prediction_model.connect(self._refresh_model)
        events.plate.connect(self._on_plate_changed)
        s.on_labels(self._refresh_controls)
        s.on_predictions(self._update_z)
        self._refresh_model()

    def _build(self) -> None:
        self.use_trained = QRadioButton("Use the model just trained")
        self.use_file = QRadioButton("Use a model file")
        self.use_trained.setChecked(True)
        self.load_button = QPushButton("Load model…")
        self.well_button = QPushButton("Predict current well")
        self.plate_button = QPushButton("Predict plate")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.per_site = QCheckBox("One row per site")
        self.format_combo = QComboBox(toolTip="csv: the columns of 'napari-dcmix predict'; pycytominer: one row "
                                      "per site with Metadata_Plate/Well/Site and DCMIX_p_<class>")
        self.format_combo.addItems(FORMATS)
        self.export_button = QPushButton("Export CSV…")
        self.summary, self.status, self.counts, self.z_label = QLabel(), QLabel(), QLabel(), QLabel()
        self.negative_combo, self.positive_combo = QComboBox(), QComboBox()
        self.table = QTableWidget(0, 0)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("Click a row to show that well; click a column header to sort")
        self._publish = Throttle(self, self._flush, REDRAW_MS, leading=False)  # streamed results, ≤ 4 Hz

        layout = QVBoxLayout(self)
        for row in ((self.use_trained,), (self.use_file, self.load_button), (self.summary,),
                    (self.well_button, self.plate_button, self.cancel_button), (self.status,),
                    (self.per_site, self.format_combo, self.export_button), (self.counts,)):
            line = QHBoxLayout()
            for w in row:
                line.addWidget(w)
                if isinstance(w, QLabel):
                    w.setWordWrap(True)
            layout.addLayout(line)
        self.exports = ExportPanel(self)  # plate map and top-sites montage
        layout.addWidget(self.exports)
        layout.addWidget(self.table, 1)
        form = QFormLayout()
        form.addRow("Z′ negative control", self.negative_combo)
        form.addRow("Z′ positive control", self.positive_combo)
        layout.addLayout(form)
        self.z_label.setWordWrap(True)
        layout.addWidget(self.z_label)

        self.use_trained.toggled.connect(lambda checked: self.session.use_file_model(not checked))
        self.load_button.clicked.connect(self.load_model)
        self.well_button.clicked.connect(self.predict_well)
        self.plate_button.clicked.connect(self.predict_plate)
        self.cancel_button.clicked.connect(self.cancel)
        self.per_site.toggled.connect(self._fill_table)
        self.export_button.clicked.connect(self.export_csv)
        self.table.cellClicked.connect(self._on_row_clicked)
        self.negative_combo.currentTextChanged.connect(self._refresh_controls)  # the phenotype box follows it
        self.positive_combo.currentTextChanged.connect(self._update_z)

    # --- model ----------------------------------------------------------------------------------
    @property
    def model(self) -> TrainedModel | None:
        return self.session.prediction_model

    @property
    def loading(self) -> bool:
        """A model file is being loaded (in the background)."""
        return self.loader is not None

    def load_model(self, path: str | None = None) -> None:
        """Load a model file in the background (safe loader: tensors and JSON only); errors say what to do."""
        if not path:
            start = str(self.session.plate.location.output_folder()) if self.session.plate else ""
            path, _ = QFileDialog.getOpenFileName(self, "Load a napari-dcmix model", start,
                                                  "napari-dcmix models (*.pt);;All files (*)")
            if not path:
                return
        if self.loader is not None:
            return show_info("a model file is being loaded; wait for it")
        self.summary.setText(f"loading {Path(path).name}…")
        self.loader = self.run(load_model, path, on_return=partial(self._model_loaded, Path(path).expanduser()),
                               on_finish=self._load_finished)

    def _model_loaded(self, path: Path, model: TrainedModel) -> None:
        self.session.set_file_model(model)
        self.session.set_input_file(APPLY_MODEL_FILE, path)
        self.use_file.setChecked(True)
        self._refresh_model()

    @property
    def loaded_model(self) -> TrainedModel | None:
        """The model file loaded here (the session holds it)."""
        return self.session.file_model

    def _load_finished(self) -> None:
        self.loader = None
        self._refresh_model()  # a file that could not be loaded: the summary says what is in use

    def _refresh_model(self, *_) -> None:
        model = self.model
        if model is not None:
            self.summary.setText(model.summary())
        elif self.use_trained.isChecked():
            self.summary.setText("No model yet: train one in the Train dock, or click 'Load model…'.")
        else:
            self.summary.setText("No model file loaded: click 'Load model…'.")
        self._refresh_controls()

    def _refresh_controls(self, *_) -> None:
        """Z′ control choices: model classes and labeled classes; keep the user's pick, else the core's guess
        by name (none when no class, or several, are named like a negative control: the user chooses)."""
        classes = list(self.results.classes or (self.model.classes if self.model else []))
        classes += [c for c in sorted(set(self.session.labels.values())) if c not in classes]
        _fill_combo(self.negative_combo, *reference_choices(classes)[:2])
        _fill_combo(self.positive_combo, *positive_choices(classes, self.negative_combo.currentText()))
        self._update_z()

    # --- running --------------------------------------------------------------------------------
    def predict_well(self) -> None:
        """Quick check of one well (all its sites): the well of the site shown in the viewer."""
        site, plate = self.session.site, self.session.plate
        if site is None or plate is None:
            show_warning("no well chosen: click a well in the Plate browser, then 'Predict current well'")
            return
        self._start(plate.sites_of(site.well, site.plate), whole=False, what=f"well {site.well}")

    def predict_plate(self) -> None:
        """Every site of the plate in the background; the grid fills in as wells arrive."""
        plate = self.session.plate
        self._start(plate.sites if plate is not None else [], whole=True, what="plate")

    def _start(self, keys: list[SiteKey], whole: bool, what: str) -> None:
        model, plate = self.model, self.session.plate
        if plate is None:
            return show_warning(NO_PLATE)
        if model is None:
            return show_warning("no model: train one in the Train dock, or click 'Load model…' in the Apply dock")
        if self.job is not None:
            return show_info("a prediction is already running: wait for it, or click Cancel")
        try:
            model.channel_order(plate.channels)  # names missing/extra channels before any work
        except DcmixError as err:
            return show_error(str(err))
        if whole or model is not self.results.model:
            self.results.clear()
            self.session.set_predictions({})
        self.results.start(model)
        self._run_id += 1
        self._expected, self._received, self._last, self._message = len(keys), 0, None, None
        self._set_running(True, f"predicting {what}: 0/{len(keys)} sites")
        self.job = self.run(stream_predictions, self._run_id, model, plate, list(keys), self.device,
                            on_yield=self._on_site, on_return=self._on_result,
                            on_finish=self._on_done,
                            progress=f"Predicting {what}", total=len(keys), count_yields=True)

    def cancel(self) -> None:
        """Stop after the site in hand; the results so far stay in the grid, table and export."""
        if self.job is not None:
            self.status.setText("cancelling…")
            self.job.cancel()

    def _set_running(self, running: bool, text: str) -> None:
        for w in (self.well_button, self.plate_button, self.use_trained, self.use_file, self.load_button):
            w.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.status.setText(text)

    def _on_site(self, item) -> None:
        run_id, pred = item
        if run_id != self._run_id:
            return  # a run stopped because the plate changed, finishing its last site
        self.results.add(pred.key, pred.probabilities)
        self._received, self._last = self._received + 1, pred
        self._publish.request()

    def _on_result(self, result) -> None:
        run_id, message = result
        if run_id == self._run_id:
            self._message = message

    def _on_done(self) -> None:
        if self.job is None or self.job.running:
            return  # a run stopped because the plate changed (or a newer run is going on)
        job, self.job = self.job, None
        stopped = job is not None and job.cancelled  # Cancel, closing, napari's task manager
        message = self._message if job is None or job.failed is None else None  # a failure was notified
        self._publish.flush()
        text = f"{len(self.results.well_probs)} wells predicted ({self._received} sites)"
        self._set_running(False, ("cancelled: " if stopped else "") + text)
        if message:
            show_error(message)
        elif not stopped and self._received < self._expected:
            show_warning(f"{self._expected - self._received} sites could not be read and were skipped; "
                         "the Plate browser lists the problem files")

    # --- results --------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Publish streamed results: session predictions (the grid), table, counts, status line."""
        self.session.add_classes(self.results.classes)  # so the grid has a colour for every predicted class
        self.session.add_predictions(self.results.take_changed_wells())
        if self.job is not None and self._last is not None:
            eta = self._last.eta
            self.status.setText(f"predicted {self._last.done}/{self._last.total} sites"
                                + (f", about {eta:.0f} s left" if eta == eta else ""))
        self._fill_table()

    def rows(self) -> list[dict]:
        """Rows exactly as the CLI writes them (csv format), per well or per site as the box says."""
        return self.results.rows(self.session.plate, self.per_site.isChecked())

    def _fill_table(self, *_) -> None:
        per_site = self.per_site.isChecked()
        n_rows = self.results.sites if per_site else len(self.results.well_probs)
        if self.job is not None and n_rows > LIVE_TABLE_ROWS:
            return
        rows, table = self.rows(), self.table
        table.setSortingEnabled(False)  # filling a sorted table re-sorts per cell
        table.clear()
        columns = list(rows[0]) if rows else []
        table.setColumnCount(len(columns))
        table.setHorizontalHeaderLabels(columns)
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (name, text) in enumerate(row.items()):
                table.setItem(r, c, _Item(text, sort_key(name, text)))
        table.setSortingEnabled(True)
        self.counts.setText(counts_text(rows, self.results.classes, "sites" if per_site else "wells"))

    def _on_row_clicked(self, row: int, _column: int) -> None:
        """Show the clicked well (or site) in the viewer, through the session."""
        plate, table = self.session.plate, self.table
        cells = {table.horizontalHeaderItem(c).text(): table.item(row, c).text() for c in range(table.columnCount())}
        if plate is None or "well" not in cells:
            return
        sites = plate.sites_of(cells["well"], cells.get("plate", plate.plates[0]))
        if "site" in cells:
            sites = [k for k in sites if k.site == int(cells["site"])] or sites
        if sites:
            self.session.set_site(sites[0])

    def export_csv(self, path: str | None = None) -> None:
        """The file ``napari-dcmix predict`` writes (--format, --per-site); never inside the plate folder."""
        plate, fmt, per_site = self.session.plate, self.format_combo.currentText(), self.per_site.isChecked()
        if not self.results.by_well or plate is None:
            return show_warning("nothing to export yet: click 'Predict plate' first")
        if not path:
            suffix = "_pycytominer" if fmt == "pycytominer" else "_per_site" if per_site else ""
            default = default_export_path(plate.location, f"{{plate}}_predictions{suffix}.csv")
            path, _ = QFileDialog.getSaveFileName(self, "Export predictions", str(default), "CSV files (*.csv)")
            if not path:
                return
        out = Path(path).expanduser().resolve()
        tables = []
        sites = in_plate_order(plate, self.results.site_probabilities())
        if write_output(self.session, out, "predictions",
                        lambda: tables.append(write_table(out, self.results.classes, plate, sites, fmt, per_site))):
            missing = len(plate.well_keys()) - len(self.results.well_probs)
            show_info(f"{tables[0].rows} rows written to {out}" + (f" ({missing} wells not predicted yet)"
                                                                   if missing else ""))

    def _update_z(self, *_) -> None:
        self.z_label.setText(z_prime_text(self.session.predictions, self.session.labels,
                                          self.negative_combo.currentText(), self.positive_combo.currentText(),
                                          self.results.classes))

    # --- lifecycle ------------------------------------------------------------------------------
    def _on_plate_changed(self, *_) -> None:
        """Old results mean nothing on a new plate: stop the run and drop them (set_plate cleared the grid)."""
        self._run_id += 1  # late sites of the stopped run are ignored
        if self.job is not None:
            self.job.cancel()
            self.job = None
            self._set_running(False, "stopped: the plate changed")
        self.results.clear()
        self._publish.cancel()
        self._fill_table()
        self._refresh_controls()
