"""Shared set-up for the train/importance dock tests: a tiny signal plate published on the session
directly (the plate browser is another dock), fast training settings, notification capture."""

from __future__ import annotations

from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtCore import QThreadPool

from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.widgets.session import get_session


def publish_signal_plate(viewer, tmp_path, channels: int = 3, signal_channel: int = 1):
    """Open a signal plate and put it, its labels and its first site on the viewer's session."""
    plate_dir, labels_csv = write_signal_plate(tmp_path / "signal", signal_channel=signal_channel, channels=channels)
    plate = open_plate(plate_dir, SIGNAL_PATTERN)
    labels = read_labels(labels_csv, plate.sites, "phenotype").well_labels()
    session = get_session(viewer)
    session.open_plate(plate, SIGNAL_PATTERN)
    session.set_labels(labels, "phenotype")
    session.set_site(plate.sites[0])
    return session, plate, labels


ROUND_STEPS = 20  # steps between held-out evaluations in the dock tests


def fast_settings(widget, rounds: int = 2, model: str = "dcmix") -> None:
    """Tiny training: ``rounds`` held-out evaluations of ROUND_STEPS steps each, no early stop."""
    from napari_dcmix.training import TrainConfig

    widget.base_config = TrainConfig(coverage=2)  # what the form does not set
    widget.form.set_values(model=model, tile=16, batch_size=16, steps=ROUND_STEPS * rounds, seed=0, device="cpu",
                           eval_every=ROUND_STEPS, patience=10_000)


def errors_since(start: int) -> list[str]:
    """Messages of error notifications dispatched after ``start`` records."""
    return [str(n.message) for n in notification_manager.records[start:]
            if n.severity == NotificationSeverity.ERROR]


def no_threads_left(timeout_ms: int = 5000) -> bool:
    pool = QThreadPool.globalInstance()
    pool.waitForDone(timeout_ms)
    return pool.activeThreadCount() == 0
