"""Apply dock through a real viewer: predict (streamed, cancellable), table, CSV == CLI, Z′, lifecycle."""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace

import pytest
from qtpy.QtCore import Qt, QThreadPool

from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.cli import main as cli_main
from napari_dcmix.errors import DcmixError
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig, Trainer, predict_sites, prediction_record, well_probabilities
from napari_dcmix.training.zfactor import z_prime
from napari_dcmix.training import predictor as apply_logic
from napari_dcmix.training.controls import CHOOSE_REFERENCE
from napari_dcmix.widgets.apply import dock as apply_dock
from napari_dcmix.widgets.apply.dock import ApplyWidget
from napari_dcmix.widgets.session import get_session

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny signal plate and a model trained on it once for the module (a few seconds on CPU)."""
    root, labels_csv = write_signal_plate(tmp_path_factory.mktemp("apply") / "plate")
    plate = open_plate(root, SIGNAL_PATTERN)
    labels = read_labels(labels_csv, plate.sites, "phenotype")
    config = TrainConfig(epochs=1, tile=16, batch_size=16, coverage=2, device="cpu")
    model = Trainer(plate, labels.site_labels, config).fit()
    path = root.parent / "model.pt"
    model.save(path)
    return SimpleNamespace(root=root, model=model, path=path, labels=labels.well_labels())


@pytest.fixture(autouse=True)
def no_threads_left():
    yield
    pool = QThreadPool.globalInstance()
    assert pool.waitForDone(5000)
    assert pool.activeThreadCount() == 0


@pytest.fixture
def notes():
    """Messages of napari notifications shown during the test."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [str(n.message) for n in notification_manager.records[start:]]


@pytest.fixture
def open_dock(make_napari_viewer, setup):
    """Factory of (viewer, widget, session) with the plate and the just-trained model on the session.

    A factory, not the objects: a fixture value would keep the viewer alive through napari's leak check.
    """
    def factory():
        viewer = make_napari_viewer()
        widget = ApplyWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Apply")
        session = get_session(viewer)
        session.open_plate(open_plate(setup.root, SIGNAL_PATTERN), SIGNAL_PATTERN)
        session.set_model(setup.model)
        return viewer, widget, session

    return factory


def slow_predictions(monkeypatch, delay=0.1):
    real = apply_logic.predict_sites

    def slow(*args, **kwargs):
        for pred in real(*args, **kwargs):
            time.sleep(delay)
            yield pred

    monkeypatch.setattr(apply_logic, "predict_sites", slow)


def run_plate(qtbot, widget):
    qtbot.mouseClick(widget.plate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.job is None and not widget.jobs.running, timeout=WAIT_MS)


def column(table, name):
    header = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    c = header.index(name)
    return [table.item(r, c).text() for r in range(table.rowCount())]


def test_predict_plate_table_and_csv_match_cli(qtbot, open_dock, setup, tmp_path, notes):
    viewer, widget, session = open_dock()
    assert "ch0, ch1, ch2" in widget.summary.text() and "negative, positive" in widget.summary.text()
    run_plate(qtbot, widget)
    assert not [m for m in notes() if "error" in m.lower()]

    # every well, with records equal to well means of predict_sites
    plate = session.plate
    direct = well_probabilities(list(predict_sites(setup.model, plate, device="cpu")))
    assert set(session.predictions) == set(plate.well_keys()) == set(direct)
    for pw, probs in direct.items():
        want, got = prediction_record(setup.model.classes, probs), session.predictions[pw]
        assert got["prediction"] == want["prediction"]
        assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-6)
        for c in setup.model.classes:
            assert got["probabilities"][c] == pytest.approx(want["probabilities"][c], abs=1e-6)

    # one row per well; numeric and plate-order sorting
    table = widget.table
    assert table.rowCount() == 16
    header = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert header == ["well", "prediction", "confidence", "p_negative", "p_positive"]
    table.sortItems(header.index("confidence"), Qt.SortOrder.DescendingOrder)
    conf = [float(v) for v in column(table, "confidence")]
    assert conf == sorted(conf, reverse=True)
    table.sortItems(0, Qt.SortOrder.AscendingOrder)
    assert column(table, "well") == [w for _, w in plate.well_keys()]
    assert "(16 wells)" in widget.counts.text()

    # clicking a row shows that well
    table.sortItems(0, Qt.SortOrder.DescendingOrder)
    row0_well = table.item(0, 0).text()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(table.item(0, 1)).center())
    assert session.site is not None and session.site.well == row0_well and session.site.site == 1

    # export: byte-identical to the CLI, per well and per site, csv and pycytominer
    for fmt, per_site in (("csv", False), ("csv", True), ("pycytominer", False)):
        widget.format_combo.setCurrentText(fmt)
        widget.per_site.setChecked(per_site)
        ours, cli = tmp_path / f"dock_{fmt}{per_site}.csv", tmp_path / f"cli_{fmt}{per_site}.csv"
        widget.export_csv(str(ours))
        argv = ["predict", str(setup.path), str(setup.root), "--pattern", SIGNAL_PATTERN, "--out", str(cli),
                "--device", "cpu", "--format", fmt] + (["--per-site"] if per_site else [])
        assert cli_main(argv) == 0
        assert ours.read_bytes() == cli.read_bytes() and len(ours.read_text().splitlines()) > 16
        assert ours.read_text().startswith("Metadata_Plate,Metadata_Well,Metadata_Site," if fmt == "pycytominer"
                                           else "well,site," if per_site else "well,prediction,")
    widget.per_site.setChecked(True)
    assert widget.table.rowCount() == 32 and "site" in [widget.table.horizontalHeaderItem(c).text() for c in range(6)]

    # never into the plate folder
    widget.export_csv(str(setup.root / "inside.csv"))
    assert not (setup.root / "inside.csv").exists()
    assert "inside the plate folder" in notes()[-1]


def test_export_dialog_defaults_outside_plate(qtbot, open_dock, setup, tmp_path, monkeypatch):
    viewer, widget, session = open_dock()
    run_plate(qtbot, widget)
    seen = {}

    def fake_dialog(parent, title, start, filters):
        seen["start"] = start
        return str(tmp_path / "chosen.csv"), filters

    monkeypatch.setattr(apply_dock.QFileDialog, "getSaveFileName", fake_dialog)
    qtbot.mouseClick(widget.export_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "chosen.csv").read_text().startswith("well,prediction,confidence,p_negative,p_positive")
    assert not seen["start"].startswith(str(setup.root) + "/")


def test_cancel_keeps_partial_results(qtbot, open_dock, monkeypatch):
    viewer, widget, session = open_dock()
    slow_predictions(monkeypatch)
    qtbot.mouseClick(widget.plate_button, Qt.MouseButton.LeftButton)
    assert widget.cancel_button.isEnabled() and not widget.plate_button.isEnabled()
    qtbot.waitUntil(lambda: len(session.predictions) >= 2, timeout=WAIT_MS)  # streamed, not at the end
    qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.job is None and not widget.jobs.running, timeout=WAIT_MS)
    assert 2 <= len(session.predictions) < 16
    assert widget.table.rowCount() == len(session.predictions)
    assert widget.status.text().startswith("cancelled")
    assert widget.plate_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_predict_current_well(qtbot, open_dock, notes):
    viewer, widget, session = open_dock()
    qtbot.mouseClick(widget.well_button, Qt.MouseButton.LeftButton)
    assert "no well chosen" in notes()[-1]
    session.set_site(session.plate.sites_of("C02")[0])
    qtbot.mouseClick(widget.well_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.job is None and not widget.jobs.running, timeout=WAIT_MS)
    assert list(session.predictions) == [("", "C02")]
    assert widget.table.rowCount() == 1


def test_channel_mismatch_names_channels(qtbot, open_dock, setup, notes):
    viewer, widget, session = open_dock()
    session.set_model(dataclasses.replace(setup.model, channels=["ch0", "ch1", "DAPI"]))
    qtbot.mouseClick(widget.plate_button, Qt.MouseButton.LeftButton)
    message = notes()[-1]
    assert "missing: DAPI" in message and "extra: ch2" in message
    assert widget.job is None and not session.predictions and widget.plate_button.isEnabled()


def test_load_model_file(qtbot, open_dock, setup, tmp_path, notes, monkeypatch):
    viewer, widget, session = open_dock()
    session.set_model(None)
    assert "No model yet" in widget.summary.text()
    bad = tmp_path / "bad.pt"
    bad.write_text("not a model")
    monkeypatch.setattr(apply_dock.QFileDialog, "getOpenFileName", lambda *a: (str(bad), ""))
    qtbot.mouseClick(widget.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.loading, timeout=WAIT_MS)  # loaded in the background
    assert "not a napari-dcmix model file" in notes()[-1] and widget.loaded_model is None
    assert "No model yet" in widget.summary.text()  # nothing changed
    monkeypatch.setattr(apply_dock.QFileDialog, "getOpenFileName", lambda *a: (str(setup.path), ""))
    qtbot.mouseClick(widget.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.loading, timeout=WAIT_MS)
    assert widget.use_file.isChecked() and widget.model is widget.loaded_model
    assert "ch0, ch1, ch2" in widget.summary.text()
    run_plate(qtbot, widget)
    assert len(session.predictions) == 16


def test_z_prime_in_dock(qtbot, open_dock, setup):
    viewer, widget, session = open_dock()
    session.set_labels(setup.labels, "phenotype")
    assert widget.negative_combo.currentText() == "negative"
    assert widget.positive_combo.currentText() == "positive"
    assert "at least 2" in widget.z_label.text()  # nothing predicted yet
    run_plate(qtbot, widget)
    pos = [session.predictions[pw]["probabilities"]["positive"] for pw, c in setup.labels.items() if c == "positive"]
    neg = [session.predictions[pw]["probabilities"]["positive"] for pw, c in setup.labels.items() if c == "negative"]
    assert len(pos) == len(neg) == 8
    assert widget.z_label.text().startswith(f"Z′ = {z_prime(pos, neg):.2f} on P(positive vs negative), 8 positive vs 8 negative")
    widget.positive_combo.setCurrentText("negative")
    assert "two different" in widget.z_label.text()


def test_z_prime_controls_the_names_do_not_tell_are_chosen_by_the_user(qtbot, open_dock, setup):
    viewer, widget, session = open_dock()
    session.set_model(dataclasses.replace(setup.model, classes=["a", "b"]))  # neither named like a control
    session.set_labels({pw: {"negative": "a", "positive": "b"}[c] for pw, c in setup.labels.items()}, "phenotype")
    assert widget.negative_combo.currentText() == CHOOSE_REFERENCE
    assert "cannot tell which class is the negative control among a, b" in widget.z_label.text()
    run_plate(qtbot, widget)
    assert "cannot tell" in widget.z_label.text()  # still the user's choice, never a silent pick
    widget.negative_combo.setCurrentText("a")  # the phenotype box follows: the one class left
    assert widget.positive_combo.currentText() == "b"
    assert widget.z_label.text().startswith("Z′ = ") and "on P(b vs a), 8 b vs 8 a wells" in widget.z_label.text()


def test_worker_error_is_a_notification_and_dock_stays_usable(qtbot, open_dock, monkeypatch, notes):
    viewer, widget, session = open_dock()
    real = apply_logic.predict_sites

    def failing(*args, **kwargs):
        gen = real(*args, **kwargs)
        yield next(gen)
        raise DcmixError("the plate folder disappeared; reconnect the drive and predict again")

    monkeypatch.setattr(apply_logic, "predict_sites", failing)
    run_plate(qtbot, widget)
    assert "reconnect the drive" in notes()[-1]
    assert len(session.predictions) == 1 and widget.plate_button.isEnabled()
    monkeypatch.undo()
    run_plate(qtbot, widget)
    assert len(session.predictions) == 16


@pytest.mark.parametrize("how", ["dock", "viewer", "plate"])
def test_closing_mid_run_stops_worker(qtbot, open_dock, setup, monkeypatch, notes, how):
    viewer, widget, session = open_dock()
    slow_predictions(monkeypatch)
    qtbot.mouseClick(widget.plate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.results.sites >= 1, timeout=WAIT_MS)
    job = widget.job
    if how == "dock":
        viewer.window.remove_dock_widget(widget)
    elif how == "viewer":
        viewer.close()
    else:
        session.open_plate(open_plate(setup.root, SIGNAL_PATTERN), SIGNAL_PATTERN)
        assert widget.job is None and widget.plate_button.isEnabled() and widget.table.rowCount() == 0
    qtbot.waitUntil(lambda: job.cancelled, timeout=2000)
    assert QThreadPool.globalInstance().waitForDone(5000)
    assert job.thread_done and not job.worker.is_running
    assert widget.results.sites < 32
    qtbot.wait(50)  # let the worker's last queued signals arrive
    assert not [m for m in notes() if "skipped" in m or "error" in m.lower()]
    if how == "plate":
        assert not session.predictions  # late sites of the old run are ignored


def test_opens_from_the_plugins_menu(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-dcmix", "Apply")
    assert isinstance(widget, ApplyWidget) and "No model yet" in widget.summary.text()
    assert widget.session is get_session(viewer)  # keyed on the viewer, not on the proxy plugins get
    qtbot.mouseClick(widget.plate_button, Qt.MouseButton.LeftButton)  # explains what is missing
    assert "no plate is open" in notes()[-1]
    qtbot.mouseClick(widget.export_button, Qt.MouseButton.LeftButton)
    assert "nothing to export yet" in notes()[-1]
