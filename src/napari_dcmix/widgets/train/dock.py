"""Train dock: settings, Start/Stop, live curves and progress; training runs in a napari thread worker.

The GUI thread only records events and redraws (throttled); the Trainer is built and run in the
worker. Stop (or closing the dock or napari) closes the generator, which keeps the best model so far.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ...errors import NO_PLATE, CheckpointError, DcmixError
from ...plate.label_book import class_well_counts
from ...training.config import TrainConfig, check_config
from ...training.snapshot import ImportanceSnapshot, best_round
from ...training import progress as logic
from ..forms import ConfigForm
from ..charts import make_canvas, run_progress_bar, theme_colors
from .curves_chart import CurvesChart
from ..composite import composite_layers, ensure_live_updates, update_composite
from ..dock_base import DcmixDock
from ..jobs import TORCH_THREADS
from ..session import TRAIN_RUN
from ..throttle import REDRAW_MS, Throttle
from .model_files import ModelFiles
from ...training.jobs import TrainJob, training_updates, warm_up_torch



#: pause between the one-off steps after Start (α chart, each composite layer, curves): each is its own
#: event-loop turn with a repaint between them, so none adds up to a long stall
PREPARE_TURN_MS = 15
#: resolution of the run's progress bar
PROGRESS_STEPS = 1000


def stopped_by_its_data(err: BaseException) -> bool:
    """A run its data stopped (too many sites lost, the storage gone): it kept its best model so far."""
    from ...errors import SourceUnavailable
    from ...training.site_losses import SitesLost

    return isinstance(getattr(err, "original", err), (SitesLost, SourceUnavailable))


class TrainWidget(DcmixDock):
    """Train a DCMIX (or baseline) classifier on the open plate's labels."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        ensure_live_updates(self.viewer, self.session)
        self.job = None             # the running training Job (tests wait on it)
        self._job: TrainJob | None = None
        self._curves = logic.Curves()
        self._stopping = False
        self._last_event = None
        self.base_config = TrainConfig()  # what the form does not set (coverage, classes, temperature…)
        self._build()
        events = self.session.events
        self.session.on_labels(self._refresh_labels)
        events.plate.connect(self._refresh_labels)
        events.label_column.connect(self._refresh_labels)
        self.viewer.events.theme.connect(self._on_theme)
        self._refresh_labels()
        self.warm_up = self.run(warm_up_torch)  # ends at once when already warm

    # --- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        box = QGroupBox("Labels")
        inner = QVBoxLayout(box)
        self.labels_label = QLabel()
        self.labels_label.setWordWrap(True)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(f"color: {theme_colors(self.viewer).warning}")
        inner.addWidget(self.labels_label)
        inner.addWidget(self.warning_label)
        layout.addWidget(box)

        # the settings, made from TrainConfig's field spec like the CLI's flags (same defaults, bounds, help)
        self.form = ConfigForm(notes={"device": logic.device_text})
        self.device_label = self.form.notes["device"].native  # "auto → cpu": what the choice means here
        layout.addWidget(self.form.native)

        self.files = ModelFiles(self)  # start from a saved model; save the trained one
        layout.addWidget(self.files)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("stop after the current step and keep the best model so far")
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout.addLayout(buttons)

        self.figure, self.canvas = make_canvas(260)
        self.chart = CurvesChart(self.canvas, theme_colors(self.viewer))
        self.loss_ax, self.acc_ax = self.chart.loss_ax, self.chart.acc_ax
        self._redraw = Throttle(self, self._refresh_view, REDRAW_MS)
        layout.addWidget(self.canvas)
        self.progress_bar = run_progress_bar(PROGRESS_STEPS)  # the dock's own, not napari's activity spinner
        layout.addWidget(self.progress_bar)
        self.status_label = QLabel("not trained yet")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        self.verdict_label = QLabel()  # held-out test accuracy and the honesty gate, beside α
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setVisible(False)
        layout.addWidget(self.verdict_label)
        self.save_button = self.files.save_button
        layout.addWidget(self.save_button)
        layout.addStretch(1)

    # --- labels -------------------------------------------------------------------------------
    def _refresh_labels(self, *_):
        book = self.session.book
        counts = book.counts_on(self.session.plate)
        if self.session.plate is None:
            self.labels_label.setText(NO_PLATE)
        elif not counts:
            self.labels_label.setText(f"label column '{self.session.label_column}': no labeled wells on this plate")
        else:
            order = [c for c in self.session.classes if c in counts] + [c for c in counts if c not in self.session.classes]
            self.labels_label.setText(f"label column '{self.session.label_column}': "
                                      + ", ".join(f"{c} ({counts[c]} wells)" for c in order))
        warnings = book.warnings(self.session.plate) if self.session.plate is not None else []
        self.warning_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warning_label.setVisible(bool(warnings))

    # --- model files (the ModelFiles panel's) ---------------------------------------------------
    @property
    def trained(self):
        """The last model this dock trained (what *Save model…* writes)."""
        return self.files.trained

    @property
    def init_model(self):
        """The model the next Start fine-tunes from (None: from scratch)."""
        return self.files.init_model

    def load_init_model(self, path) -> None:
        self.files.load_init_model(path)

    def clear_init_model(self) -> None:
        self.files.clear_init_model()

    def save_model(self, path) -> bool:
        return self.files.save_model(path)

    @property
    def curves(self):
        """The live curves of the current (or last) run: loss per step, accuracies per round."""
        return self._curves

    # --- training -----------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        return self.form.config(self.base_config, epochs=None, label_column=self.session.label_column)

    @property
    def is_training(self) -> bool:
        return self.job is not None

    @property
    def worker(self):
        """The running training worker (None when idle): tests connect to its signals."""
        return self.job.worker if self.job is not None else None

    def start(self) -> None:
        """Start training in a thread worker (notification and nothing else if it cannot start)."""
        if self.is_training:
            return
        plate, labels = self.session.plate, dict(self.session.labels)
        counts = class_well_counts(plate, labels)
        problem = logic.start_problem(plate, labels, counts)
        if problem is None and self.session.running not in (None, TRAIN_RUN):
            problem = f"{self.session.running} is running; wait for it or cancel it"
        if problem is None:
            try:  # the form's boxes keep each value in bounds; the rules between fields are the core's
                check_config(self.config(), name=lambda spec: spec.label)
            except DcmixError as err:
                problem = str(err)
        init, init_path = self.files.init_model, self.files.init_path
        if problem is None and init is not None:
            try:
                init.channel_order(plate.channels)
            except CheckpointError as err:
                problem = f"cannot fine-tune from {init_path.name if init_path else 'the model'}: {err}"
        if problem:
            from napari.utils.notifications import show_error

            show_error(problem)
            return
        self._job = TrainJob()
        self._curves, self._last_event = logic.Curves(), None
        self._stopping = False
        config = self.config()
        self.chart.reset(math.ceil(config.steps / max(1, min(config.eval_every, config.steps))),
                         loss_top=1.3 * math.log(max(2, len(counts))))
        self.verdict_label.setVisible(False)
        self.status_label.setText("reading the plate…")
        self._set_running(True)
        self.session.begin_run(TRAIN_RUN)
        self.job = self.run(training_updates, self._job, plate, labels, config, init, TORCH_THREADS,
                            on_yield=self._on_update, on_finish=self._on_finished)

    def stop(self) -> None:
        """Stop after the current step; the best model so far is kept and published."""
        if self.job is None:
            return
        self._stopping = True
        self.stop_button.setEnabled(False)
        self.status_label.setText("stopping… (keeping the best model so far)")
        self._release_run()
        self.job.cancel()

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.form.enabled = not running
        self.files.set_running(running)
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(running)

    def _on_update(self, event) -> None:
        """Record the event; the view (curves, status, progress bar) follows at ≤ 4 repaints a second."""
        if event.kind == "notice":  # said, training goes on (a tile larger than the sites, a halved batch)
            from napari.utils.notifications import show_warning

            return show_warning(event.message)
        self._last_event = event
        self._curves.add(event)
        if event.kind in ("start", "epoch") and event.snapshot is not None:
            self.session.set_importance(event.snapshot)  # live α every round: the chart and composite follow
        if event.kind == "start" and self._job is not None:
            job = self._job  # the α chart was drawn just now: the layers follow in later turns
            QTimer.singleShot(PREPARE_TURN_MS, lambda: self._prepare_view(job))
            return
        self._redraw.request()

    def _prepare_view(self, job) -> None:
        """Create the composite layers (one per event-loop turn: napari spends 50-100 ms on each) and draw
        the charts while the run waits for them; later rounds only change data in place, which stays
        cheap while training holds the CPU. Then the run goes on."""
        if job is not self._job or job.view_ready.is_set() or self._torn_down:
            return
        again = False
        try:
            before = len(composite_layers(self.viewer))
            layers = update_composite(self.viewer, self.session, max_new=1)
            again = len(layers) > before  # one more layer: its repaint gets a turn, then the next step
            if not again:
                self._redraw.flush()
        except RuntimeError:  # the dock or the viewer is going away: teardown releases the run
            return
        except Exception as err:  # noqa: BLE001 - a display problem must never hold training up
            from napari.utils.notifications import show_warning

            show_warning(f"could not show the DCMIX composite: {err}")
        finally:
            if not again:
                job.view_ready.set()
        if again:
            QTimer.singleShot(PREPARE_TURN_MS, lambda: self._prepare_view(job))

    def _refresh_view(self) -> None:
        event = self._last_event
        self.chart.update(self._curves)
        if event is None:
            return
        if not self._stopping:
            self.status_label.setText(logic.status_text(event))
        if event.total_steps:
            self.progress_bar.setValue(round(PROGRESS_STEPS * min(1.0, event.step / event.total_steps)))

    def _on_finished(self) -> None:
        job, run, self.job = self._job, self.job, None
        failed = run is not None and run.failed is not None
        self._set_running(False)
        self._redraw.flush()
        self.session.end_run(TRAIN_RUN)
        result = job.trainer.result if job is not None and job.trainer is not None else None
        if result is not None and not result.metadata.get("steps") and not failed:
            result = None  # stopped while the plate was read: an untrained model is no answer to show
        kept = failed and stopped_by_its_data(run.failed) and job.trainer.has_best_model
        if (failed and not kept) or result is None:
            self.status_label.setText("training failed; see the notification" if failed
                                      else "stopped before training began; no model")
            self.session.set_importance(ImportanceSnapshot.of_model(self.session.model))  # the model's α again
            return
        self.files.set_trained(result)
        if self._stopping or kept:  # Stop, or sites lost / the storage gone (the notification says which)
            best = best_round(result.metadata)
            self.status_label.setText("stopped: kept the best model so far" + (
                f" (evaluation {best}, step {result.metadata.get('best_step')})" if best
                else " (from before the first evaluation)"))
        self.show_verdict(result)
        self.session.set_model(result)

    def show_verdict(self, result) -> None:
        """The verdict line beside α: a model that learned nothing is flagged, never shown as an answer."""
        self.verdict_label.setText(ImportanceSnapshot.of_model(result).verdict_line(with_alpha=True))
        colors = theme_colors(self.viewer)
        self.verdict_label.setStyleSheet(f"color: {colors.warning}; font-weight: bold" if result.learned is False
                                         else "")
        self.verdict_label.setVisible(True)

    # --- drawing and lifecycle ----------------------------------------------------------------
    def _on_theme(self, *_):
        try:
            colors = theme_colors(self.viewer)
            self.warning_label.setStyleSheet(f"color: {colors.warning}")
            self.chart.restyle(colors)
        except RuntimeError:  # the dock was deleted; napari drops this callback once it is collected
            pass

    def _release_run(self) -> None:
        """A run waiting for the first draw must not wait for a dock that stops or goes away."""
        if self._job is not None:
            self._job.view_ready.set()

    def on_teardown(self) -> None:
        """Closing the dock, the viewer or Python: stop training (the best model so far is kept)."""
        self._stopping = True
        self._release_run()
        self.session.end_run(TRAIN_RUN)

    def shutdown(self) -> None:
        """Stop training and wait for the worker (tests; closing the dock or napari calls teardown)."""
        self._stopping = True
        self._release_run()
        self.jobs.stop_all()
