"""The Explain dock: *Explain per phenotype* — one DCMIX model per phenotype (and fold) against the
reference class, run in a napari thread worker, shown as the phenotype × channel matrix with the α
chart of the selected row beside it (a dock of its own, so the matrix has the room to be read).

A row (clicked in the matrix or chosen in the list) is also published as the session's importance
snapshot, so the Channel importance dock's bars, the verdict line and the "DCMIX composite" layer all
show that phenotype. When the run completes, the phenotype panel (every phenotype's models combined)
becomes the session's model: Apply predicts with it, and the status line says its out-of-fold
accuracy and Z′ per phenotype.
"""

from __future__ import annotations

from dataclasses import replace

from qtpy.QtWidgets import (QBoxLayout, QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget)

from ...errors import NO_PLATE
from ...training import explain_text as texts
from ...training.config import TrainConfig
from ...training.controls import chosen_reference, reference_choices
from ...training.explain import FOLDS, STEPS_PER_MODEL, ExplainConfig
from ...training.jobs import ExplainJob, explain_updates
from ...training.matrix_figure import save_matrix
from ...training.snapshot import ImportanceSnapshot
from ..charts import add_run_controls, make_canvas, theme_colors
from ..dock_base import DcmixDock
from ..forms import make_widget
from ..importance.bars import ImportanceChart
from ..jobs import FOLD_THREADS
from ..outputs import ask_export_path, write_output
from ..session import EXPLAIN_RUN
from ..throttle import REDRAW_MS, Throttle
from .matrix_view import MatrixView
from .stains_view import StainsView

PROGRESS_STEPS = 1000


#: wider than this, the α chart of the selected row sits beside the matrix; narrower, below it
SIDE_BY_SIDE_PX = 640


class ExplainWidget(DcmixDock):
    """Reference class, Explain/Cancel, progress, the matrix, its rows, the selected row's α, exports."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        session = self.session
        self.base_config = TrainConfig()  # settings of every explain model (tests make it tiny)
        self.job = None  # the running Job
        self._job: ExplainJob | None = None
        self._cancelled, self._said = False, set()  # said: the notices shown this run
        self._job_plate = None
        self._latest = None  # the newest progress event, shown at most REDRAW_MS apart
        self._progress = Throttle(self, self._show_progress, REDRAW_MS)
        self.selected: ImportanceSnapshot | None = None  # the row whose α the chart beside the matrix shows
        self._build()
        events = session.events
        events.plate.connect(self._on_plate_changed)
        session.on_labels(self.refresh_classes)
        self.viewer.events.theme.connect(self._on_theme)
        self.refresh_classes()
        self.draw()

    def _build(self) -> None:
        """Controls and the matrix on one side, the selected row's α chart on the other (or below), in a
        scroll area: a dock shorter than both scrolls instead of squashing the matrix."""
        self.columns = QBoxLayout(QBoxLayout.Direction.TopToBottom, self.scroll_content())
        left, right = QWidget(), QWidget()
        self.columns.addWidget(left, 3)
        self.columns.addWidget(right, 2)
        self._build_matrix_side(QVBoxLayout(left))
        self._build_row_side(QVBoxLayout(right))

    def _build_row_side(self, layout) -> None:
        """The selected row: what it is, its verdict, its α bars."""
        self.row_title = QLabel("click a row of the matrix to see its α")
        self.row_title.setWordWrap(True)
        layout.addWidget(self.row_title)
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        layout.addWidget(self.reason_label)
        self.row_figure, self.row_canvas = make_canvas(180)
        self.row_chart = ImportanceChart(self.row_canvas, theme_colors(self.viewer))
        layout.addWidget(self.row_canvas, 1)

    def _build_matrix_side(self, layout) -> None:
        form = QFormLayout()
        self.reference_combo = QComboBox()
        self.reference_combo.setToolTip("the negative control: every other class is explained against it")
        # the fields and their bounds are the core's (ExplainConfig's spec, the Train dock's steps)
        self.steps_field = make_widget(STEPS_PER_MODEL)
        self.steps = self.steps_field.native  # a spin box: value(), setValue(), setEnabled()
        self.folds_field = make_widget(replace(FOLDS, help="repeats per phenotype: every well is held out once; "
                                                           "the spread of α is over them"))
        self.folds = self.folds_field.native
        form.addRow("Reference", self.reference_combo)
        form.addRow("Steps per model", self.steps)
        form.addRow("Folds", self.folds)
        layout.addLayout(form)
        self.reference_hint = QLabel()
        self.reference_hint.setWordWrap(True)
        layout.addWidget(self.reference_hint)

        self.explain_button, self.progress_bar, self.status_label = add_run_controls(
            layout, "Explain per phenotype", "train DCMIX models with one blend per phenotype against the reference, "
            "fold by fold (in the background): which channels tell each phenotype from the control?",
            self._explain_clicked, "not explained yet", PROGRESS_STEPS)
        self.matrix_view = MatrixView(self.viewer)  # the heat map and its rows
        self.matrix_view.row_chosen.connect(self._on_row_chosen)
        self.figure, self.canvas, self.row_list = (self.matrix_view.figure, self.matrix_view.canvas,
                                                   self.matrix_view.row_list)
        layout.addWidget(self.matrix_view)
        row = QHBoxLayout()
        self.csv_button = QPushButton("Export matrix CSV…")
        self.png_button = QPushButton("Export matrix PNG…")
        self.csv_button.clicked.connect(lambda: self._choose_export("csv"))
        self.png_button.clicked.connect(lambda: self._choose_export("png"))
        row.addWidget(self.csv_button)
        row.addWidget(self.png_button)
        layout.addLayout(row)
        self.stains_view = StainsView(self)  # which stains can the next assay drop?
        layout.addWidget(self.stains_view)

    # --- classes ------------------------------------------------------------------------------
    def classes(self) -> list[str]:
        return list(self.session.book.counts_on(self.session.plate))

    def refresh_classes(self, *_) -> None:
        """Fill the Reference box from the labels; keep the user's pick, else pre-select the guess."""
        classes = self.classes()
        if len(classes) < 2:
            items, choice, hint = [], "", "label wells of a negative control and at least one phenotype to explain"
        else:
            items, choice, hint = reference_choices(classes)
        keep = self.reference_combo.currentText()
        self.reference_combo.blockSignals(True)
        self.reference_combo.clear()
        self.reference_combo.addItems(items)
        self.reference_combo.setCurrentText(keep if keep in classes else choice)
        self.reference_combo.blockSignals(False)
        self.reference_hint.setText(hint if self.reference_combo.currentText() not in classes or choice not in classes
                                    else "")

    def config(self) -> ExplainConfig:
        """ExplainConfig from the panel; DcmixError while no reference class is chosen."""
        reference = chosen_reference(self.reference_combo.currentText(), self.classes())
        train = replace(self.base_config, steps=self.steps.value(), epochs=None,
                        label_column=self.session.label_column)
        return ExplainConfig(reference=reference, folds=self.folds.value(), train=train)

    # --- running ------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self.job is not None

    @property
    def worker(self):
        """The running explain worker (None when idle): tests connect to its signals."""
        return self.job.worker if self.job is not None else None

    def _explain_clicked(self) -> None:
        if self.is_running:
            self.cancel()
        else:
            self.start()

    def start(self) -> None:
        """Explain every phenotype in a thread worker (a notification, nothing else, if it cannot start)."""
        from napari.utils.notifications import show_error

        from ...errors import DcmixError

        if self.is_running:
            return
        plate, labels = self.session.plate, dict(self.session.labels)
        problem = (NO_PLATE if plate is None else
                   f"{self.session.running} is running; wait for it or stop it"
                   if self.session.running not in (None, EXPLAIN_RUN) else None)
        try:
            config = None if problem else self.config()
        except DcmixError as err:
            problem = str(err)
        if problem:
            show_error(problem)
            return
        self._job, self._cancelled, self._said = ExplainJob(), False, set()
        self._job_plate = plate
        self.matrix_view.show(None)
        self._show_row(None)
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.status_label.setText("reading the plate…")
        self._set_running(True)
        self.session.begin_run(EXPLAIN_RUN)
        self.job = self.run(explain_updates, self._job, plate, labels, config, FOLD_THREADS,
                                 on_yield=self._on_event, on_finish=self._on_finished)

    def cancel(self) -> None:
        """Stop after the current step; the phenotypes already explained stay in the matrix."""
        if self.job is not None:
            self._cancelled = True
            self.explain_button.setEnabled(False)
            self.status_label.setText("cancelling… (keeping the finished rows)")
            self.job.cancel()

    def _set_running(self, running: bool) -> None:
        self.explain_button.setText("Cancel explain" if running else "Explain per phenotype")
        self.explain_button.setEnabled(True)
        for widget in (self.reference_combo, self.steps, self.folds, self.stains_view.button):
            widget.setEnabled(not running)

    def _on_event(self, event) -> None:
        inner = event.train_event
        if inner is not None and inner.kind == "notice":  # a tile larger than the sites…: said once per run
            if inner.message not in self._said:
                from napari.utils.notifications import show_warning

                self._said.add(inner.message)
                show_warning(inner.message)
            return
        self._latest = event
        if event.kind == "train":
            self._progress.request()  # fold models' steps: ≤ 4 redraws a second (each recomposes the window)
        else:
            self._progress.flush()  # a fold done, the panel, the end: at once
        if event.kind == "row" and self._job is not None and self._job.explainer is not None:
            self.show_matrix(self._job.explainer.result)

    def _show_progress(self) -> None:
        event = self._latest
        if event is None or self.job is None:
            return
        self.progress_bar.setValue(int(PROGRESS_STEPS * event.fraction))
        if not self._cancelled:
            self.status_label.setText(texts.progress_text(event))

    def _on_finished(self) -> None:
        job, run, self.job = self._job, self.job, None
        self._progress.cancel()
        self._latest = None
        failed = run is not None and run.failed is not None
        self._set_running(False)
        self.progress_bar.setVisible(False)
        self.session.end_run(EXPLAIN_RUN)
        explainer = job.explainer if job is not None else None
        if self.session.plate is not self._job_plate:  # the plate changed meanwhile: its rows are stale
            self.status_label.setText("explain stopped: another plate was opened")
            return
        matrix = explainer.result if explainer is not None else None
        if matrix is not None:
            self.show_matrix(matrix)
        panel = explainer.panel if matrix is not None and matrix.complete and not failed else None
        self.status_label.setText(texts.finished_text(matrix, self._cancelled, failed, panel))
        if panel is not None:
            self.session.set_model(panel)  # the phenotype panel: Apply predicts with it

    def finished_explainer(self):
        """The last explain run of the current plate, finished or not (the stain search reuses it when
        it finished with the same settings), or None."""
        job = self._job
        return job.explainer if job is not None and self._job_plate is self.session.plate else None

    # --- the matrix ---------------------------------------------------------------------------
    @property
    def matrix(self):
        """The PhenotypeMatrix shown (partial after Cancel; None before the first row)."""
        return self.matrix_view.matrix

    def show_matrix(self, matrix) -> None:
        """Draw ``matrix`` and list its rows (not-learned rows greyed, the reason in the tooltip)."""
        self.matrix_view.show(matrix)

    def draw(self) -> None:
        """Redraw the matrix shown (the theme changed)."""
        self.matrix_view.show(self.matrix)

    def select_row(self, phenotype: str) -> None:
        """Show ``phenotype``'s α and composite (what a click on its row does)."""
        names = [r.phenotype for r in self.matrix.rows] if self.matrix is not None else []
        self.row_list.setCurrentRow(names.index(phenotype))

    def _on_row_chosen(self, index: int) -> None:
        if self.matrix is None or not 0 <= index < len(self.matrix.rows):
            return
        row = self.matrix.rows[index]
        token = ("explain", id(self.matrix), row.phenotype)
        matrix = self.matrix
        snapshot = ImportanceSnapshot.of_row(row, matrix.channels, matrix.stats, matrix.reference, token)
        self._show_row(snapshot, texts.row_tooltip(row))
        self.session.set_importance(snapshot)

    def _show_row(self, snapshot: ImportanceSnapshot | None, reason: str = "") -> None:
        """The selected row's α bars (greyed when not learned) and why it is trusted or not."""
        self.selected = snapshot
        self.row_title.setText(snapshot.describe() if snapshot is not None else
                               "click a row of the matrix to see its α")
        self.reason_label.setText(reason)
        not_learned = snapshot is not None and snapshot.learned is False
        self.reason_label.setStyleSheet(f"color: {theme_colors(self.viewer).warning}" if not_learned else "")
        self.row_canvas.setVisible(snapshot is not None)
        if snapshot is not None:
            self.row_chart.show(snapshot)

    def bar_heights(self) -> dict[str, float]:
        """{channel: α} of the selected row, read from its drawn bars."""
        from ..importance.bars import ALPHA_GROUP, bar_heights

        return bar_heights(self.row_chart.ax, ALPHA_GROUP)

    def resizeEvent(self, event) -> None:
        """Wide (docked at the bottom, floating): the row's chart beside the matrix; narrow: below it."""
        wide = event.size().width() >= SIDE_BY_SIDE_PX
        self.columns.setDirection(QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom)
        super().resizeEvent(event)

    # --- exports ------------------------------------------------------------------------------
    def _choose_export(self, kind: str) -> None:
        path = ask_export_path(self, self.session, f"importance_per_phenotype.{kind}",
                               f"Export the matrix as {kind.upper()}")
        if path:
            self.export(**{f"{kind}_path": path})

    def export(self, csv_path=None, png_path=None) -> bool:
        """Write the matrix (CSV and/or PNG); refuses the plate folder, with a notification saying where."""
        from napari.utils.notifications import show_error

        if self.matrix is None or not self.matrix.rows:
            show_error("nothing to export yet: click Explain per phenotype first")
            return False
        paths = [p for p in (csv_path, png_path) if p is not None]
        return write_output(self.session, paths, "matrix", lambda: save_matrix(self.matrix, csv_path, png_path),
                            done="matrix written to " + " and ".join(str(p) for p in paths))

    # --- lifecycle ----------------------------------------------------------------------------
    def _on_plate_changed(self, *_) -> None:
        """Rows of another plate mean nothing here: stop a run and forget the matrix."""
        if self.is_running:
            self.cancel()
        self.stains_view.stop()
        self.stains_view.show_answer(None)
        self.matrix_view.show(None)
        self._show_row(None)
        self.refresh_classes()

    def _on_theme(self, *_) -> None:
        try:
            self.row_chart.restyle(theme_colors(self.viewer))
            self.stains_view.restyle()
            self._show_row(self.selected, self.reason_label.text())
            self.draw()
        except RuntimeError:  # the dock was deleted
            pass

    def on_teardown(self) -> None:
        """The dock ends: the job is cancelled (its finished rows are kept) and the Train dock freed."""
        self._cancelled = True
        self.session.end_run(EXPLAIN_RUN)

    def shutdown(self) -> None:
        """Cancel a run and wait for its thread (tests; the dock's teardown ends it otherwise)."""
        self._cancelled = True
        for job in (self.job, self.stains_view.job):
            if job is not None:
                job.stop()
