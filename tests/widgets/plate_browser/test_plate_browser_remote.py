"""The plate browser with an OME-Zarr plate at a URL (served on 127.0.0.1 inside the test), in a real
viewer: the path field, the Plugins menu's *Open plate URL…* form and ``viewer.open(url)`` open it in
the background (the GUI thread never waits on the network), clicked wells are fetched in the
background, an empty field is a red cross, a failing server a notification, and labels and exports
of the plate are proposed in its local output folder."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import quick_remote, write_ome_zarr_plate
from napari.utils.notifications import NotificationSeverity, notification_manager
from plate_server import is_chunk
from qtpy.QtCore import QTimer

from napari_dcmix._io import default_export_path
from napari_dcmix._layers import META_KEY
from napari_dcmix.plate import SiteKey, open_plate
from napari_dcmix.widgets.plate_browser.dock import OpenPlateUrl, PlateBrowserWidget

WAIT_MS = 20000


@pytest.fixture
def served(tmp_path, plate_server):
    local = write_ome_zarr_plate(tmp_path / "bucket" / "screen.zarr", "0.5")
    server = plate_server(tmp_path)
    return server, server.url("bucket/screen.zarr"), local


def channel_layers(viewer):
    return [layer for layer in viewer.layers if META_KEY in layer.metadata]


def errors_since(n):
    return [str(r.message) for r in notification_manager.records[n:] if r.severity == NotificationSeverity.ERROR]


def _ticks_while(qtbot, condition) -> int:
    """How often a 20 ms timer fired on the GUI thread until ``condition`` held: the event loop ran."""
    ticks = []
    timer = QTimer(interval=20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    try:
        qtbot.waitUntil(condition, timeout=WAIT_MS)
    finally:
        timer.stop()
    return len(ticks)


def test_the_path_field_opens_a_url_in_the_background(browser, qtbot, served):
    server, url, local = served
    viewer, dock = browser()
    server.fault = lambda method, path, seen: ("sleep", 0.3) if not is_chunk(path) else None  # slow metadata
    dock.open_panel.path_edit.setText(url)
    dock.open_panel.open_button.click()
    assert dock.plate is None and dock.opening  # returned before the (slow) metadata arrived
    assert _ticks_while(qtbot, lambda: dock.plate is not None) >= 5  # the viewer kept running meanwhile
    assert dock.plate.location.url == url and dock.plate.wells() == ["B02", "B03", "C02"]
    assert "read as you go" in dock.open_panel.info.text()
    qtbot.waitUntil(lambda: len(channel_layers(viewer)) == 3, timeout=WAIT_MS)  # the first well, fetched
    assert [layer.name for layer in channel_layers(viewer)] == ["DNA", "ER", "Mito"]
    first = open_plate(local).read_site(SiteKey("", "B02", 1))
    np.testing.assert_array_equal(channel_layers(viewer)[0].data, first[0])
    qtbot.waitUntil(lambda: not dock.busy(), timeout=WAIT_MS)  # statistics and thumbnails, in the background
    assert set(dock.background.thumbs) == {("", "B02"), ("", "B03"), ("", "C02")}


@pytest.fixture
def big(tmp_path, plate_server):
    """(server, URL, local folder) of 12 wells × 3 fields: more sites than the statistics read."""
    wells = [f"{r}{c:02d}" for r in "BCD" for c in (2, 3, 4, 5)]
    local = write_ome_zarr_plate(tmp_path / "bucket" / "big.zarr", "0.5", wells=wells, fields=3)
    server = plate_server(tmp_path)
    return server, server.url("bucket/big.zarr"), local


def _never_read(dock, server) -> SiteKey:
    """A site whose full-resolution chunks were never fetched: clicking it must go to the server."""
    fetched = {p.split("big.zarr/")[1].split("/s0/")[0] for p in server.chunk_requests() if "/s0/" in p}
    return next(k for k in dock.plate.sites if f"{k.well[0]}/{int(k.well[1:])}/{k.site - 1}" not in fetched
                and not dock.plate.is_cached(k))


def test_a_clicked_well_is_fetched_in_the_background(browser, qtbot, big):
    server, url, local = big
    viewer, dock = browser()
    dock.open_plate(url, remote=quick_remote())
    qtbot.waitUntil(lambda: len(channel_layers(viewer)) == 3 and not dock.busy(), timeout=WAIT_MS)
    key = _never_read(dock, server)
    server.fault = lambda method, path, seen: ("sleep", 0.3) if is_chunk(path) else None  # slow pixels
    before = channel_layers(viewer)[1].data
    dock.show_well("", key.well, key.site)
    assert channel_layers(viewer)[1].data is before and dock.current_key != key  # not waited for
    assert "fetching" in dock.where.text()
    assert _ticks_while(qtbot, lambda: dock.current_key == key) >= 5
    np.testing.assert_array_equal(channel_layers(viewer)[1].data, open_plate(local).read_site(key)[1])
    assert dock.grid.current == key.well


def test_an_empty_field_is_a_red_cross_and_a_failing_server_a_notification(browser, qtbot, big):
    server, url, local = big
    for chunk in (local / "C" / "3" / "1" / "s0").rglob("*"):
        if chunk.is_file() and chunk.name.isdigit():
            chunk.unlink()
    viewer, dock = browser()
    dock.set_thumbnails(False)
    dock.open_plate(url, remote=quick_remote(timeout_s=2))
    qtbot.waitUntil(lambda: len(channel_layers(viewer)) == 3 and not dock.busy(), timeout=WAIT_MS)
    n = len(notification_manager.records)
    dock.show_well("", "C03", 2)
    qtbot.waitUntil(lambda: "C03" in dock.grid.problems, timeout=WAIT_MS)
    assert "C03 s2 is empty" in errors_since(n)[-1] and any(p.kind == "empty" for p in dock.plate.problems)
    key = _never_read(dock, server)
    server.fault = lambda method, path, seen: 500 if is_chunk(path) else None
    n = len(notification_manager.records)
    dock.show_well("", key.well, key.site)
    qtbot.waitUntil(lambda: bool(errors_since(n)), timeout=WAIT_MS)
    assert "did not answer after 3 attempts" in errors_since(n)[-1] and url in errors_since(n)[-1]
    assert key.well not in dock.grid.problems  # the server's fault, not the well's
    server.fault = None
    dock.show_well("", key.well, key.site)  # the server is back: the same click works
    qtbot.waitUntil(lambda: dock.current_key == key, timeout=WAIT_MS)


def test_the_open_plate_url_form_hands_the_url_and_its_settings_to_the_plate_browser(make_napari_viewer, qtbot,
                                                                                      served):
    _, url, _ = served
    viewer = make_napari_viewer()
    _, form = viewer.window.add_plugin_dock_widget("napari-dcmix", "Open plate URL…")  # as the Plugins menu does
    assert isinstance(form, OpenPlateUrl)
    form.url_edit.setText(url)
    form.cache_spin.setValue(64)
    browser = form.open()
    assert isinstance(browser, PlateBrowserWidget)
    assert any(w is browser for w in viewer.window.dock_widgets.values())  # docked by the form
    qtbot.waitUntil(lambda: browser.plate is not None, timeout=WAIT_MS)
    assert browser.plate.location.url == url
    assert browser.plate.index.zarr.store.settings.cache_bytes == 64 << 20
    qtbot.waitUntil(lambda: not any(isinstance(w, OpenPlateUrl) for w in viewer.window.dock_widgets.values()),
                    timeout=WAIT_MS)  # the form closed itself
    form.url_edit.setText("/not/a/url")
    assert form.open() is None


def test_viewer_open_of_a_url_goes_to_the_plate_browser(make_napari_viewer, qtbot, served):
    _, url, _ = served
    viewer = make_napari_viewer()
    assert viewer.open(url, plugin="napari-dcmix") == []  # at once: the layers follow from the background
    browsers = [w for w in viewer.window.dock_widgets.values() if isinstance(w, PlateBrowserWidget)]
    assert len(browsers) == 1
    qtbot.waitUntil(lambda: len(channel_layers(viewer)) == 3, timeout=WAIT_MS)
    assert browsers[0].plate.location.url == url and browsers[0].current_key == SiteKey("", "B02", 1)
    viewer.open(url, plugin="napari-dcmix")  # again: the same Plate browser, not a second one
    assert [w for w in viewer.window.dock_widgets.values() if isinstance(w, PlateBrowserWidget)] == browsers


def test_labels_and_exports_of_a_remote_plate_are_proposed_locally(browser, qtbot, served, tmp_path, monkeypatch):
    _, url, _ = served
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    viewer, dock = browser()
    dock.open_plate(url, remote=quick_remote())
    qtbot.waitUntil(lambda: dock.plate is not None, timeout=WAIT_MS)
    assert dock.label_panel.default_path() == work / "screen-dcmix" / "screen.zarr_labels.csv"
    assert default_export_path(dock.plate.location, "{plate}_predictions.csv") == (
        work / "screen-dcmix" / "screen.zarr_predictions.csv")
    dock.session.assign_labels("", ["B02", "B03"], "dmso")
    saved = dock.save_labels(dock.label_panel.default_path())
    assert saved == work / "screen-dcmix" / "screen.zarr_labels.csv" and "B02,dmso" in saved.read_text()
    assert "is a URL" in dock.session.output_problem(url + "/labels.csv")
