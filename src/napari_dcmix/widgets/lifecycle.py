"""Stop a dock's background work when its viewer window closes (the dock itself is destroyed later)."""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject


class WindowCloseWatcher(QObject):
    """Calls ``on_close`` when the top-level window holding ``owner`` receives a Close event."""

    def __init__(self, owner, on_close):
        super().__init__(owner)
        self._on_close = on_close
        self.window = None

    def watch(self) -> None:
        """(Re)attach to the owner's current window: docks move into the viewer after construction."""
        window = self.parent().window()
        if window is self.parent() or window is self.window:
            return
        if self.window is not None:
            self.window.removeEventFilter(self)
        window.installEventFilter(self)
        self.window = window

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Close:
            self._on_close()
        return False
