"""The plate browser's background work: plate statistics, then well thumbnails, each in a napari
job of the dock, so the viewer never waits for pixels it is not showing.

Results are tagged with the plate they belong to; a job of a plate that was replaced may still
deliver a late result, which is then ignored. ``shutdown`` cancels and joins every job.
"""

from __future__ import annotations

import numpy as np
from napari.utils import notifications
from qtpy.QtGui import QImage

from typing import Callable

from ...plate import Plate
from ...plate.stats import ChannelStats
from ..jobs import stop_jobs
from ...figures.thumbnails import thumbnail_size, thumbnail_stream


def _tagged(tag: int, stream):
    for item in stream:
        yield (tag, *item)


def _stats_job(tag: int, plate: Plate):
    return tag, plate, plate.channel_stats()


def to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class PlateBackground:
    """Statistics then thumbnails of one plate, as jobs of the dock; results reach the callbacks on
    the GUI thread. It keeps what it computes for the view (the thumbnail images), never the
    session's state: the plate and its statistics are handed in and go back through ``on_stats``."""

    def __init__(self, owner, on_stats: Callable[[Plate, ChannelStats], None],
                 on_thumbnail: Callable[[str, str, "QImage | None", "str | None"], None]):
        self.owner = owner                # the dock: its jobs end with it
        self.jobs: list = []              # this plate's Jobs still running (or not yet delivered)
        self.thumbs: dict[tuple[str, str], QImage] = {}
        self._on_stats_ready, self._on_thumbnail_ready = on_stats, on_thumbnail
        self._tag = 0
        self._stats_pending = False

    def _track(self, job) -> None:
        self.jobs[:] = [j for j in self.jobs if j.running]
        self.jobs.append(job)

    def busy(self) -> bool:
        """True while statistics or thumbnails are still being computed (or not yet delivered)."""
        return self._stats_pending or any(j.running for j in self.jobs)

    @property
    def thumbnails_running(self) -> bool:
        return any(getattr(j, "is_thumbnails", False) and j.running for j in self.jobs)

    def cancel(self) -> None:
        """Forget the current plate: its workers are asked to quit (not awaited), late results ignored."""
        for job in self.jobs:
            job.cancel()
        self._tag += 1
        self._stats_pending = False
        self.thumbs.clear()

    def start(self, plate: Plate) -> None:
        """Compute ``plate``'s statistics in the background; ``on_stats(plate, stats)`` gets them."""
        self.cancel()
        self._stats_pending = True
        self._track(self.owner.run(_stats_job, self._tag, plate, on_return=self._on_stats, on_error=self._on_error))

    def _on_stats(self, result) -> None:
        tag, plate, stats = result
        if tag != self._tag:
            return
        self._stats_pending = False
        self._on_stats_ready(plate, stats)

    def start_thumbnails(self, plate: Plate, stats: ChannelStats | None, plate_id: str, wells) -> bool:
        """Thumbnails of ``wells`` of ``plate_id`` not already made; needs the statistics first."""
        if stats is None:
            return False
        self.stop_thumbnails()
        todo = [(plate_id, w) for w in sorted(wells) if (plate_id, w) not in self.thumbs]
        if not todo:
            return False
        stream = thumbnail_stream(plate, todo, stats, thumbnail_size(plate.format.wells))
        job = self.owner.run(_tagged, self._tag, stream, on_yield=self._on_thumbnail, on_error=self._on_error)
        job.is_thumbnails = True
        self._track(job)
        return True

    def stop_thumbnails(self) -> None:
        """Cancel the sweep: it ends after the well it is reading."""
        for job in self.jobs:
            if getattr(job, "is_thumbnails", False):
                job.cancel()

    def _on_thumbnail(self, item) -> None:
        tag, plate_id, well, rgb, problem = item
        if tag != self._tag:
            return
        image = to_qimage(rgb) if rgb is not None else None
        if image is not None:
            self.thumbs[(plate_id, well)] = image
        self._on_thumbnail_ready(plate_id, well, image, problem)

    def _on_error(self, err) -> None:
        self._stats_pending = False
        notifications.show_error(f"Background reading of the plate stopped: {err}. "
                                 "Clicking wells still works; re-open the plate to retry.")

    def shutdown(self) -> None:
        """Cancel every job of this plate and wait for its thread."""
        jobs, self.jobs = list(self.jobs), []
        stop_jobs(jobs)
        self._stats_pending = False
