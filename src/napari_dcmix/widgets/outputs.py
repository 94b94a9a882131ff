"""The one way a dock writes a file: the output rule, the write, one notification either way.

Every writer of every dock (model, labels, α CSV/PNG, matrix, predictions, plate map, montage) goes
through :func:`write_output`, so each refuses the plate folder and the files the docks read with the
same message (the core's ``_io.output_problem``, saying where to write instead), and a failure is one
notification that says what to do, never a traceback or half a file (the writers are atomic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from .._io import write_failure
from .jobs import notify_error


def write_output(session, paths: Path | str | Iterable, what: str, write: Callable[[], object], *,
                 keep: tuple[str, ...] = (), done: str | None = None) -> bool:
    """Check every path in ``paths`` against the session's output rule, then ``write()``; ``done`` is
    the notification once it is written. True when written."""
    from napari.utils.notifications import show_error, show_info

    paths = [paths] if isinstance(paths, (str, Path)) else [p for p in paths if p is not None]
    for path in paths:
        problem = session.output_problem(path, what, keep)
        if problem:
            show_error(problem)
            return False
    try:
        write()
    except OSError as err:  # a full disk, a folder without write permission: the user can fix it
        show_error(str(write_failure(err.filename or ", ".join(str(p) for p in paths), err)))
        return False
    except Exception as err:  # noqa: BLE001 - every failure becomes one notification
        notify_error(err)
        return False
    if done:
        show_info(done)
    return True


def ask_export_path(parent, session, file_name: str, title: str) -> str | None:
    """The save dialog of a CSV / PNG export, starting beside the plate folder (never in it); None
    when the user cancels."""
    from qtpy.QtWidgets import QFileDialog

    from .._io import default_export_path

    plate = session.plate
    default = default_export_path(plate.location if plate is not None else None, file_name)
    filters = "PNG image (*.png)" if file_name.endswith(".png") else "CSV table (*.csv)"
    path, _ = QFileDialog.getSaveFileName(parent, title, str(default), filters)
    return path or None
