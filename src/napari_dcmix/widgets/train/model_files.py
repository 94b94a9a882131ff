"""The Train dock's model files: *Start from model…* (fine-tune a saved model) and *Save model…*.

A mixin of :class:`~napari_dcmix.widgets.train.dock.TrainWidget` (it uses the dock's session, labels
and buttons), kept apart so the dock module holds the training itself.
"""

from __future__ import annotations

import functools
from pathlib import Path

from qtpy.QtWidgets import QFileDialog

from ...errors import CheckpointError
from ..._io import default_model_path
from ..jobs import notify_error
from ..session import INIT_MODEL_FILE
from ...training.jobs import load_model

_last_save_folder: Path | None = None


class ModelFilesMixin:
    """Start from model / Save model, for the Train dock."""
    def _choose_init_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Start from model", str(_last_save_folder or Path.home()),
                                              "napari-dcmix model (*.pt);;All files (*)")
        if path:
            self.load_init_model(path)

    def load_init_model(self, path) -> None:
        """Load a model to fine-tune from (in a worker); a channel mismatch is reported, nothing changes."""
        self._loader = self.run(load_model, path, on_return=functools.partial(self._init_loaded, Path(path)),
                                on_finish=lambda: setattr(self, "_loader", None))

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

    def _choose_save_path(self) -> None:
        global _last_save_folder
        if self.trained is None:
            return
        plate_root = self.session.plate.root if self.session.plate is not None else None
        default = default_model_path(plate_root, self.trained.kind, _last_save_folder)
        path, _ = QFileDialog.getSaveFileName(self, "Save model", str(default), "napari-dcmix model (*.pt)")
        if path:
            if self.save_model(path):
                _last_save_folder = Path(path).parent

    def save_model(self, path) -> bool:
        """Save the trained model atomically; refuses paths inside the plate folder."""
        from napari.utils.notifications import show_error, show_info

        path = Path(path).expanduser()
        if path.suffix == "":
            path = path.with_suffix(".pt")
        problem = self.session.output_problem(path, "model")
        if problem or self.trained is None:
            show_error(problem or "no trained model to save; train one first")
            return False
        try:
            self.trained.save(path)
        except Exception as err:  # noqa: BLE001 - every failure becomes a notification
            notify_error(err)
            return False
        show_info(f"model saved to {path}")
        return True
