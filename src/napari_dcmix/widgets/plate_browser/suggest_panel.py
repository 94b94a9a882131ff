"""The plate browser's "Label these wells next" box: ask the session's model which unlabelled wells a
label would teach most, see them outlined on the plate map (the reason on hover), step through them.

Thin: the ranking is the core's (``training/suggest.py``), the list lives on the session (which drops
a well once it is labelled and clears the list when the model changes); this box shows that state and
forwards the user's intent to the dock, which runs the job.
"""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout

from ...training.suggest import MAX_SUGGESTIONS, RULE
from .viewer_hooks import NEXT_SUGGESTION_KEY, PREV_SUGGESTION_KEY

SUGGEST = "Suggest wells to label"
STOP = "Stop suggesting"


class SuggestPanel(QGroupBox):
    """Button + N, previous/next suggestion, a status line; intent goes out as signals."""

    suggest_requested = Signal(int)   # how many wells
    stop_requested = Signal()
    step_requested = Signal(str)      # "next" or "prev"

    def __init__(self, session, parent=None):
        super().__init__("Label these wells next", parent)
        self.session = session
        self.running = False
        self._note = ""
        self.button = QPushButton(SUGGEST, toolTip="Rank the unlabelled wells by what a label would teach the model "
                                  f"(the Train dock's model or the Explain dock's phenotype panel).\nRule: {RULE}.")
        self.button.clicked.connect(self._clicked)
        self.count = QSpinBox(toolTip="How many wells to suggest")
        self.count.setRange(1, MAX_SUGGESTIONS)
        self.count.setValue(8)
        self.prev_button = QPushButton("◀ Previous", toolTip=f"Show the previous suggested well ({PREV_SUGGESTION_KEY})")
        self.next_button = QPushButton("Next ▶", toolTip=f"Show the next suggested well ({NEXT_SUGGESTION_KEY})")
        self.prev_button.clicked.connect(lambda: self.step_requested.emit("prev"))
        self.next_button.clicked.connect(lambda: self.step_requested.emit("next"))
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.button, 1)
        row.addWidget(QLabel("N"))
        row.addWidget(self.count)
        layout.addLayout(row)
        steps = QHBoxLayout()
        steps.addWidget(QLabel("Suggested well:"))
        steps.addWidget(self.prev_button)
        steps.addWidget(self.next_button)
        layout.addLayout(steps)
        layout.addWidget(self.status)
        events = session.events
        events.prediction_model.connect(self._model_changed)
        events.plate.connect(self.refresh)
        events.suggestions.connect(self.refresh)
        self.refresh()

    def _clicked(self) -> None:
        if self.running:
            self.stop_requested.emit()
        else:
            self.suggest_requested.emit(self.count.value())

    def _model_changed(self, _model) -> None:
        if self.session.suggestions is not None:  # the session clears them right after this event
            self._note = "The model changed: its suggestions were cleared; click Suggest to rank with the new one."
        self.refresh()

    def set_running(self, running: bool, text: str = "") -> None:
        self.running = running
        if running:
            self._note = ""
        self.refresh()
        if text:
            self.status.setText(text)

    def refresh(self, *_) -> None:
        """Enable what can be done now and say where things stand."""
        session, suggestions = self.session, self.session.suggestions
        ready = session.prediction_model is not None and session.plate is not None
        self.button.setText(STOP if self.running else SUGGEST)
        self.button.setEnabled(self.running or ready)
        self.count.setEnabled(not self.running)
        for button in (self.prev_button, self.next_button):
            button.setEnabled(bool(suggestions))
        self.status.setText(self._status_text(ready, suggestions))

    def _status_text(self, ready: bool, suggestions) -> str:
        if self.running:
            return "ranking the unlabelled wells…"
        if suggestions is not None:
            left = (f"{len(suggestions)} suggested well{'s' if len(suggestions) != 1 else ''} left to label"
                    if len(suggestions) else "every suggested well is labelled now: retrain, then suggest again")
            return (f"{left} (ranked by {suggestions.model_name} among {suggestions.candidates} unlabelled wells); "
                    f"outlined in cyan on the plate map, hover a well for why, step with {NEXT_SUGGESTION_KEY}.")
        if self._note:
            return self._note
        if not ready:
            return ("Train a model (Train dock), run Explain per phenotype or load a model in Apply first: its "
                    "uncertainty picks the wells.")
        return "Which unlabelled wells would teach the model most? Click Suggest."
