"""State the docks of one viewer share, as typed fields with one typed event each (psygnal, no Qt).

The plate browser opens plates, Train and Explain publish models and α, Apply streams predictions;
every dock reads the fields and listens to ``session.events``. No dock keeps its own copy of a field.

Rules that hold for every writer live here, not in the docks:

* **Opening a plate is one atomic update**: plate, pattern, labels, labels file, site (none), channel
  statistics (none yet) and predictions (none) are all in place before the single ``events.plate``;
  no listener ever sees the new plate with the old labels, and the reset fields say nothing of their own.
* **Importance follows the model**: a model set by any dock publishes its α (``events.importance``).
* **One model predicts**: ``prediction_model`` is the model Apply predicts with — the one trained or
  explained in this session (``model``), or a model file loaded in Apply when that is chosen
  (``file_model``); the plate browser's suggestions rank with the same one (``events.prediction_model``).
* **Suggestions follow the model and the labels**: the wells suggested for labelling were ranked by one
  model; another prediction model clears them (``events.suggestions``), and a well that gets a label
  leaves the list.
* **Edits made in place have their own events**: ``labels_assigned`` (wells relabelled), ``classes``
  (the class list edited), ``predictions_added`` (records streamed in); ``labels`` / ``predictions``
  say the whole field was replaced.
* **Writes happen on the GUI thread** (the thread that made the session): psygnal calls listeners in
  the emitting thread, so a worker writing here would run Qt code off the GUI thread. Such a write
  raises :class:`SessionThreadError`; workers yield, their dock writes.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Optional

from psygnal import Signal, SignalGroup

from ..plate import Plate, SiteKey
from ..plate.label_book import LabelBook
from ..plate.labels import Labels
from ..plate.stats import ChannelStats
from ..training.snapshot import ImportanceSnapshot
from ..training.suggest import WellSuggestions
from ..training.trained import TrainedModel


@dataclass(frozen=True, eq=False)
class LabelsFile:
    """The CSV the labels were last read from and what reading it found (column, problems)."""

    path: Path
    labels: Labels


# names of the files the docks read (DcmixSession.input_files), as the output errors say them
LABELS_FILE = "the labels file loaded in the plate browser"
APPLY_MODEL_FILE = "the model file loaded in Apply"
INIT_MODEL_FILE = "the model file the Train dock fine-tunes from"

#: the long runs that hold the plate's labels while they train (one at a time per viewer)
TRAIN_RUN, EXPLAIN_RUN = "training in the Train dock", "Explain per phenotype"

WellKey = tuple  # (plate id, well)


class SessionEvents(SignalGroup):
    """One event per field, each with the field's type as payload; plus the in-place edits."""

    plate = Signal(Optional[Plate])              # a plate opened (with its labels), or none
    site = Signal(Optional[SiteKey])             # the site shown in the viewer
    stats = Signal(Optional[ChannelStats])       # the open plate's statistics, computed in the background
    labels = Signal(LabelBook)                   # the labels replaced (a CSV loaded, a model's labels)
    labels_file = Signal(Optional[LabelsFile])   # another CSV (or column) was read
    label_column = Signal(str)
    labels_assigned = Signal(str, tuple, Optional[str])  # plate id, wells, class (None: unlabelled)
    classes = Signal(tuple)                      # the class list edited (added, renamed, removed)
    model = Signal(Optional[TrainedModel])       # the model trained or explained here; α is read from it
    file_model = Signal(Optional[TrainedModel])  # a model file loaded in Apply
    prediction_model = Signal(Optional[TrainedModel])  # what Apply predicts (and suggestions rank) with
    importance = Signal(Optional[ImportanceSnapshot])  # live or final α with its verdict
    predictions = Signal(dict)                   # every (plate, well) -> record replaced (or cleared)
    predictions_added = Signal(dict)             # records that just streamed in (plate, well) -> record
    running = Signal(Optional[str])              # the long run holding the labels (TRAIN_RUN…), or None
    suggestions = Signal(Optional[WellSuggestions])  # the wells to label next (ranked by the model), or none
    window_closed = Signal(bool)                 # the viewer's window closed: nothing may draw into it


class SessionThreadError(RuntimeError):
    """The session was written from a thread other than the GUI thread."""


class DcmixSession:
    """The shared state of one viewer's docks; read the properties, write through the methods."""

    def __init__(self, viewer=None):
        self.events = SessionEvents()
        self._viewer_ref = weakref.ref(viewer) if viewer is not None else (lambda: None)
        self._thread = threading.get_ident()
        self._plate: Plate | None = None
        self._pattern: str | None = None
        self._site: SiteKey | None = None
        self._stats: ChannelStats | None = None
        self._book = LabelBook()
        self._label_column = "label"
        self._labels_file: LabelsFile | None = None
        self._model: TrainedModel | None = None
        self._file_model: TrainedModel | None = None
        self._use_file_model = False
        self._importance: ImportanceSnapshot | None = None
        self._predictions: dict[WellKey, dict] = {}
        self._running: str | None = None
        self._suggestions: WellSuggestions | None = None
        self._suggestions_model: TrainedModel | None = None  # the model that ranked them
        self._window_closed = False
        self._input_files: dict[str, Path] = {}  # files the docks read, by a name the user knows

    # --- fields (read-only) -------------------------------------------------------------------
    @property
    def viewer(self):
        return self._viewer_ref()

    @property
    def plate(self) -> Plate | None:
        return self._plate

    @property
    def pattern(self) -> str | None:
        """The file-name pattern the plate was indexed with (None: guessed)."""
        return self._pattern

    @property
    def site(self) -> SiteKey | None:
        return self._site

    @property
    def stats(self) -> ChannelStats | None:
        """Plate-wide channel statistics (contrast, thumbnails); None until computed."""
        return self._stats

    @property
    def book(self) -> LabelBook:
        """The labels and the class list (read it; edit through the methods below)."""
        return self._book

    @property
    def labels(self) -> Mapping[tuple[str, str], str]:
        """(plate, well) -> class, read-only."""
        return MappingProxyType(self._book.labels)

    @property
    def classes(self) -> list[str]:
        """The class list in display order, some maybe without wells yet."""
        return list(self._book.classes)

    @property
    def label_column(self) -> str:
        return self._label_column

    @property
    def labels_file(self) -> LabelsFile | None:
        """Where the labels were last loaded from (None: not from a file)."""
        return self._labels_file

    @property
    def model(self) -> TrainedModel | None:
        return self._model

    @property
    def importance(self) -> ImportanceSnapshot | None:
        return self._importance

    @property
    def predictions(self) -> Mapping[WellKey, dict]:
        """(plate, well) -> {prediction, confidence, probabilities}, read-only."""
        return MappingProxyType(self._predictions)

    @property
    def running(self) -> str | None:
        """The long run (TRAIN_RUN, EXPLAIN_RUN) training on the labels now, or None."""
        return self._running

    @property
    def suggestions(self) -> WellSuggestions | None:
        """The unlabelled wells to label next, best first (None: none asked for, or the model changed)."""
        return self._suggestions

    @property
    def training(self) -> bool:
        return self._running is not None

    @property
    def window_closed(self) -> bool:
        return self._window_closed

    @property
    def input_files(self) -> Mapping[str, Path]:
        return MappingProxyType(self._input_files)

    def on_labels(self, callback) -> None:
        """Call ``callback`` whenever the labels or the class list change, however: replaced (a CSV, a
        model's labels), wells assigned, classes edited (a new plate has its own ``plate`` event)."""
        for event in (self.events.labels, self.events.labels_assigned, self.events.classes):
            event.connect(callback)

    def on_predictions(self, callback) -> None:
        """Call ``callback`` whenever the predictions change: replaced (or cleared) or streamed in."""
        self.events.predictions.connect(callback)
        self.events.predictions_added.connect(callback)

    # --- writes -------------------------------------------------------------------------------
    def _check_thread(self) -> None:
        if threading.get_ident() != self._thread:
            raise SessionThreadError("the dcmix session was written from a worker thread; workers yield "
                                     "results and their dock writes them on the GUI thread")

    def open_plate(self, plate: Plate | None, pattern: str | None = None, labels: Labels | None = None,
                   labels_path: Path | None = None) -> None:
        """Publish ``plate`` with ``labels`` (read from ``labels_path``), or none: the old plate's labels,
        classes, site, statistics and predictions mean nothing on it. One ``events.plate``, after all is in place."""
        self._check_thread()
        self._plate, self._pattern = plate, pattern
        self._site, self._stats, self._predictions = None, None, {}
        self._suggestions = self._suggestions_model = None
        self._take_labels(labels, labels_path)
        self.events.plate.emit(plate)

    def load_labels(self, labels: Labels, path: Path) -> None:
        """Replace the labels of the open plate by those just read from the CSV ``path``."""
        self._check_thread()
        column = self._label_column
        self._take_labels(labels, path)
        self.events.labels_file.emit(self._labels_file)
        if self._label_column != column:
            self.events.label_column.emit(self._label_column)
        self.events.labels.emit(self._book)
        self._drop_labelled_suggestions()

    def _take_labels(self, labels: Labels | None, path: Path | None) -> None:
        self._book.replace(labels.well_labels() if labels is not None else {}, reset_classes=True)
        self._label_column = labels.column if labels is not None else "label"
        self._labels_file = LabelsFile(Path(path), labels) if labels is not None and path is not None else None

    def set_labels(self, labels: dict[tuple[str, str], str], column: str | None = None,
                   reset_classes: bool = False) -> None:
        """Replace the labels by ``labels`` that came from no file (a CSV goes through :meth:`load_labels`);
        ``reset_classes`` forgets the classes of the old ones."""
        self._check_thread()
        self._book.replace(labels, reset_classes)
        if column and column != self._label_column:
            self._label_column = column
            self.events.label_column.emit(column)
        self.events.labels.emit(self._book)
        self._drop_labelled_suggestions()

    def assign_labels(self, plate: str, wells, cls: str | None) -> int:
        """Label ``wells`` of ``plate`` with ``cls`` (None: unlabel); how many wells."""
        self._check_thread()
        wells = tuple(wells)
        n = self._book.assign(plate, wells, cls)
        self.events.labels_assigned.emit(plate, wells, cls)
        self._drop_labelled_suggestions()
        return n

    def add_class(self, name: str) -> str | None:
        self._check_thread()
        name = self._book.add_class(name)
        self.events.classes.emit(tuple(self._book.classes))
        return name

    def add_classes(self, names) -> None:
        """Make sure every class in ``names`` is listed (a model predicts classes nobody labelled)."""
        self._check_thread()
        before = list(self._book.classes)
        self._book.add_classes(names)
        if self._book.classes != before:
            self.events.classes.emit(tuple(self._book.classes))

    def rename_class(self, old: str, new: str) -> bool:
        self._check_thread()
        renamed = self._book.rename_class(old, new)
        if renamed:
            self.events.classes.emit(tuple(self._book.classes))
        return renamed

    def remove_class(self, name: str) -> int:
        """Remove a class and unlabel its wells; how many were."""
        self._check_thread()
        used = self._book.remove_class(name)
        self.events.classes.emit(tuple(self._book.classes))
        return used

    def set_site(self, key: SiteKey | None) -> None:
        self._check_thread()
        self._site = key
        self.events.site.emit(key)

    def set_stats(self, plate: Plate, stats: ChannelStats | None) -> bool:
        """The statistics of ``plate``, computed in the background; ignored (False) if another plate is open."""
        self._check_thread()
        if plate is not self._plate:
            return False
        self._stats = stats
        self.events.stats.emit(stats)
        return True

    def set_model(self, model: TrainedModel | None) -> None:
        """The model trained or explained in this session; its α (with its verdict) becomes the shown importance."""
        self._check_thread()
        before = self.prediction_model
        self._model = model
        self.events.model.emit(model)
        self.set_importance(ImportanceSnapshot.of_model(model))
        self._prediction_model_changed(before)

    def set_file_model(self, model: TrainedModel | None) -> None:
        """A model file loaded in Apply (it predicts with it once :meth:`use_file_model` chooses it)."""
        self._check_thread()
        before = self.prediction_model
        self._file_model = model
        self.events.file_model.emit(model)
        self._prediction_model_changed(before)

    def use_file_model(self, use: bool) -> None:
        """Apply predicts with the loaded model file (True) or with the model trained here (False)."""
        self._check_thread()
        before = self.prediction_model
        self._use_file_model = bool(use)
        self._prediction_model_changed(before)

    @property
    def file_model(self) -> TrainedModel | None:
        return self._file_model

    @property
    def prediction_model(self) -> TrainedModel | None:
        """The model Apply predicts with: the loaded file when chosen, else the one trained here."""
        return self._file_model if self._use_file_model else self._model

    def _prediction_model_changed(self, before: TrainedModel | None) -> None:
        now = self.prediction_model
        if now is not before:
            self.events.prediction_model.emit(now)
        if self._suggestions is not None and now is not self._suggestions_model:
            self.set_suggestions(None)  # ranked by another model: they say nothing about this one

    def set_importance(self, snapshot: ImportanceSnapshot | None) -> None:
        """Publish live or final channel importance (α) so charts and the composite follow training."""
        self._check_thread()
        self._importance = snapshot
        self.events.importance.emit(snapshot)

    def set_predictions(self, predictions: dict[WellKey, dict]) -> None:
        """Replace every prediction (an empty dict clears them)."""
        self._check_thread()
        self._predictions = dict(predictions)
        self.events.predictions.emit(dict(self._predictions))

    def add_predictions(self, records: dict[WellKey, dict]) -> None:
        """Records that streamed in (new wells, or wells with more sites now)."""
        self._check_thread()
        if not records:
            return
        self._predictions.update(records)
        self.events.predictions_added.emit(dict(records))

    def set_suggestions(self, suggestions: WellSuggestions | None, model: TrainedModel | None = None) -> None:
        """The wells ``model`` suggests labelling next (None clears them); wells labelled by now are left out."""
        self._check_thread()
        if suggestions is not None:
            suggestions = suggestions.without(self._book.labels)
        self._suggestions, self._suggestions_model = suggestions, (model if suggestions is not None else None)
        self.events.suggestions.emit(suggestions)

    def _drop_labelled_suggestions(self) -> None:
        """A suggested well that got a label leaves the list (unlabelling one does not bring it back)."""
        if self._suggestions is None:
            return
        left = self._suggestions.without(self._book.labels)
        if len(left) != len(self._suggestions):
            self._suggestions = left
            self.events.suggestions.emit(left)

    def begin_run(self, name: str) -> str | None:
        """Claim the labels for the long run ``name``; why not (another run holds them), or None."""
        self._check_thread()
        if self._running is not None and self._running != name:
            return f"{self._running} is running; wait for it or stop it"
        self._running = name
        self.events.running.emit(name)
        return None

    def end_run(self, name: str) -> None:
        """Release the labels if ``name`` holds them (a dock that ends releases only its own run)."""
        self._check_thread()
        if self._running == name:
            self._running = None
            self.events.running.emit(None)

    def close_window(self) -> None:
        """The viewer's window closed (the docks saw it go): late refreshes must not draw."""
        self._check_thread()
        if not self._window_closed:
            self._window_closed = True
            self.events.window_closed.emit(True)

    # --- files the docks read -----------------------------------------------------------------
    def set_input_file(self, name: str, path) -> None:
        """Remember (or with None forget) a model file a dock has read, so that no dock overwrites it
        (the labels CSV is known as ``labels_file``)."""
        self._check_thread()
        if path is None:
            self._input_files.pop(name, None)
        else:
            self._input_files[name] = Path(path)

    def output_problem(self, path, what: str = "output", keep: tuple[str, ...] = ()) -> str | None:
        """Why a dock must not write ``path`` (inside the plate folder, or one of the files read, except
        those named in ``keep``), or None: the core's one output rule."""
        from .._io import output_problem

        files: dict[str, Any] = dict(self._input_files)
        if self._labels_file is not None:
            files[LABELS_FILE] = self._labels_file.path
        inputs = {name: p for name, p in files.items() if name not in keep}
        return output_problem(path, [self._plate.location if self._plate is not None else None], inputs, what)


# the one module-level registry of sessions: weak, so a closed viewer's session goes with it
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
