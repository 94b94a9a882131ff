"""The plate browser dock in a real napari viewer: real mouse clicks on the painted plate map,
in-place layer replacement, keyboard navigation, labelling round trip, background thumbnails
that leave no thread behind, and errors shown as notifications."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_imagexpress, write_rxrx1
from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtCore import QPoint, Qt, QThreadPool

from napari_dcmix._layers import META_KEY, site_layer_data
from napari_dcmix.plate import SiteKey, open_plate
from napari_dcmix.widgets.plate_browser.dock import PlateBrowserWidget
from napari_dcmix.widgets.session import get_session
from napari_dcmix.plate.mosaic import tile_sites

LEFT = Qt.MouseButton.LeftButton


def wait_idle(qtbot, dock):
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)


def click(qtbot, dock, well, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.mouseClick(dock.grid, LEFT, modifier, dock.grid.cell_center(well))


def channel_layers(viewer):
    return [layer for layer in viewer.layers if META_KEY in layer.metadata]


def errors_since(n):
    return [r for r in notification_manager.records[n:] if r.severity == NotificationSeverity.ERROR]


def test_click_shows_exactly_that_sites_channels(browser, qtbot, tmp_path):
    viewer, dock = browser()
    root = write_imagexpress(tmp_path / "ixm")
    dock.open_plate(str(root))
    wait_idle(qtbot, dock)
    click(qtbot, dock, "C03")
    key = SiteKey("Plate1", "C03", 1)
    plate = dock.plate
    expected = plate.read_site(key)
    layers = channel_layers(viewer)
    assert [layer.name for layer in layers] == plate.channels == ["w1", "w2", "w3"]
    for i, layer in enumerate(layers):
        np.testing.assert_array_equal(layer.data, expected[i])
        assert layer.blending == "additive"
        assert tuple(layer.contrast_limits) == pytest.approx(plate.channel_stats().contrast_limits(i))
    assert [layer.colormap.name for layer in layers] == ["blue", "green", "red"]
    assert get_session(viewer).site == key and get_session(viewer).plate is plate
    assert dock.grid.current == "C03" and dock.grid.selected() == ["C03"]


def test_switching_wells_replaces_layers_in_place(browser, qtbot, tmp_path):
    viewer, dock = browser()
    dock.open_plate(str(write_imagexpress(tmp_path / "ixm")))
    wait_idle(qtbot, dock)
    click(qtbot, dock, "B02")
    w1, w2, w3 = channel_layers(viewer)
    user = viewer.add_points([[3, 3]], name="my points")
    w1.contrast_limits = (100, 120)
    w2.visible = False
    w3.colormap = "magenta"
    viewer.camera.zoom = 3.5
    click(qtbot, dock, "D03")
    assert channel_layers(viewer) == [w1, w2, w3]  # the same layer objects
    assert user in viewer.layers and len(viewer.layers) == 4
    np.testing.assert_array_equal(w1.data, dock.plate.read_site(SiteKey("Plate1", "D03", 1))[0])
    assert tuple(w1.contrast_limits) == (100, 120) and not w2.visible and w3.colormap.name == "magenta"
    assert viewer.camera.zoom == pytest.approx(3.5)
    assert w1.metadata[META_KEY]["site"] == ["Plate1", "D03", 1]
    viewer.layers.remove(w2)  # a deleted channel layer comes back on the next click
    click(qtbot, dock, "B03")
    names = [layer.name for layer in channel_layers(viewer)]
    assert sorted(names) == ["w1", "w2", "w3"] and w1 in viewer.layers
    new_w2 = next(layer for layer in channel_layers(viewer) if layer.name == "w2")
    np.testing.assert_array_equal(new_w2.data, dock.plate.read_site(SiteKey("Plate1", "B03", 1))[1])


def test_site_selector_mosaic_and_keyboard_navigation(browser, qtbot, tmp_path):
    viewer, dock = browser()
    dock.open_plate(str(write_imagexpress(tmp_path / "ixm")))
    wait_idle(qtbot, dock)
    assert dock.current_key == SiteKey("Plate1", "B02", 1)  # the first well is shown on open
    dock.site_combo.setCurrentIndex(1)
    dock.site_combo.activated.emit(1)
    assert dock.current_key.site == 2
    np.testing.assert_array_equal(channel_layers(viewer)[0].data, dock.plate.read_site(SiteKey("Plate1", "B02", 2))[0])

    dock.grid.setFocus()
    qtbot.keyClick(dock.grid, Qt.Key.Key_Right)
    assert dock.current_key == SiteKey("Plate1", "B03", 2)  # the site number is kept
    qtbot.keyClick(dock.grid, Qt.Key.Key_Down)
    assert dock.current_key.well == "C03"
    qtbot.mouseClick(dock.prev_button, LEFT)
    assert dock.current_key.well == "C02"
    viewer.window._qt_viewer._key_map_handler.press_key("PageDown")  # viewer key binding
    assert dock.current_key.well == "C03"
    viewer.window._qt_viewer._key_map_handler.press_key("PageUp")
    assert dock.current_key.well == "C02"

    dock.mosaic_box.setChecked(True)
    sites = [dock.plate.read_site(SiteKey("Plate1", "C02", s)) for s in (1, 2)]
    mosaic = tile_sites(sites)
    for i, layer in enumerate(channel_layers(viewer)):
        np.testing.assert_array_equal(layer.data, mosaic[i])
    assert not dock.site_combo.isEnabled()


def test_select_assign_save_and_load_round_trip(browser, qtbot, tmp_path, monkeypatch):
    viewer, dock = browser()
    root = write_imagexpress(tmp_path / "ixm")
    dock.open_plate(str(root))
    wait_idle(qtbot, dock)
    grid, panel, session = dock.grid, dock.label_panel, get_session(viewer)

    # drag a rectangle B02..C03, ctrl-click B02 out of it
    qtbot.mousePress(grid, LEFT, pos=grid.cell_center("B02"))
    qtbot.mouseMove(grid, grid.cell_center("C03"))
    qtbot.mouseRelease(grid, LEFT, pos=grid.cell_center("C03"))
    assert grid.selected() == ["B02", "B03", "C02", "C03"]
    click(qtbot, dock, "B02", Qt.KeyboardModifier.ControlModifier)
    assert grid.selected() == ["B03", "C02", "C03"]
    panel.new_class.setText("mito_fragmented")
    qtbot.keyClick(panel.new_class, Qt.Key.Key_Return)  # adds the class and highlights it
    assert panel.current_class() == "mito_fragmented"
    qtbot.mouseClick(panel.assign_button, LEFT)

    # the row header D selects D02, D03; digit key 2 assigns the second class
    x, y = grid.grid_geometry().well_center("D02")
    qtbot.mouseClick(grid, LEFT, pos=QPoint(int(grid.grid_geometry().ox - 6), int(y)))
    assert grid.selected() == ["D02", "D03"]
    panel.add_class("negative")
    grid.setFocus()
    qtbot.keyClick(grid, Qt.Key.Key_2)
    click(qtbot, dock, "B02")
    click(qtbot, dock, "C03", Qt.KeyboardModifier.ShiftModifier)  # shift-click: rectangle from B02
    assert grid.selected() == ["B02", "B03", "C02", "C03"]
    expected = {("Plate1", "B03"): "mito_fragmented", ("Plate1", "C02"): "mito_fragmented",
                ("Plate1", "C03"): "mito_fragmented", ("Plate1", "D02"): "negative", ("Plate1", "D03"): "negative"}
    assert session.labels == expected
    assert grid.labels["D02"] == "negative"  # the grid recoloured

    proposed = {}

    def fake_dialog(parent, title, default, filters):
        proposed["path"] = default
        return default, filters

    monkeypatch.setattr("qtpy.QtWidgets.QFileDialog.getSaveFileName", fake_dialog)
    saved = dock.save_labels()
    home = tmp_path / "home" / "napari-dcmix"
    assert saved == home / "ixm_labels.csv" and proposed["path"] == str(saved)
    assert root not in saved.parents
    assert saved.read_text().splitlines() == ["plate,well,label", "Plate1,B03,mito_fragmented",
                                              "Plate1,C02,mito_fragmented", "Plate1,C03,mito_fragmented",
                                              "Plate1,D02,negative", "Plate1,D03,negative"]
    assert [p.name for p in home.iterdir()] == ["ixm_labels.csv"]  # atomic: no temp file left behind
    assert sorted(p.name for p in root.iterdir() if p.suffix == ".csv") == []

    session.set_labels({})
    assert not grid.labels
    assert dock.load_labels(saved)
    assert session.labels == expected and grid.labels["B03"] == "mito_fragmented"
    assert dock.open_panel.column == "label"


def test_thumbnails_finish_and_leave_no_thread(browser, qtbot, tmp_path):
    viewer, dock = browser()
    dock.open_plate(str(write_imagexpress(tmp_path / "ixm", size=64)))
    wait_idle(qtbot, dock)
    assert sorted(dock.grid.thumbs) == ["B02", "B03", "C02", "C03", "D02", "D03"]
    assert 16 < dock.grid.thumbs["B02"].width() <= 48  # block-averaged, at most 48 px
    assert QThreadPool.globalInstance().waitForDone(5000)
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    assert not dock.thumbnails_running
    dock.set_thumbnails(False)
    assert not dock.grid.show_thumbs


def test_thumbnail_worker_is_cancelled_when_the_dock_goes(browser, qtbot, tmp_path):
    viewer, dock = browser()
    wells = [f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13)]
    dock.open_plate(str(write_imagexpress(tmp_path / "big", wells=wells, sites=1, channels=2, size=8)))
    qtbot.waitUntil(lambda: dock.stats is not None, timeout=10000)
    dock.set_thumbnails(False)  # cancel mid-sweep (worker.quit())
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    dock.set_thumbnails(True)
    viewer.window.remove_dock_widget(dock)  # closes the dock while its worker may still run
    qtbot.wait(50)
    assert QThreadPool.globalInstance().waitForDone(5000)
    assert QThreadPool.globalInstance().activeThreadCount() == 0


def test_errors_become_notifications_and_the_dock_stays_usable(browser, qtbot, tmp_path):
    viewer, dock = browser()
    n = len(notification_manager.records)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a plate")
    assert dock.open_plate(str(tmp_path / "notes")) is None
    assert "no images" in errors_since(n)[-1].message and dock.plate is None

    root = write_imagexpress(tmp_path / "ixm")
    (root / "Plate1_C02_s1_w29A1E2A7D-1234-ABCD.tif").write_bytes(b"II*\x00 this is no tiff")
    dock.open_plate(str(root))
    wait_idle(qtbot, dock)
    n = len(notification_manager.records)
    before = [layer.data for layer in channel_layers(viewer)]
    click(qtbot, dock, "C02")
    errors = errors_since(n)
    assert len(errors) == 1 and "C02" in errors[0].message and "could not be read" in errors[0].message
    assert "C02" in dock.grid.problems
    assert all(a is b.data for a, b in zip(before, channel_layers(viewer)))  # unchanged
    click(qtbot, dock, "D03")
    assert dock.current_key.well == "D03"
    np.testing.assert_array_equal(channel_layers(viewer)[1].data, dock.plate.read_site(SiteKey("Plate1", "D03", 1))[1])


def test_dock_follows_a_plate_opened_by_the_reader(browser, qtbot, tmp_path):
    viewer, dock = browser()
    root = write_imagexpress(tmp_path / "ixm")
    key = SiteKey("Plate1", "C03", 2)
    for data, kwargs, _ in site_layer_data(open_plate(root), key):  # what File > Open adds
        viewer.add_image(data, **kwargs)
    qtbot.waitUntil(lambda: dock.plate is not None, timeout=5000)
    assert dock.plate.root == root and dock.current_key == key and dock.grid.current == "C03"
    assert len(viewer.layers) == 3  # the reader's layers were adopted, not duplicated
    wait_idle(qtbot, dock)
    click(qtbot, dock, "B02")
    assert len(viewer.layers) == 3
    np.testing.assert_array_equal(viewer.layers[0].data, dock.plate.read_site(SiteKey("Plate1", "B02", 2))[0])


def test_several_plates_get_a_plate_selector(browser, qtbot, tmp_path):
    viewer, dock = browser()
    dock.open_plate(str(write_rxrx1(tmp_path / "rxrx1")))
    wait_idle(qtbot, dock)
    combo = dock.open_panel.plate_combo
    assert combo.isVisibleTo(dock) and combo.count() == 2
    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    assert dock.grid.plate_id == "HUVEC-01/Plate2"
    click(qtbot, dock, "C02")
    assert dock.current_key == SiteKey("HUVEC-01/Plate2", "C02", 1)
    assert len(channel_layers(viewer)) == 6


def test_predictions_colour_the_grid_and_fill_the_tooltip(browser, qtbot, tmp_path):
    viewer, dock = browser()
    dock.open_plate(str(write_imagexpress(tmp_path / "ixm")))
    session = get_session(viewer)
    session.set_labels({("Plate1", "B02"): "neg"})
    session.set_predictions({("Plate1", "B02"): {"prediction": "pos", "confidence": 0.9,
                                                 "probabilities": {"pos": 0.9, "neg": 0.1}}})
    assert dock.color_combo.currentText() == "predictions" and dock.grid.color_mode == "predictions"
    tip = dock.grid.tooltip_for("B02")
    assert "label: neg" in tip and "prediction: pos (90% confident)" in tip and "neg: 10%" in tip
    assert [dock.label_panel.class_list.topLevelItem(i).text(0) for i in range(2)] == ["neg", "pos"]
    wait_idle(qtbot, dock)


def test_dock_is_reachable_from_the_plugin_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-dcmix", "Plate browser")
    assert isinstance(widget, PlateBrowserWidget)


def test_closing_the_viewer_joins_the_background_threads(browser, qtbot, tmp_path):
    viewer, dock = browser()
    wells = [f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13)]
    dock.open_plate(str(write_imagexpress(tmp_path / "big", wells=wells, sites=1, channels=2, size=8)))
    qtbot.waitUntil(lambda: dock.stats is not None, timeout=10000)
    jobs = list(dock.background.jobs)
    assert jobs, "no background job was running"
    viewer.close()  # the window's close event stops and joins the jobs before Qt deletes the dock
    assert all(job.thread_done or not job.worker.thread_started.is_set() for job in jobs)
    assert QThreadPool.globalInstance().activeThreadCount() == 0


def test_file_open_with_the_plugin_reader_makes_the_dock_follow(browser, qtbot, tmp_path):
    pytest.importorskip("napari_dcmix._reader")
    viewer, dock = browser()
    root = write_imagexpress(tmp_path / "ixm")
    viewer.open(str(root), plugin="napari-dcmix")  # what File > Open of the folder does
    qtbot.waitUntil(lambda: dock.plate is not None, timeout=5000)
    assert dock.plate.root == root and dock.current_key is not None
    assert len(channel_layers(viewer)) == 3  # adopted
    wait_idle(qtbot, dock)


def test_class_list_add_rename_delete(browser, qtbot, tmp_path):
    viewer, dock = browser()
    dock.open_plate(str(write_imagexpress(tmp_path / "ixm")))
    panel, session = dock.label_panel, get_session(viewer)
    panel.add_class("a")
    panel.add_class("b")
    dock.grid.set_selection(["B02", "B03"])
    assert panel.assign("a") == 2
    item = panel.class_list.topLevelItem(0)
    item.setText(0, "alive")  # what editing the class name in the list does
    qtbot.waitUntil(lambda: session.classes == ["alive", "b"], timeout=2000)
    assert session.labels == {("Plate1", "B02"): "alive", ("Plate1", "B03"): "alive"}
    assert dock.grid.labels == {"B02": "alive", "B03": "alive"}
    assert panel.delete_class("alive", confirm=False)
    assert session.classes == ["b"] and session.labels == {} and panel.dirty
    assert panel.class_list.topLevelItemCount() == 1
    wait_idle(qtbot, dock)
