"""The Train dock's model files: *Start from model…* (fine-tune a saved model) and *Save model…*.

A widget of its own (the init row; its ``save_button`` sits where the dock puts it) that holds the two
models it is about: the one to fine-tune from and the one the dock trained. It needs from the dock only
what it is given: the dock runs its loading job and owns the viewer's session.
"""

from __future__ import annotations

import functools
from pathlib import Path

from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from ..._io import default_model_path
from ...errors import CheckpointError
from ...training.jobs import load_model
from ..outputs import write_output
from ..session import INIT_MODEL_FILE

#: the last folder a model was saved to, proposed next time (by design for the whole process)
_last_save_folder: Path | None = None


class ModelFiles(QWidget):
    """Start from model / Save model for the Train dock ``dock`` (a DcmixDock: ``run``, ``session``)."""

    def __init__(self, dock):
        super().__init__()
        self.dock, self.session = dock, dock.session
        self.init_model = None      # fine-tune from this model on the next Start
        self.init_path: Path | None = None
        self.trained = None         # the last model the dock trained (what "Save model…" writes)
        self.loader = None          # the Job loading a model to fine-tune from
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.init_button = QPushButton("Start from model…")
        self.init_button.setToolTip("fine-tune a saved model on this plate (channels are matched by name)")
        self.init_button.clicked.connect(self._choose_init_model)
        self.init_label = QLabel("from scratch")
        self.clear_init_button = QPushButton("×")
        self.clear_init_button.setToolTip("train from scratch again")
        self.clear_init_button.setMaximumWidth(28)
        self.clear_init_button.clicked.connect(self.clear_init_model)
        self.clear_init_button.setEnabled(False)
        row.addWidget(self.init_button)
        row.addWidget(self.init_label, 1)
        row.addWidget(self.clear_init_button)
        self.save_button = QPushButton("Save model…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._choose_save_path)

    @property
    def loading(self) -> bool:
        """A model to fine-tune from is being loaded."""
        return self.loader is not None

    def set_running(self, running: bool) -> None:
        """Training runs: the model to start from cannot change."""
        self.init_button.setEnabled(not running)
        self.clear_init_button.setEnabled(not running and self.init_model is not None)

    def set_trained(self, model) -> None:
        """The model the dock just trained: what *Save model…* writes."""
        self.trained = model
        self.save_button.setEnabled(model is not None)

    # --- start from a model ---------------------------------------------------------------------
    def _choose_init_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Start from model", str(_last_save_folder or Path.home()),
                                              "napari-dcmix model (*.pt);;All files (*)")
        if path:
            self.load_init_model(path)

    def load_init_model(self, path) -> None:
        """Load a model to fine-tune from (in a job); a channel mismatch is reported, nothing changes."""
        self.loader = self.dock.run(load_model, path, on_return=functools.partial(self._init_loaded, Path(path)),
                                    on_finish=self._loader_finished)

    def _loader_finished(self) -> None:
        self.loader = None

    def _init_loaded(self, path: Path, model) -> None:
        from napari.utils.notifications import show_error

        plate = self.session.plate
        if plate is not None:
            try:
                model.channel_order(plate.channels)
            except CheckpointError as err:
                show_error(f"cannot fine-tune from {path.name}: {err}")
                return
        self.init_model, self.init_path = model, path
        self.session.set_input_file(INIT_MODEL_FILE, path)
        self.init_label.setText(f"fine-tune from {path.name} ({model.kind}, {', '.join(model.classes)})")
        self.clear_init_button.setEnabled(True)
        self.session.set_model(model)

    def clear_init_model(self) -> None:
        self.init_model = self.init_path = None
        self.session.set_input_file(INIT_MODEL_FILE, None)
        self.init_label.setText("from scratch")
        self.clear_init_button.setEnabled(False)

    # --- save -----------------------------------------------------------------------------------
    def _choose_save_path(self) -> None:
        global _last_save_folder
        if self.trained is None:
            return
        plate_root = self.session.plate.location if self.session.plate is not None else None
        default = default_model_path(plate_root, self.trained.kind, _last_save_folder)
        path, _ = QFileDialog.getSaveFileName(self, "Save model", str(default), "napari-dcmix model (*.pt)")
        if path and self.save_model(path):
            _last_save_folder = Path(path).parent

    def save_model(self, path) -> bool:
        """Save the trained model atomically; refuses paths inside the plate folder."""
        from napari.utils.notifications import show_error

        path = Path(path).expanduser()
        if path.suffix == "":
            path = path.with_suffix(".pt")
        if self.trained is None:
            show_error("no trained model to save; train one first")
            return False
        return write_output(self.session, path, "model", lambda: self.trained.save(path), done=f"model saved to {path}")
