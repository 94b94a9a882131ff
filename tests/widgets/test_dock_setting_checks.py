"""The docks refuse the same settings as the CLI with the same words (one rule in the core): the Train
dock's fractions that leave no well to train on, a tile larger than the sites (a warning while
training goes on), the plate browser's glued channel renames."""

from __future__ import annotations

from dcmix_dock_helpers import errors_since, fast_settings, no_threads_left, publish_signal_plate
from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtCore import Qt

from conftest import write_imagexpress
from napari_dcmix.widgets.train.dock import TrainWidget


def test_train_dock_refuses_fractions_that_leave_no_well(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    publish_signal_plate(viewer, tmp_path)
    fast_settings(widget)
    widget.form.set_values(val_fraction=0.5, test_fraction=0.5)
    start = len(notification_manager.records)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.worker is None  # nothing started
    assert errors_since(start) == ["validation fraction 0.5 and test fraction 0.5 leave no well to train on; "
                                   "together they must be below 1"]
    widget.shutdown()
    assert no_threads_left()


def test_train_dock_warns_of_a_tile_larger_than_the_sites(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    publish_signal_plate(viewer, tmp_path)  # 32 px sites
    fast_settings(widget, rounds=1)
    widget.form.set_values(tile=40)
    start = len(notification_manager.records)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    warned = [str(n.message) for n in notification_manager.records[start:]
              if n.severity == NotificationSeverity.WARNING]
    assert any(m.startswith("the tile (40 px) is larger than the sites (32×32 px): 36% of every tile is padding")
               for m in warned), warned
    assert widget.trained is not None  # a warning: training went on
    widget.shutdown()
    assert no_threads_left()


def test_plate_browser_says_to_separate_channel_renames_with_commas(browser, tmp_path):
    viewer, dock = browser()
    root = write_imagexpress(tmp_path / "ixm", wells=["B02", "C03"], sites=1, channels=2, size=8)
    start = len(notification_manager.records)
    assert dock.open_plate(str(root), channel_names="w1=DNA;w2=ER") is None
    [message] = errors_since(start)
    assert message.startswith("Could not open the plate: channel rename 'w1=DNA;w2=ER' holds several renames; "
                              "separate them with commas (';' is not a separator)")
    assert dock.open_plate(str(root), channel_names="w1=DNA,w2=ER") is not None
