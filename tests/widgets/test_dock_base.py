"""The dock base: one teardown however a dock ends, including a window the user closes after napari
asked for confirmation (the dock learns it from the window's hide, not from the close request)."""

from __future__ import annotations

from napari_dcmix.widgets.train.dock import TrainWidget


def shown_dock(make_napari_viewer, qtbot):
    """A Train dock in a shown viewer, its window watched: (dock, the window's watcher, the window)."""
    viewer = make_napari_viewer(show=True)
    dock = TrainWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Train")
    qtbot.waitUntil(lambda: dock.isVisible(), timeout=5000)
    watcher = dock.window_watcher
    watcher.watch()
    return dock, watcher, watcher.window


def test_a_confirmed_close_of_the_window_ends_the_dock(make_napari_viewer, qtbot):
    dock, watcher, window = shown_dock(make_napari_viewer, qtbot)
    assert window is not None and window is not dock
    watcher.close_requested()  # what a click on the window's X records before napari's dialog
    window.hide()  # the user confirmed: Qt hides the window (not spontaneously)
    assert dock.torn_down and dock.session.window_closed
    window.show()


def test_a_minimised_or_refused_close_leaves_the_dock_alone(make_napari_viewer, qtbot):
    dock, _, window = shown_dock(make_napari_viewer, qtbot)
    window.hide()  # hidden without a close request (a script hiding the window): not an ending
    window.show()
    assert not dock.torn_down and not dock.session.window_closed
