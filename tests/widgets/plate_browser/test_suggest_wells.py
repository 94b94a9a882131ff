"""'Suggest wells to label' in the plate browser, in a real viewer: the button ranks the unlabelled wells
in the background, the plate map outlines N of them with the reason on hover, Next/Previous (buttons and
Shift+PageDown/PageUp) show them one by one, labelling one removes it, another model clears the list."""

from __future__ import annotations

import torch
from conftest import write_imagexpress
from qtpy.QtCore import Qt

from napari_dcmix.model import ChannelClassifier
from napari_dcmix.training import TrainedModel
from napari_dcmix.training.trainer import reference_stats
from napari_dcmix.widgets.plate_browser.suggest_panel import STOP, SUGGEST

LEFT = Qt.MouseButton.LeftButton


def model_for(plate, seed=0):
    torch.manual_seed(seed)
    return TrainedModel(ChannelClassifier("dcmix", 3, 2).eval(), list(plate.channels), ["a", "b"],
                        reference_stats(plate), 16, {"normalization": "plate"})


def opened(browser, qtbot, tmp_path):
    viewer, dock = browser()
    dock.open_plate(str(write_imagexpress(tmp_path / "ixm")))
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    return viewer, dock


def test_button_outlines_n_wells_with_reasons_and_steps_through_them(browser, qtbot, tmp_path):
    viewer, dock = opened(browser, qtbot, tmp_path)
    panel, session, grid = dock.suggest_panel, dock.session, dock.grid
    assert not panel.button.isEnabled() and "Train a model" in panel.status.text()  # no model yet
    session.assign_labels("Plate1", ["B02", "C03"], "a")
    session.set_model(model_for(dock.plate))
    assert panel.button.isEnabled() and not panel.next_button.isEnabled()
    panel.count.setValue(3)
    qtbot.mouseClick(panel.button, LEFT)
    assert panel.button.text() == STOP
    qtbot.waitUntil(lambda: session.suggestions is not None and dock.suggest_job is None, timeout=30000)
    wells = [s.well for s in session.suggestions.items]
    assert len(wells) == 3 and not {"B02", "C03"} & set(wells) and panel.button.text() == SUGGEST
    assert set(grid.suggestions) == set(wells) and "3 suggested wells left" in panel.status.text()
    for s in session.suggestions.items:
        tip = grid.tooltip_for(s.well)
        assert f"suggested #{s.rank} to label next: {s.reason}" in tip and "one model" in tip
    assert "suggested" not in grid.tooltip_for("B02")

    qtbot.mouseClick(panel.next_button, LEFT)  # from a well not in the list: the first suggestion
    assert dock.current_key.well == wells[0] and grid.selected() == [wells[0]]
    qtbot.mouseClick(panel.next_button, LEFT)
    assert dock.current_key.well == wells[1]
    viewer.window._qt_viewer._key_map_handler.press_key("Shift-PageDown")
    assert dock.current_key.well == wells[2]
    viewer.window._qt_viewer._key_map_handler.press_key("Shift-PageUp")
    assert dock.current_key.well == wells[1] and grid.current == wells[1]

    dock.label_panel.assign("b")  # label the shown (selected) suggestion: it leaves the list and the map
    assert [s.well for s in session.suggestions.items] == [wells[0], wells[2]]
    assert set(grid.suggestions) == {wells[0], wells[2]} and "2 suggested wells left" in panel.status.text()
    qtbot.mouseClick(panel.next_button, LEFT)  # from a well no longer listed: back to the first
    assert dock.current_key.well == wells[0]

    session.set_model(model_for(dock.plate, seed=1))  # retrained: the old ranking says nothing any more
    assert session.suggestions is None and grid.suggestions == {}
    assert "model changed" in panel.status.text() and not panel.next_button.isEnabled()


def test_suggest_refuses_what_it_cannot_rank(browser, qtbot, tmp_path):
    from napari.utils.notifications import NotificationSeverity, notification_manager

    _, dock = opened(browser, qtbot, tmp_path)
    session = dock.session
    session.set_model(model_for(dock.plate))
    start = len(notification_manager.records)
    session.assign_labels("Plate1", dock.plate.wells("Plate1"), "a")
    assert dock.suggest_wells(2) is None and dock.suggest_job is None
    other = model_for(dock.plate)
    other.channels = ["DNA", "ER", "Mito"]
    session.set_model(other)
    session.assign_labels("Plate1", ["B02"], None)
    assert dock.suggest_wells(2) is None
    errors = [str(r.message) for r in notification_manager.records[start:] if r.severity == NotificationSeverity.ERROR]
    assert "nothing to suggest" in errors[0] and "DNA" in errors[1]


def test_a_model_file_loaded_in_apply_ranks_the_wells(browser, qtbot, tmp_path):
    from napari_dcmix.widgets.apply.dock import ApplyWidget

    viewer, dock = opened(browser, qtbot, tmp_path)
    apply = ApplyWidget(viewer)
    viewer.window.add_dock_widget(apply, name="Apply")
    path = tmp_path / "screen.pt"
    model_for(dock.plate).save(path)
    panel, session = dock.suggest_panel, dock.session
    assert not panel.button.isEnabled()
    apply.load_model(str(path))
    qtbot.waitUntil(lambda: not apply.loading, timeout=30000)
    assert apply.use_file.isChecked() and session.prediction_model is apply.loaded_model
    assert panel.button.isEnabled()  # no model trained here: Apply's file ranks the wells
    assert dock.suggest_wells(2) is not None
    qtbot.waitUntil(lambda: session.suggestions is not None and dock.suggest_job is None, timeout=30000)
    assert len(session.suggestions) == 2 and session.suggestions.model_name == apply.loaded_model.display_name
    apply.use_trained.setChecked(True)  # back to the (absent) trained model: the file's ranking is cleared
    assert session.suggestions is None and not panel.button.isEnabled()
