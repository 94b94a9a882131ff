"""Channel-importance dock: α as bars in the channel colours (live while training) with the model's
held-out verdict beside them (greyed when it learned nothing), α history, permutation importance as a
cross-check, exports and a side-by-side view of the DCMIX composite. *Explain per phenotype* is a dock
of its own (``widgets/explain``); the row chosen there is shown here too, through the session.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ...training.snapshot import ImportanceSnapshot, write_importance_csv
from ...errors import NO_PLATE
from ..charts import make_canvas, theme_colors
from .bars import ALPHA_GROUP, ImportanceChart, bar_heights
from ..composite import composite_layers, ensure_live_updates, set_side_by_side, viewer_grid
from ..dock_base import DcmixDock
from ..outputs import ask_export_path, write_output
from ...training.jobs import permutation_updates

class ImportanceWidget(DcmixDock):
    """Which channels the model relies on: α (or SE attention) and permutation importance."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        ensure_live_updates(self.viewer, self.session)
        napari_viewer = self.viewer
        self.permutation: dict | None = None    # the last permutation-importance result
        self._permutation_token = None          # the model it was computed for
        self._permutation_cancelled = False
        self.permutation_job = None
        self._build()
        self.session.events.importance.connect(self._on_importance)
        napari_viewer.events.theme.connect(self._on_theme)
        viewer_grid(napari_viewer).events.enabled.connect(self._sync_grid_button)
        self._on_importance(self.session.importance)  # the session's model set it already

    def _build(self) -> None:
        """Everything in a scroll area: a short window scrolls the dock instead of squashing the chart."""
        layout = QVBoxLayout(self.scroll_content())
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)
        self.verdict_label = QLabel()  # α is never shown without its held-out accuracy beside it
        self.verdict_label.setWordWrap(True)
        layout.addWidget(self.verdict_label)
        self.figure, self.canvas = make_canvas(240)
        self.chart = ImportanceChart(self.canvas, theme_colors(self.viewer))
        self.ax = self.chart.ax
        layout.addWidget(self.canvas)

        row = QHBoxLayout()
        self.history_button = QPushButton("α history")
        self.history_button.setCheckable(True)
        self.history_button.setToolTip("show α of every channel over the training epochs")
        self.history_button.toggled.connect(lambda *_: self._draw())
        self.side_by_side_button = QPushButton("Side by side")
        self.side_by_side_button.setCheckable(True)
        self.side_by_side_button.setToolTip("show the DCMIX composite and each channel in a grid")
        self.side_by_side_button.toggled.connect(self.set_side_by_side)
        row.addWidget(self.history_button)
        row.addWidget(self.side_by_side_button)
        layout.addLayout(row)

        self.permutation_button = QPushButton("Permutation importance")
        self.permutation_button.setToolTip("cross-check α: how much accuracy drops when each channel is shuffled")
        self.permutation_button.clicked.connect(self._permutation_clicked)
        layout.addWidget(self.permutation_button)
        self.permutation_label = QLabel()
        self.permutation_label.setWordWrap(True)
        layout.addWidget(self.permutation_label)

        row = QHBoxLayout()
        self.png_button = QPushButton("Export PNG…")
        self.csv_button = QPushButton("Export CSV…")
        self.png_button.clicked.connect(lambda: self._choose_export("png"))
        self.csv_button.clicked.connect(lambda: self._choose_export("csv"))
        row.addWidget(self.png_button)
        row.addWidget(self.csv_button)
        layout.addLayout(row)
        layout.addStretch(1)
        self._sync_grid_button()

    # --- chart --------------------------------------------------------------------------------
    @property
    def snapshot(self) -> ImportanceSnapshot | None:
        """What the chart shows: the session's importance (live α, a model's, a matrix row's)."""
        return self.session.importance

    def _on_importance(self, snapshot) -> None:
        token = snapshot.token if snapshot is not None else None
        if self.permutation is not None and token != self._permutation_token:
            self.permutation = None  # computed for another model: stale
            self.permutation_label.setText("")
        self._draw()

    def _draw(self) -> None:
        snapshot = self.snapshot
        if self.history_button.isChecked():
            self.chart.show_history(snapshot)
        else:
            self.chart.show(snapshot, self.permutation)
        self.info_label.setText(snapshot.describe() if snapshot is not None else
                                "no model yet: train one in the Train dock or load one")
        not_learned = snapshot is not None and snapshot.learned is False
        self.verdict_label.setText(snapshot.verdict_line() if snapshot is not None else "")
        self.verdict_label.setStyleSheet(f"color: {theme_colors(self.viewer).warning}; font-weight: bold"
                                         if not_learned else "")

    def bar_heights(self, group: str = ALPHA_GROUP) -> dict[str, float]:
        """{channel: bar height} of ``group`` (α or permutation), read from the drawn bars."""
        return bar_heights(self.ax, group)

    def bar_groups(self) -> list[str]:
        """Bar groups currently drawn (α, permutation), from the artists."""
        return sorted({p.get_gid() for p in self.ax.patches if p.get_gid()})

    # --- permutation importance ---------------------------------------------------------------
    def _permutation_clicked(self) -> None:
        if self.permutation_job is not None:
            self.cancel_permutation()
        else:
            self.start_permutation()

    def start_permutation(self) -> None:
        """Measure permutation importance of the session's model on the open plate, in a worker."""
        from napari.utils.notifications import show_error

        model, plate, labels = self.session.model, self.session.plate, dict(self.session.labels)
        problem = ("no model yet: train one or load one first" if model is None else
                   NO_PLATE if plate is None else
                   "no wells are labeled; permutation importance needs labeled wells" if not labels else None)
        if problem:
            show_error(problem)
            return
        self._permutation_token = ImportanceSnapshot.of_model(model).token
        self._permutation_cancelled = False
        self.permutation_button.setText("Cancel permutation importance")
        self.permutation_label.setText("shuffling each channel in turn…")
        self.permutation_job = self.run(permutation_updates, model, plate, labels,
                                        on_yield=self._on_permutation_progress,
                                        on_finish=self._on_permutation_finished,
                                        progress="permutation importance", total=len(model.channels))

    def cancel_permutation(self) -> None:
        if self.permutation_job is not None:
            self._permutation_cancelled = True
            self.permutation_job.cancel()
            self.permutation_label.setText("cancelling…")

    def _on_permutation_progress(self, event) -> None:
        if event.result is None:
            self.permutation_label.setText(f"permutation importance: {event.done}/{event.total} channels")
        elif (self.snapshot.token if self.snapshot else None) != self._permutation_token:
            self.permutation_label.setText("the model changed meanwhile; run permutation importance again")
        else:
            self.permutation = event.result
            self.permutation_label.setText(f"permutation importance: baseline accuracy "
                                           f"{100 * event.result['baseline_accuracy']:.0f}% on "
                                           f"{event.result.get('tiles', '?')} tiles")
            self.history_button.setChecked(False)
            self._draw()
        if self.permutation_job is not None:  # last: napari's progress bar runs processEvents
            self.permutation_job.advance_to(event.done)

    def _on_permutation_finished(self) -> None:
        self.permutation_job = None
        self.permutation_button.setText("Permutation importance")
        if self._permutation_cancelled:
            self.permutation_label.setText("permutation importance cancelled")

    # --- side by side, exports ----------------------------------------------------------------
    def set_side_by_side(self, enabled: bool) -> None:
        """Grid view: the composite and every channel in its own panel (and back)."""
        set_side_by_side(self.viewer, enabled)
        if enabled and not composite_layers(self.viewer):
            from napari.utils.notifications import show_info

            show_info("no DCMIX composite yet: it appears with a DCMIX model and a selected well")

    def _sync_grid_button(self, *_):
        try:
            self.side_by_side_button.blockSignals(True)
            self.side_by_side_button.setChecked(bool(viewer_grid(self.viewer).enabled))
            self.side_by_side_button.blockSignals(False)
        except RuntimeError:  # the dock was deleted; napari drops this callback once it is collected
            pass

    def _on_theme(self, *_):
        try:
            self.chart.restyle(theme_colors(self.viewer))
            self._draw()
        except RuntimeError:  # the dock was deleted
            pass

    def _choose_export(self, kind: str) -> None:
        path = ask_export_path(self, self.session, f"channel_importance.{kind}", f"Export {kind.upper()}")
        if path:
            (self.export_png if kind == "png" else self.export_csv)(path)

    def export_png(self, path) -> bool:
        """Save the chart as shown (theme colours), atomically."""
        from ..._io import atomic_write

        def write():
            with atomic_write(Path(path), "wb") as handle:
                self.figure.savefig(handle, format="png", dpi=150, facecolor=self.figure.get_facecolor())
            self.chart.blitter.full()  # the on-screen background must come from an on-screen draw

        return write_output(self.session, path, "chart", write)

    def export_csv(self, path) -> bool:
        """channel, alpha, permutation_drop, permutation_normalized; atomic."""
        from napari.utils.notifications import show_error

        rows = self.snapshot.csv_rows(self.permutation) if self.snapshot is not None else []
        if not rows:
            show_error("nothing to export yet: train or load a model first")
            return False
        return write_output(self.session, path, "importance CSV", lambda: write_importance_csv(path, rows))

    # --- lifecycle ----------------------------------------------------------------------------
    def on_teardown(self) -> None:
        """Closing the dock, the viewer or Python: cancel permutation importance."""
        self._permutation_cancelled = True
