"""State the docks of one viewer share: the open plate, the current site, labels, model, predictions.

The plate dock publishes, the train/importance/apply docks listen. One session per viewer, so two
viewers in one process never see each other's plates.
"""

from __future__ import annotations

import weakref
from typing import Any

from qtpy.QtCore import QObject, Signal

from ..plate import Plate, SiteKey


class DcmixSession(QObject):
    plate_changed = Signal(object)        # Plate | None
    site_changed = Signal(object)         # SiteKey | None
    labels_changed = Signal()             # self.labels / self.label_column edited
    model_changed = Signal(object)        # TrainedModel | None (see training.predictor)
    predictions_changed = Signal()        # self.predictions edited

    def __init__(self, viewer=None):
        super().__init__()
        self._viewer_ref = weakref.ref(viewer) if viewer is not None else (lambda: None)
        self.plate: Plate | None = None
        self.pattern: str | None = None
        self.site: SiteKey | None = None
        self.labels: dict[tuple[str, str], str] = {}   # (plate, well) -> class
        self.label_column: str = "label"
        self.classes: list[str] = []                    # editable class list, in display order
        self.model: Any = None
        self.predictions: dict[tuple[str, str], dict] = {}  # (plate, well) -> {prediction, confidence, probabilities}

    @property
    def viewer(self):
        return self._viewer_ref()

    def set_plate(self, plate: Plate | None, pattern: str | None = None) -> None:
        self.plate, self.pattern = plate, pattern
        self.site = None
        self.predictions = {}
        self.plate_changed.emit(plate)

    def set_site(self, key: SiteKey | None) -> None:
        self.site = key
        self.site_changed.emit(key)

    def set_labels(self, labels: dict[tuple[str, str], str], column: str | None = None) -> None:
        self.labels = dict(labels)
        if column:
            self.label_column = column
        for name in sorted(set(self.labels.values())):
            if name not in self.classes:
                self.classes.append(name)
        self.labels_changed.emit()

    def set_model(self, model: Any) -> None:
        self.model = model
        self.model_changed.emit(model)

    def set_predictions(self, predictions: dict[tuple[str, str], dict]) -> None:
        self.predictions = dict(predictions)
        self.predictions_changed.emit()


_SESSIONS: "weakref.WeakKeyDictionary[Any, DcmixSession]" = weakref.WeakKeyDictionary()


def get_session(viewer) -> DcmixSession:
    """The session of ``viewer``, created on first use."""
    session = _SESSIONS.get(viewer)
    if session is None:
        session = DcmixSession(viewer)
        _SESSIONS[viewer] = session
    return session
