"""The plate browser's background work: plate statistics, then well thumbnails, each in a napari
``thread_worker``, so the viewer never waits for pixels it is not showing.

Results are tagged with the plate they belong to; a worker of a plate that was replaced may still
deliver a late result, which is then ignored. ``shutdown`` cancels and joins every worker.
"""

from __future__ import annotations

import numpy as np
from napari.utils import notifications
from qtpy.QtCore import QObject, Signal
from qtpy.QtGui import QImage

from ..plate import Plate
from .thumbnails import start_worker, thumbnail_size, thumbnail_stream


class BackgroundError(Exception):
    """A failure inside a background sweep, under a type superqt reports (it drops RuntimeErrors
    raised by generators silently: no ``errored``, no ``finished``)."""


def _tagged(tag: int, stream):
    try:
        for item in stream:
            yield (tag, *item)
    except RuntimeError as err:
        raise BackgroundError(f"{type(err).__name__}: {err}") from err


def _stats_job(tag: int, plate: Plate):
    return tag, plate.channel_stats()


def to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def shutdown(workers: list, wait: bool = True) -> None:
    """Ask every worker to quit, then (``wait``) join them. A plain function: it may run while Qt
    destroys the widget that owned the workers."""
    for handle in list(workers):
        handle.worker.quit()
    if wait:
        for handle in list(workers):
            handle.stop()
        workers.clear()


class PlateBackground(QObject):
    """Statistics then thumbnails of one plate; emits results on the GUI thread."""

    stats_ready = Signal(object)                     # ChannelStats of the current plate
    thumbnail_ready = Signal(str, str, object, object)  # plate id, well, QImage | None, problem | None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.workers: list = []           # WorkerHandles; shared with the owner's destroyed handler
        self.thumbs: dict[tuple[str, str], QImage] = {}
        self.plate: Plate | None = None
        self.stats = None
        self._tag = 0
        self._stats_pending = False

    def _track(self, handle) -> None:
        self.workers[:] = [h for h in self.workers if h.running]
        self.workers.append(handle)

    def busy(self) -> bool:
        """True while statistics or thumbnails are still being computed (or not yet delivered)."""
        return self._stats_pending or any(h.running for h in self.workers)

    @property
    def thumbnails_running(self) -> bool:
        return any(getattr(h, "is_thumbnails", False) and h.running for h in self.workers)

    def cancel(self) -> None:
        """Forget the current plate: its workers are asked to quit (not awaited), late results ignored."""
        shutdown(self.workers, wait=False)
        self._tag += 1
        self.plate, self.stats, self._stats_pending = None, None, False
        self.thumbs.clear()

    def start(self, plate: Plate) -> None:
        """Compute ``plate``'s statistics, then (on request) its thumbnails, in the background."""
        self.cancel()
        self.plate = plate
        self._stats_pending = True
        self._track(start_worker(_stats_job, self._tag, plate, on_return=self._on_stats, on_error=self._on_error))

    def _on_stats(self, result) -> None:
        tag, stats = result
        if tag != self._tag:
            return
        self._stats_pending = False
        self.stats = stats
        self.stats_ready.emit(stats)

    def start_thumbnails(self, plate_id: str, wells) -> bool:
        """Thumbnails of ``wells`` of ``plate_id`` not already made; needs the statistics first."""
        if self.plate is None or self.stats is None:
            return False
        self.stop_thumbnails()
        todo = [(plate_id, w) for w in sorted(wells) if (plate_id, w) not in self.thumbs]
        if not todo:
            return False
        stream = thumbnail_stream(self.plate, todo, self.stats, thumbnail_size(self.plate.format.wells))
        handle = start_worker(_tagged, self._tag, stream, on_yield=self._on_thumbnail, on_error=self._on_error)
        handle.is_thumbnails = True
        self._track(handle)
        return True

    def stop_thumbnails(self) -> None:
        """Cancel the sweep (``worker.quit()``): it ends after the well it is reading."""
        for handle in self.workers:
            if getattr(handle, "is_thumbnails", False):
                handle.worker.quit()

    def _on_thumbnail(self, item) -> None:
        tag, plate_id, well, rgb, problem = item
        if tag != self._tag:
            return
        image = to_qimage(rgb) if rgb is not None else None
        if image is not None:
            self.thumbs[(plate_id, well)] = image
        self.thumbnail_ready.emit(plate_id, well, image, problem)

    def _on_error(self, err) -> None:
        self._stats_pending = False
        notifications.show_error(f"Background reading of the plate stopped: {err}. "
                                 "Clicking wells still works; re-open the plate to retry.")

    def shutdown(self, wait: bool = True) -> None:
        shutdown(self.workers, wait)
        self._stats_pending = False
