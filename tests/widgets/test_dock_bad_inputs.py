"""The docks' bad-input matrix: one bad thing at a time in a real viewer, each one clear notification
(and, for data problems, a row in the plate browser's Problems list), the viewer still usable
afterwards, the input folder byte-identical. Cancellation: closing napari mid-prediction or
mid-thumbnails leaves no thread and no file behind."""

from __future__ import annotations

import errno
import hashlib
import time

import numpy as np
import pytest
import tifffile
import torch
from conftest import SIGNAL_PATTERN, write_imagexpress, write_signal_plate
from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtCore import QThreadPool, Qt

from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import ChannelStats, SiteKey, open_plate
from napari_dcmix.training import TrainedModel
from napari_dcmix.training import predictor as apply_logic
from napari_dcmix.widgets.apply.dock import ApplyWidget
from napari_dcmix.widgets.session import get_session

GUID = "9A1E2A7D-1234-ABCD"


def folder_hash(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def notes():
    """(severity, message) of the notifications shown during the test."""
    start = len(notification_manager.records)
    return lambda: [(n.severity, str(n.message)) for n in notification_manager.records[start:]]


def still_usable(qtbot, viewer, dock, tmp_path) -> None:
    """After a bad input: a good plate opens and its well shows."""
    root = write_imagexpress(tmp_path / "good", wells=["B02", "C03"], sites=1, channels=2, size=8)
    assert dock.open_plate(str(root)) is not None
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    assert dock.show_well("Plate1", "C03") and dock.current_key == SiteKey("Plate1", "C03", 1)
    assert [layer.name for layer in viewer.layers][-2:] == ["w1", "w2"]
    assert not dock.problems_panel.isVisible()  # a clean plate: no Problems list in the way


def _plain(tmp_path):
    return write_imagexpress(tmp_path / "ixm", wells=["B02", "B03", "C02"], sites=1, channels=2, size=16)


def _unrelated(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("not a plate")
    return tmp_path / "docs"


OPEN_ERRORS = {
    "nonexistent path": (lambda t: t / "nope", None, "does not exist"),
    "folder of unrelated files": (_unrelated, None, "holds no images"),
    "a file, not a folder": (lambda t: next(_plain(t).glob("*_w1*.tif")), None, "is not a folder"),
    "invalid regex": (_plain, "(?P<well>[A-Z]\\d+", "not a valid regular expression"),
    "group-less regex": (_plain, ".*\\.tif", "needs a named group"),
}


@pytest.mark.parametrize("case", list(OPEN_ERRORS))
def test_plates_that_cannot_open(browser, qtbot, tmp_path, notes, case):
    viewer, dock = browser()
    make, pattern, text = OPEN_ERRORS[case]
    path = make(tmp_path)
    before = folder_hash(path.parent)
    assert dock.open_plate(str(path), pattern) is None and dock.plate is None
    [(severity, message)] = notes()
    assert severity == NotificationSeverity.ERROR and message.startswith("Could not open the plate:") and text in message
    assert folder_hash(path.parent) == before
    still_usable(qtbot, viewer, dock, tmp_path)


def _spoil(content_or_writer):
    def spoil(path):
        if callable(content_or_writer):
            content_or_writer(path)
        else:
            path.write_bytes(content_or_writer)
    return spoil


def _nan(path):
    img = np.full((16, 16), 500.0, np.float32)
    img[2:6, 2:6] = np.nan
    tifffile.imwrite(path, img)


SITE_CASES = {  # what one bad file of well B03 does when B03 is clicked: (error shown?, problem kind)
    "corrupt tiff": (_spoil(b"II*\x00 this is no tiff"), True, "unreadable"),
    "empty tiff": (_spoil(b""), True, "unreadable"),
    "mixed shapes": (_spoil(lambda p: tifffile.imwrite(p, np.zeros((8, 8), np.uint16))), True, "mixed-shapes"),
    "NaN float": (_spoil(_nan), False, "non-finite"),
    "3-D stack": (_spoil(lambda p: tifffile.imwrite(p, np.ones((2, 16, 16), np.uint16), metadata={"axes": "ZYX"})),
                  False, "stack"),
}


@pytest.mark.parametrize("case", list(SITE_CASES))
def test_bad_site_is_one_message_and_a_listed_problem(browser, qtbot, tmp_path, notes, case):
    viewer, dock = browser()
    root = _plain(tmp_path)
    spoil, is_error, kind = SITE_CASES[case]
    spoil(root / f"Plate1_B03_w2{GUID}.tif")
    before = folder_hash(root)
    dock.open_plate(str(root))
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    start = len(notes())
    shown = dock.show_well("Plate1", "B03")
    qtbot.waitUntil(lambda: any(p.kind == kind for p in dock.problems_panel.problems()), timeout=3000)
    new = notes()[start:]
    if is_error:
        [(severity, message)] = new
        assert not shown and severity == NotificationSeverity.ERROR and "Plate1 B03 s1" in message
        assert "B03" in dock.grid.problems
    else:
        assert shown and new == []  # repaired: listed, not notified
        assert all(np.isfinite(layer.data).all() for layer in viewer.layers)
    dock.problems_panel.refresh()
    item = dock.problems_panel.list.item(dock.problems_panel.list.count() - 1)
    assert "Plate1 B03 s1" in item.text() and f"Plate1_B03_w2{GUID}.tif" in item.toolTip()
    assert dock.problems_panel.toggle.text().startswith("⚠ Problems (")
    assert folder_hash(root) == before
    assert dock.show_well("Plate1", "C02")  # the rest of the plate still works


def test_plate_with_problems_is_one_notification_and_a_list(browser, qtbot, tmp_path, notes):
    viewer, dock = browser()
    root = _plain(tmp_path)
    (root / f"Plate1_B02_w2{GUID}.tif").unlink()
    (root / f"Plate1_C02_w1{GUID}.tif").unlink()
    dock.open_plate(str(root))
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    warnings = [m for s, m in notes() if s == NotificationSeverity.WARNING]
    assert warnings == ["Plate opened with 2 problems: Plate1 B02 s1 lacks w2 (missing channel files): skipped; add "
                        "the missing files, or leave the site out (and 1 more: see Problems in the plate browser)"]
    panel = dock.problems_panel
    assert panel.list.count() == 2 and panel.toggle.text() == "⚠ Problems (2)"
    panel.toggle.click()
    assert panel.list.isVisible()
    panel.list.itemDoubleClicked.emit(panel.list.item(0))  # B02 has no complete site: a warning, no crash
    assert "has no images" in notes()[-1][1]


def test_thumbnail_sweep_lists_bad_files_before_any_click(browser, qtbot, tmp_path, notes):
    viewer, dock = browser()
    root = _plain(tmp_path)
    (root / f"Plate1_C02_w1{GUID}.tif").write_bytes(b"")
    dock.open_plate(str(root))  # shows B02 first; C02 is read by the thumbnails only
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    qtbot.waitUntil(lambda: dock.problems_panel.list.count() == 1, timeout=3000)
    assert "Plate1 C02 s1" in dock.problems_panel.list.item(0).text() and "C02" in dock.grid.problems
    assert not [n for n in notes() if n[0] == NotificationSeverity.ERROR]  # a red cross and a row, no pop-up


LABEL_ERRORS = {
    "not a CSV": (b"\x89PNG\r\n\x1a\n\x00\x00", "not a CSV table"),
    "empty": (b"", "not a CSV table with a header row"),
    "no well column": (b"site,phenotype\n1,a\n", "has no 'well' column"),
}


@pytest.mark.parametrize("case", list(LABEL_ERRORS))
def test_unusable_labels(browser, qtbot, tmp_path, notes, case):
    viewer, dock = browser()
    root = _plain(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_bytes(LABEL_ERRORS[case][0])
    dock.open_plate(str(root))
    assert not dock.load_labels(labels)
    [(severity, message)] = [n for n in notes() if n[0] == NotificationSeverity.ERROR]
    assert message.startswith("Could not load the labels:") and LABEL_ERRORS[case][1] in message
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    still_usable(qtbot, viewer, dock, tmp_path)


def test_doubtful_labels_are_one_warning(browser, qtbot, tmp_path, notes):
    viewer, dock = browser()
    dock.open_plate(str(_plain(tmp_path)))
    labels = tmp_path / "labels.csv"
    labels.write_text("well,phenotype\nB02,dmso\nB03,drug\nC02,drug\nH12,dmso\n")
    assert dock.load_labels(labels)
    warnings = [m for s, m in notes() if s == NotificationSeverity.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("Labels loaded with 2 problems: labels for wells not on the plate")
    assert any("class 'dmso' is labeled on one well only" in p for p in dock.problems_panel.problems())
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)


@pytest.mark.parametrize("encoding,text", [("utf-8-sig", "sep=;\r\nwell;phenotype\r\nb2;dmso\r\nb3;drug\r\nc2;drug\r\n"),
                                           ("utf-16", "well\tphenotype\r\nb2\tdmso\r\nb3\tdrug\r\nc2\tdmso\r\n")])
def test_excel_exports_load_in_the_dock(browser, qtbot, tmp_path, notes, encoding, text):
    viewer, dock = browser()
    dock.open_plate(str(_plain(tmp_path)))
    labels = tmp_path / "excel.csv"
    labels.write_bytes(text.encode(encoding))
    dock.open_panel.set_csv(str(labels))
    assert [dock.open_panel.column_combo.itemText(i) for i in range(dock.open_panel.column_combo.count())] == ["phenotype"]
    assert dock.load_labels(labels, "phenotype")
    assert set(get_session(viewer).labels) == {("Plate1", "B02"), ("Plate1", "B03"), ("Plate1", "C02")}
    assert not [n for n in notes() if n[0] == NotificationSeverity.ERROR]
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)


def test_saving_labels_on_a_full_disk_keeps_the_old_file(browser, qtbot, tmp_path, notes, monkeypatch):
    from napari_dcmix import _io

    viewer, dock = browser()
    dock.open_plate(str(_plain(tmp_path)))
    get_session(viewer).set_labels({("Plate1", "B02"): "dmso"}, "phenotype")
    out = tmp_path / "saved.csv"
    out.write_text("well,phenotype\nB03,old\n")
    monkeypatch.setattr(_io.os, "fsync", lambda _fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    assert dock.save_labels(out) is None
    assert "No space left" in notes()[-1][1] and out.read_text() == "well,phenotype\nB03,old\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".csv", ".tmp")) == ["saved.csv"]
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)


# --- the Apply dock ----------------------------------------------------------------------------------------
def _model(path, channels=("ch0", "ch1", "ch2")):
    torch.manual_seed(0)
    stats = ChannelStats(list(channels), [900] * len(channels), [1100] * len(channels))
    TrainedModel(ChannelClassifier("dcmix", len(channels), 2).eval(), list(channels), ["negative", "positive"],
                 stats, 16).save(path)
    return path


@pytest.fixture
def apply(make_napari_viewer, tmp_path):
    root, _ = write_signal_plate(tmp_path / "signal", wells_per_class=8, sites=2, size=32)

    def make():
        viewer = make_napari_viewer(show=True)
        widget = ApplyWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Apply")
        get_session(viewer).open_plate(open_plate(root, SIGNAL_PATTERN), SIGNAL_PATTERN)
        return viewer, widget, root

    return make


@pytest.mark.parametrize("case", ["not a model", "truncated model"])
def test_bad_model_file_in_the_apply_dock(apply, qtbot, tmp_path, notes, case):
    viewer, widget, _ = apply()
    path = _model(tmp_path / "m.pt")
    path.write_bytes(b"just text" if case == "not a model" else path.read_bytes()[:400])
    widget.load_model(str(path))
    qtbot.waitUntil(lambda: not widget.loading, timeout=30_000)
    [(severity, message)] = notes()
    assert severity == NotificationSeverity.ERROR and "not a napari-dcmix model" in message
    assert widget.loaded_model is None
    widget.load_model(str(_model(tmp_path / "good.pt")))
    qtbot.waitUntil(lambda: not widget.loading, timeout=30_000)  # still usable
    assert widget.loaded_model is not None


def test_exporting_predictions_on_a_full_disk_writes_nothing(apply, qtbot, tmp_path, notes, monkeypatch):
    from napari_dcmix import _io

    viewer, widget, root = apply()
    widget.load_model(str(_model(tmp_path / "m.pt")))
    qtbot.waitUntil(lambda: not widget.loading, timeout=30_000)
    qtbot.mouseClick(widget.plate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.job is None and not widget.jobs.running, timeout=30000)
    monkeypatch.setattr(_io.os, "fsync", lambda _fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    widget.export_csv(str(tmp_path / "out.csv"))
    severity, message = notes()[-1]
    assert severity == NotificationSeverity.ERROR and "No space left" in message
    assert not [p for p in tmp_path.iterdir() if "out.csv" in p.name]  # no file, no temporary file
    monkeypatch.undo()
    widget.export_csv(str(tmp_path / "out.csv"))  # still usable
    assert (tmp_path / "out.csv").is_file()


def test_closing_napari_mid_prediction_leaves_no_thread_and_no_file(apply, qtbot, tmp_path, monkeypatch, notes):
    viewer, widget, root = apply()
    widget.load_model(str(_model(tmp_path / "m.pt")))
    qtbot.waitUntil(lambda: not widget.loading, timeout=30_000)
    real = apply_logic.predict_sites

    def slow(*args, **kwargs):
        for pred in real(*args, **kwargs):
            time.sleep(0.05)
            yield pred
    monkeypatch.setattr(apply_logic, "predict_sites", slow)
    before, files_before = folder_hash(root), sorted(p.name for p in tmp_path.iterdir())
    qtbot.mouseClick(widget.plate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.results.sites >= 1, timeout=30000)
    viewer.close()
    assert QThreadPool.globalInstance().waitForDone(5000) and QThreadPool.globalInstance().activeThreadCount() == 0
    assert folder_hash(root) == before and sorted(p.name for p in tmp_path.iterdir()) == files_before


def test_closing_napari_mid_thumbnails_leaves_no_thread(browser, qtbot, tmp_path, monkeypatch):
    from napari_dcmix.figures import thumbnails

    real = thumbnails.make_thumbnail
    monkeypatch.setattr(thumbnails, "make_thumbnail", lambda *a, **k: time.sleep(0.02) or real(*a, **k))
    viewer, dock = browser()
    wells = [f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13)]
    root = write_imagexpress(tmp_path / "big", wells=wells, sites=1, channels=2, size=32)
    before = folder_hash(root)
    dock.open_plate(str(root))
    qtbot.waitUntil(lambda: len(dock.grid.thumbs) >= 3, timeout=10000)
    assert dock.thumbnails_running  # 96 wells at 20 ms each: still sweeping
    viewer.close()
    assert QThreadPool.globalInstance().waitForDone(5000) and QThreadPool.globalInstance().activeThreadCount() == 0
    assert folder_hash(root) == before
