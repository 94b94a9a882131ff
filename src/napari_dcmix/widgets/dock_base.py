"""The base of every dock: the real viewer, the viewer's shared session, the jobs the dock owns, and one
teardown reached from every way a dock ends — dock closed, viewer window closed, application quitting,
Qt deleting the widget, interpreter exit (see :func:`.jobs.stop_every_job`).
"""

from __future__ import annotations

import weakref
from functools import partial

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QWidget

from .jobs import Job, JobSet
from .session import get_session, real_viewer


def _end_jobs(jobs: JobSet, *_args) -> None:
    """A plain function (never the dock): it runs while Qt deletes the dock."""
    jobs.stop_all(detach=True)


class _WindowCloseWatcher(QObject):
    """Tells the dock when the top-level window holding it receives a Close event."""

    def __init__(self, dock: "DcmixDock"):
        super().__init__(dock)
        self._window = lambda: None  # weak: a dock kept by a script must not keep the viewer's window
        self._close_asked = False

    @property
    def window(self):
        return self._window()

    def watch(self) -> None:
        """(Re)attach to the dock's current window: docks move into the viewer after construction."""
        window, current = self.parent().window(), self.window
        if window is self.parent() or window is current:
            return
        if current is not None:
            current.removeEventFilter(self)
        window.installEventFilter(self)
        self._window = weakref.ref(window)

    def close_requested(self) -> None:
        """The user clicked the window's close button: the dock ends if the window then hides."""
        self._close_asked = True

    def eventFilter(self, obj, event) -> bool:
        if obj is not self.window:
            return False
        kind = event.type()
        if kind == QEvent.Type.Close:
            if event.spontaneous():  # the user's click: napari may ask first, and the user may say no
                self.close_requested()
            else:  # viewer.close(), napari quitting: nobody can say no
                self.parent().window_closed()
        elif kind == QEvent.Type.Hide and self._close_asked and not event.spontaneous():
            self.parent().window_closed()  # the close went through (minimising hides spontaneously)
        elif kind in (QEvent.Type.Show, QEvent.Type.WindowActivate):
            self._close_asked = False  # the user said no: the window is still there
        return False


class DcmixDock(QWidget):
    """Subclasses build their widgets, start background work with :meth:`run`, and put their own
    clean-up in :meth:`on_teardown`; :meth:`teardown` runs once, however the dock ends."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = real_viewer(napari_viewer)  # not the per-dock proxy napari hands to plugins
        self.session = get_session(self.viewer)
        self.jobs = JobSet()
        self._docked = self._torn_down = False
        self.window_watcher = _WindowCloseWatcher(self)  # tells the dock when the viewer's window closes
        self.destroyed.connect(partial(_end_jobs, self.jobs))  # application quit: jobs.stop_every_job

    def run(self, func, *args, **kwargs) -> Job:
        """Run ``func(*args)`` (a function or generator) as a job of this dock; see :class:`.jobs.Job`."""
        self.window_watcher.watch()
        return self.jobs.run(func, *args, **kwargs)

    def scroll_content(self, sideways: bool = False) -> QWidget:
        """A scroll area filling the dock; returns the widget to lay the dock out in (a short window
        scrolls the dock instead of squashing it; sideways too only when ``sideways``)."""
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        if not sideways:
            self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        content = QWidget()
        self.scroll_area.setWidget(content)
        outer.addWidget(self.scroll_area)
        return content

    @property
    def torn_down(self) -> bool:
        """The dock has ended (closed, its window closed, the application quitting)."""
        return self._torn_down

    def teardown(self) -> None:
        """End every job (waiting for its thread) and the subclass's hooks; idempotent."""
        if self._torn_down:
            return
        self._torn_down = True
        try:
            self.on_teardown()
        finally:
            self.jobs.stop_all()

    def on_teardown(self) -> None:
        """What a subclass undoes when it ends (key bindings, session flags); jobs end after it."""

    def window_closed(self) -> None:
        """The viewer's window closed: nothing may draw into it any more, and the dock ends."""
        self.session.close_window()
        self.teardown()

    def showEvent(self, ev) -> None:
        self.window_watcher.watch()
        super().showEvent(ev)

    def event(self, ev) -> bool:
        """Closing a dock orphans its widget (napari sets the parent to None): that ends the dock."""
        if ev.type() == QEvent.Type.ParentChange:
            if self.parent() is not None:
                self._docked = True
                self._torn_down = False  # docked again (napari re-adds a closed dock from its menu)
            elif self._docked:
                self.teardown()
        return super().event(ev)
