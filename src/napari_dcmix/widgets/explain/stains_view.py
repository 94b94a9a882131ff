"""The Explain dock's *Which stains can I drop?* section: the stain search (``training/stains.py``) run in
a thread worker, its chart per phenotype (accuracy against panel size; channel x {alone, without}),
a button per channel that shows that channel alone as the composite (with its "alone" verdict), and
CSV / PNG exports. It shows the search and forwards clicks; every rule is the core's."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                            QVBoxLayout)

from ...errors import NO_PLATE, DcmixError
from ...training.config import parse_classes
from ...training.jobs import StainsJob, stains_updates
from ...training.snapshot import ImportanceSnapshot
from ...training.stains import StainsConfig, check_keep
from ...training.stains_figure import draw_stains, save_stains
from ..charts import add_run_controls, make_canvas, theme_colors
from ..jobs import FOLD_THREADS
from ..outputs import ask_export_path, write_output
from ..session import EXPLAIN_RUN

PROGRESS_STEPS = 1000
START_TEXT, STOP_TEXT = "Which stains can I drop?", "Stop stain search"


class StainsView(QGroupBox):
    """Keep field, start/stop, progress, the chart of the chosen phenotype, channel buttons, exports."""

    def __init__(self, dock):
        super().__init__("Which stains can I drop?")
        self.dock = dock
        self.job = None
        self._job: StainsJob | None = None
        self._stopped, self._job_plate = False, None
        self.answer = None
        layout = QVBoxLayout(self)
        self.intro = QLabel("Retrains the models on each stain alone, without each stain, and on the smallest "
                            "panel that is as good as all of them (many models: minutes to an hour).")
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        row = QHBoxLayout()
        self.keep_field = QLineEdit()
        self.keep_field.setPlaceholderText("stains to keep anyway, e.g. DNA")
        self.keep_field.setToolTip("comma-separated channels every panel keeps (e.g. the DNA stain that "
                                   "segmentation needs)")
        row.addWidget(QLabel("Keep"))
        row.addWidget(self.keep_field, 1)
        layout.addLayout(row)
        self.button, self.progress_bar, self.status_label = add_run_controls(
            layout, START_TEXT, "retrain on channel subsets (in the background) and check α against them",
            self._clicked, "not searched yet", PROGRESS_STEPS)
        self.phenotype_combo = QComboBox()
        self.phenotype_combo.setToolTip("the phenotype whose chart is shown")
        self.phenotype_combo.currentTextChanged.connect(lambda *_: self.draw())
        layout.addWidget(self.phenotype_combo)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        layout.addWidget(self.summary_label)
        self.figure, self.canvas = make_canvas(420)
        layout.addWidget(self.canvas)
        self.channel_row = QHBoxLayout()
        layout.addLayout(self.channel_row)
        self.channel_buttons: dict[str, QPushButton] = {}
        exports = QHBoxLayout()
        self.csv_button = QPushButton("Export stains CSV…")
        self.png_button = QPushButton("Export stains PNG…")
        self.csv_button.clicked.connect(lambda: self._choose_export("csv"))
        self.png_button.clicked.connect(lambda: self._choose_export("png"))
        exports.addWidget(self.csv_button)
        exports.addWidget(self.png_button)
        layout.addLayout(exports)
        self.show_answer(None)

    # --- running ------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self.job is not None

    def _clicked(self) -> None:
        if self.is_running:
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        """Run the stain search in a thread worker, reusing the dock's finished explain when it matches."""
        from napari.utils.notifications import show_error

        dock, session = self.dock, self.dock.session
        plate, labels = session.plate, dict(session.labels)
        problem = (NO_PLATE if plate is None else f"{session.running} is running; wait for it or stop it"
                   if session.running is not None else None)
        config = None
        try:
            if not problem:
                keep = parse_classes(self.keep_field.text()) or []
                check_keep(plate.channels, keep, what="Keep")
                config = StainsConfig(keep=keep, explain=dock.config())
        except DcmixError as err:
            problem = str(err)
        if problem:
            show_error(problem)
            return
        explained = None if dock.is_running else dock.finished_explainer()
        self._job, self._stopped, self._job_plate = StainsJob(), False, plate
        self.show_answer(None)
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.status_label.setText("starting the stain search…")
        self._set_running(True)
        session.begin_run(EXPLAIN_RUN)
        self.job = dock.run(stains_updates, self._job, plate, labels, config, explained, FOLD_THREADS,
                            on_yield=self._on_event, on_finish=self._on_finished)

    def stop(self) -> None:
        """Stop after the current step; the runs already finished stay in the chart."""
        if self.job is not None:
            self._stopped = True
            self.button.setEnabled(False)
            self.status_label.setText("stopping… (keeping the finished runs)")
            self.job.cancel()

    def _set_running(self, running: bool) -> None:
        self.button.setText(STOP_TEXT if running else START_TEXT)
        self.button.setEnabled(True)
        self.keep_field.setEnabled(not running)
        self.dock.explain_button.setEnabled(not running)

    def _on_event(self, event) -> None:
        self.progress_bar.setValue(int(PROGRESS_STEPS * event.fraction))
        if not self._stopped:
            inner = event.explain_event.train_event if event.explain_event is not None else None
            text = event.message or f"run {event.runs_done + 1}/{event.runs_total}: {event.label}"
            if event.kind == "train" and inner is not None and inner.total_steps:
                text += f", fold model {event.explain_event.model_index + 1}/{event.explain_event.total_models}, " \
                        f"step {inner.step}/{inner.total_steps}"
            self.status_label.setText(text)
        if event.kind == "figures" and self._job is not None and self._job.search is not None:
            self.show_answer(self._job.search.result)

    def _on_finished(self) -> None:
        job, run, self.job = self._job, self.job, None
        failed = run is not None and run.failed is not None
        self._set_running(False)
        self.progress_bar.setVisible(False)
        self.dock.session.end_run(EXPLAIN_RUN)
        if self.dock.session.plate is not self._job_plate:
            self.status_label.setText("stain search stopped: another plate was opened")
            return
        answer = job.search.result if job is not None and job.search is not None else None
        self.show_answer(answer)
        if answer is None:
            self.status_label.setText("the stain search failed; see the notification" if failed else
                                      "stain search stopped before any run finished")
        elif failed or not answer.complete:
            why = "by an error" if failed else "early"
            self.status_label.setText(f"stain search stopped {why}: kept the {answer.runs} runs that finished "
                                      "(the chart shows what they answer; no plate panel yet)")
        else:
            panel = ", ".join(answer.plate_panel) if answer.plate_panel else "no panel (no phenotype learned)"
            self.status_label.setText(f"done in {answer.seconds:.0f} s ({answer.runs} runs): the next assay needs "
                                      f"{panel}")

    # --- the answer ---------------------------------------------------------------------------
    def show_answer(self, answer) -> None:
        """Show ``answer`` (None: nothing yet): phenotype list, summary, chart and channel buttons."""
        self.answer = answer
        phenotypes = list(answer.phenotypes) if answer is not None else []
        keep = self.phenotype_combo.currentText()
        self.phenotype_combo.blockSignals(True)
        self.phenotype_combo.clear()
        self.phenotype_combo.addItems(phenotypes)
        if keep in phenotypes:
            self.phenotype_combo.setCurrentText(keep)
        self.phenotype_combo.blockSignals(False)
        self.phenotype_combo.setVisible(bool(phenotypes))
        self._rebuild_channel_buttons(answer.channels if answer is not None else [])
        for widget in (self.csv_button, self.png_button):
            widget.setEnabled(bool(phenotypes))
        self.draw()

    def _rebuild_channel_buttons(self, channels: list[str]) -> None:
        if list(self.channel_buttons) == channels:
            return
        for button in self.channel_buttons.values():
            self.channel_row.removeWidget(button)
            button.deleteLater()
        self.channel_buttons = {}
        for channel in channels:
            button = QPushButton(channel)
            button.setToolTip(f"show {channel} alone as the composite, with how well it tells the phenotype "
                              "from the reference by itself")
            button.clicked.connect(lambda _=False, c=channel: self.show_channel(c))
            self.channel_row.addWidget(button)
            self.channel_buttons[channel] = button

    def current(self):
        """The PhenotypeStains shown (None before the first run)."""
        name = self.phenotype_combo.currentText()
        return self.answer.phenotypes.get(name) if self.answer is not None else None

    def draw(self) -> None:
        colors = theme_colors(self.dock.viewer)
        stains = self.current()
        self.figure.set_facecolor(colors.background)
        if stains is None:
            self.summary_label.setText("")
            self.figure.clear()
            ax = self.figure.add_subplot()
            ax.axis("off")
            ax.text(0.5, 0.5, "click 'Which stains can I drop?'", ha="center", va="center", color=colors.text)
        else:
            self.summary_label.setText(summary_text(stains))
            plate = self.dock.session.plate
            draw_stains(self.figure, self.answer, colors.text, plate.channel_colors if plate is not None else None,
                        only=[stains.phenotype], background=colors.background, stacked=True)
            try:
                self.figure.tight_layout()
            except (ValueError, RuntimeError):  # a dock too small to lay out: drawn as is
                pass
        self.canvas.draw_idle()

    def show_channel(self, channel: str) -> None:
        """Publish ``channel`` alone as the session's importance snapshot: the composite becomes that
        channel, the Channel importance dock says how well it does alone for the chosen phenotype."""
        stains = self.current()
        if stains is None:
            return
        channels = list(self.answer.channels)
        alpha = np.zeros((1, len(channels)), np.float32)
        alpha[0, channels.index(channel)] = 1.0
        figures = stains.alone.get(channel)
        matrix = self.dock.matrix
        snapshot = ImportanceSnapshot(
            channels=channels, alpha=alpha, importance={c: float(c == channel) for c in channels},
            stats=matrix.stats if matrix is not None else None, kind="dcmix", final=True,
            token=("stains", id(self.answer), stains.phenotype, channel),
            verdict=figures.verdict_dict() if figures is not None else None,
            phenotype=f"{stains.phenotype}: {channel} alone", reference=self.answer.reference)
        self.dock.session.set_importance(snapshot)

    # --- exports ------------------------------------------------------------------------------
    def _choose_export(self, kind: str) -> None:
        path = ask_export_path(self, self.dock.session, f"stains.{kind}", f"Export the stain search as {kind.upper()}")
        if path:
            self.export(**{f"{kind}_path": path})

    def export(self, csv_path=None, png_path=None) -> bool:
        """Write the stain search (CSV and/or PNG); refuses the plate folder, with a notification."""
        from napari.utils.notifications import show_error

        if self.answer is None or not self.answer.phenotypes:
            show_error("nothing to export yet: click 'Which stains can I drop?' first")
            return False
        plate = self.dock.session.plate
        colors = plate.channel_colors if plate is not None else None
        paths = [p for p in (csv_path, png_path) if p is not None]
        return write_output(self.dock.session, paths, "stain search",
                            lambda: save_stains(self.answer, csv_path, png_path, colors),
                            done="stain search written to " + " and ".join(str(p) for p in paths))

    def restyle(self) -> None:
        self.draw()


def summary_text(stains) -> str:
    """One paragraph for the chosen phenotype: its smallest panel, what dropping costs, the warnings."""
    parts = [] if stains.full.learned else [f"{stains.phenotype}: NOT LEARNED with every stain "
                                            f"(held-out {stains.full.accuracy:.2f})"]
    if stains.smallest_panel:
        parts.append(f"smallest panel: {' + '.join(stains.smallest_panel)} ({stains.panel_reason})")
    elif stains.panel_reason:
        parts.append(f"smallest panel: none - {stains.panel_reason}")
    elif stains.curve:
        parts.append("smallest panel: searching…")
    needed = [c for c, v in stains.needed().items() if v]
    if stains.without:
        parts.append("cannot drop: " + (", ".join(needed) if needed else "none (each stain alone can go)"))
    for warning in (stains.agreement.warning if stains.agreement else None,
                    stains.second_opinion.warning if stains.second_opinion else None):
        if warning:
            parts.append(f"⚠ {warning}")
    second = stains.second_opinion
    if second is not None:
        top = max(second.shares, key=second.shares.get)
        parts.append(f"feature forest: {second.accuracy:.2f} out of fold, {top} on top ({second.shares[top]:.2f})"
                     + ("" if second.learned else ", NOT LEARNED"))
    return "\n".join(parts)
