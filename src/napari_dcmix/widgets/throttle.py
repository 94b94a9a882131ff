"""The one throttle of the docks: at most one call per interval, however often it is asked for.

Training rounds, streamed predictions and composite refreshes all arrive faster than a person can
read and cost GUI-thread time to draw; each view asks its :class:`Throttle` instead of drawing, and
draws at most once per interval, with one more call after the last request so the end state shows.
"""

from __future__ import annotations

from typing import Callable

#: a view that follows a run redraws at most this often (what a person can read; cheap while training)
MAX_REDRAWS_PER_S = 4
REDRAW_MS = 1000 // MAX_REDRAWS_PER_S


class Throttle:
    """Call ``callback`` at most once every ``interval_ms``. ``leading``: the first request runs at
    once (a chart answers the first round immediately); otherwise it runs after the interval (work that
    must not run inside the signal that asked for it, and that coalesces a burst into one call)."""

    def __init__(self, parent, callback: Callable[[], object], interval_ms: int, leading: bool = True):
        from qtpy.QtCore import QTimer

        self._callback = callback
        self._leading = leading
        self._timer = QTimer(parent)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(interval_ms))
        self._timer.timeout.connect(self._fire)
        self._pending = False

    @property
    def pending(self) -> bool:
        """A call is due (requested, not yet made)."""
        return self._pending

    def request(self) -> None:
        if self._timer.isActive():
            self._pending = True
            return
        if self._leading:
            self._pending = False
            self._callback()
        else:
            self._pending = True
        self._timer.start()

    def flush(self) -> None:
        """Call now (end of a run, tests)."""
        self._timer.stop()
        self._pending = False
        self._callback()

    def cancel(self) -> None:
        self._timer.stop()
        self._pending = False

    def _fire(self) -> None:
        if self._pending:
            self._pending = False
            self._callback()
            if self._leading:
                self._timer.start()
