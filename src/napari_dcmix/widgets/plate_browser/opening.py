"""The one place a viewer opens a plate: index it, read its labels, publish both on the session.

Every door leads here — the plate browser's form, File > Open (the browser follows the reader's
layers), the demo's ``open_viewer`` — so each open publishes the plate once, with its labels, and the
docks update from that one ``events.plate``. What goes wrong is a napari notification that says
what to do; a plate whose labels cannot be read still opens, without labels.
"""

from __future__ import annotations

from pathlib import Path

from napari.utils import notifications

from ...errors import DcmixError
from ...plate import Plate, open_plate, read_labels
from ...plate.labels import Labels, guess_labels_csv
from .problems_panel import summary


def open_plate_into(session, path, pattern: str | None = None, labels_csv=None, column: str | None = None,
                    channel_names: str | None = None, indexed: Plate | None = None) -> Plate | None:
    """Open ``path`` with the labels in ``labels_csv`` (else the CSV that obviously belongs to a
    plate folder, if any) and publish them on ``session``; None when the plate cannot be opened.
    ``indexed`` is ``path`` already indexed (by File > Open's reader, or in the background for a URL):
    it is used, not indexed again."""
    if not path:
        notifications.show_warning("Choose the plate first: its folder (the … button next to 'Plate') or its URL.")
        return None
    try:
        plate = indexed if indexed is not None else open_plate(path, pattern, channel_names)
    except DcmixError as err:
        notifications.show_error(f"Could not open the plate: {err}")
        return None
    guessed = guess_labels_csv(plate.root) if labels_csv is None and plate.root is not None else None
    csv_path = Path(labels_csv or guessed).expanduser() if (labels_csv or guessed) else None
    labels = _read(csv_path, plate, column) if csv_path is not None else None
    session.open_plate(plate, pattern, labels, csv_path if labels is not None else None)
    if labels is not None and guessed:
        notifications.show_info(f"Loaded the labels in {guessed} (column '{labels.column}').")
    if plate.problems:
        notifications.show_warning(summary(plate.problems, "Plate opened"))
    return plate


def load_labels_into(session, path, column: str | None = None) -> bool:
    """Read the labels CSV ``path`` for the session's plate and publish them (``events.labels_file``, then ``events.labels``)."""
    labels = _read(Path(path).expanduser(), session.plate, column)
    if labels is None:
        return False
    session.load_labels(labels, Path(path).expanduser())
    return True


def _read(path: Path, plate: Plate, column: str | None) -> Labels | None:
    try:
        labels = read_labels(path, plate.sites, column)
    except DcmixError as err:
        notifications.show_error(f"Could not load the labels: {err}")
        return None
    if labels.problems:
        notifications.show_warning(summary(labels.problems, "Labels loaded"))
    return labels
