"""State the docks of one viewer share: the open plate, the current site, labels, model, predictions.

The plate dock publishes, the train/importance/apply docks listen. One session per viewer, so two
viewers in one process never see each other's plates. A plate arrives with its labels in one
``plate_changed`` (``plate_opening`` is the one place that opens plates), so no dock ever sees a new
plate with the old plate's labels.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtpy.QtCore import QObject, Signal

from ..plate import Plate, SiteKey
from ..plate.label_book import LabelBook
from ..plate.labels import Labels


@dataclass(frozen=True, eq=False)
class LabelsFile:
    """The CSV the labels were last read from and what reading it found (column, problems).

    A new object for every read, so a dock tells "a file was loaded" from "a well was relabelled"."""

    path: Path
    labels: Labels


# names of the files the docks read (DcmixSession.input_files), as the output errors say them
LABELS_FILE = "the labels file loaded in the plate browser"
APPLY_MODEL_FILE = "the model file loaded in Apply"
INIT_MODEL_FILE = "the model file the Train dock fine-tunes from"


class DcmixSession(QObject):
    plate_changed = Signal(object)        # Plate | None, its labels (self.labels, self.labels_file) already in place
    site_changed = Signal(object)         # SiteKey | None
    labels_changed = Signal()             # self.labels / self.label_column edited, or another CSV loaded
    model_changed = Signal(object)        # TrainedModel | None (see training.predictor)
    predictions_changed = Signal()        # self.predictions edited
    # live or final channel importance (training.snapshot.ImportanceSnapshot): every training round,
    # every model set by any dock, a clicked row of the per-phenotype matrix
    importance_changed = Signal(object)   # ImportanceSnapshot | None
    training_changed = Signal(bool)       # a train dock started (True) or finished (False) training

    def __init__(self, viewer=None):
        super().__init__()
        self._viewer_ref = weakref.ref(viewer) if viewer is not None else (lambda: None)
        self.plate: Plate | None = None
        self.pattern: str | None = None
        self.site: SiteKey | None = None
        self.book = LabelBook()                          # the labels and the class list: edit them below
        self.label_column: str = "label"
        self.labels_file: LabelsFile | None = None      # where the labels were last loaded from
        self.model: Any = None
        self.predictions: dict[tuple[str, str], dict] = {}  # (plate, well) -> {prediction, confidence, probabilities}
        self.importance = None                          # the latest ImportanceSnapshot (α + verdict)
        self.training: bool = False                     # a train dock is training (others may lock edits)
        self.window_closed: bool = False                # the viewer's window closed (docks saw it go)
        # files the docks have read, by a name the user knows: no dock may write over one (_io.output_problem)
        self.input_files: dict[str, Any] = {}

    @property
    def viewer(self):
        return self._viewer_ref()

    def set_plate(self, plate: Plate | None, pattern: str | None = None, labels: Labels | None = None,
                  labels_path: Path | None = None) -> None:
        """Publish ``plate`` with ``labels`` (read from ``labels_path``), or none: the old plate's labels,
        classes, site and predictions mean nothing on it. One ``plate_changed``, after all is in place."""
        self.plate, self.pattern = plate, pattern
        self.site = None
        self.predictions = {}
        self._take_labels(labels, labels_path)
        self.plate_changed.emit(plate)

    def load_labels(self, labels: Labels, path: Path) -> None:
        """Replace the labels of the open plate by those just read from the CSV ``path``."""
        self._take_labels(labels, path)
        self.labels_changed.emit()

    def _take_labels(self, labels: Labels | None, path: Path | None) -> None:
        self.book.replace(labels.well_labels() if labels is not None else {}, reset_classes=True)
        self.label_column = labels.column if labels is not None else "label"
        self.labels_file = LabelsFile(Path(path), labels) if labels is not None and path is not None else None

    def set_input_file(self, name: str, path) -> None:
        """Remember (or with None forget) a model file a dock has read, so that no dock overwrites it
        (the labels CSV is known as ``labels_file``)."""
        if path is None:
            self.input_files.pop(name, None)
        else:
            self.input_files[name] = path

    def output_problem(self, path, what: str = "output", keep: tuple[str, ...] = ()) -> str | None:
        """Why a dock must not write ``path`` (inside the plate folder, or one of the files read, except
        those named in ``keep``), or None: the core's one output rule."""
        from .._io import output_problem

        files = dict(self.input_files)
        if self.labels_file is not None:
            files[LABELS_FILE] = self.labels_file.path
        inputs = {name: p for name, p in files.items() if name not in keep}
        return output_problem(path, [self.plate.root if self.plate is not None else None], inputs, what)

    def set_site(self, key: SiteKey | None) -> None:
        self.site = key
        self.site_changed.emit(key)

    @property
    def labels(self) -> dict[tuple[str, str], str]:
        """(plate, well) -> class (read it; edit through the methods below, which say labels_changed)."""
        return self.book.labels

    @property
    def classes(self) -> list[str]:
        """The class list in display order, some maybe without wells yet."""
        return self.book.classes

    def set_labels(self, labels: dict[tuple[str, str], str], column: str | None = None,
                   reset_classes: bool = False) -> None:
        """Replace the labels by ``labels`` that came from no file (a CSV goes through :meth:`load_labels`);
        ``reset_classes`` forgets the classes of the old ones."""
        self.book.replace(labels, reset_classes)
        if column:
            self.label_column = column
        self.labels_changed.emit()

    def assign_labels(self, plate: str, wells, cls: str | None) -> int:
        """Label ``wells`` of ``plate`` with ``cls`` (None: unlabel); how many wells."""
        n = self.book.assign(plate, wells, cls)
        self.labels_changed.emit()
        return n

    def add_class(self, name: str) -> str | None:
        name = self.book.add_class(name)
        self.labels_changed.emit()
        return name

    def rename_class(self, old: str, new: str) -> bool:
        renamed = self.book.rename_class(old, new)
        if renamed:
            self.labels_changed.emit()
        return renamed

    def remove_class(self, name: str) -> int:
        """Remove a class and unlabel its wells; how many were."""
        used = self.book.remove_class(name)
        self.labels_changed.emit()
        return used

    def set_model(self, model: Any) -> None:
        self.model = model
        self.model_changed.emit(model)

    def set_importance(self, snapshot) -> None:
        """Publish live or final channel importance (α) so charts and the composite follow training."""
        self.importance = snapshot
        self.importance_changed.emit(snapshot)

    def set_training(self, running: bool) -> None:
        self.training = bool(running)
        self.training_changed.emit(self.training)

    def set_predictions(self, predictions: dict[tuple[str, str], dict]) -> None:
        self.predictions = dict(predictions)
        self.predictions_changed.emit()


_SESSIONS: "weakref.WeakKeyDictionary[Any, DcmixSession]" = weakref.WeakKeyDictionary()


def real_viewer(viewer):
    """Docks opened from the Plugins menu get a per-dock proxy of the viewer that dies with the dock:
    unwrap it, so weak references and the shared session live as long as the viewer itself."""
    return getattr(viewer, "__wrapped__", viewer)


def get_session(viewer) -> DcmixSession:
    """The session of ``viewer`` (one per viewer, however its docks were opened), created on first use."""
    viewer = real_viewer(viewer)
    session = _SESSIONS.get(viewer)
    if session is None:
        session = DcmixSession(viewer)
        _SESSIONS[viewer] = session
    return session
