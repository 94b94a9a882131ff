"""Every writer of every dock, asked to write inside the open plate folder, refuses with a message that
says where to write instead, and the folder stays byte-identical (issue: one output guard)."""

from __future__ import annotations

import hashlib

import pytest
from qtpy.QtCore import QThreadPool

from conftest import SIGNAL_PATTERN, write_signal_plate
from dcmix_dock_helpers import errors_since
from napari.utils.notifications import notification_manager
from napari_dcmix.training import TrainConfig, Trainer
from napari_dcmix.training.explain import PhenotypeMatrix, PhenotypeRow
from napari_dcmix.training.gate import Verdict
from napari_dcmix.widgets.apply.dock import ApplyWidget
from napari_dcmix.widgets.explain.dock import ExplainWidget
from napari_dcmix.widgets.importance.dock import ImportanceWidget
from napari_dcmix.widgets.plate_browser.dock import PlateBrowserWidget
from napari_dcmix.widgets.train.dock import TrainWidget


def folder_digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def docks_with_a_model(make_napari_viewer, qtbot, tmp_path, monkeypatch, **plate):
    """The five docks on a plate with its labels and a briefly trained model (not yet published)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root, labels_csv = write_signal_plate(tmp_path / "plate", signal_channel=1, **plate)
    viewer = make_napari_viewer()
    browser, train, importance, explain, apply = (PlateBrowserWidget(viewer), TrainWidget(viewer),
                                                  ImportanceWidget(viewer), ExplainWidget(viewer), ApplyWidget(viewer))
    for dock in (browser, train, importance, explain, apply):
        viewer.window.add_dock_widget(dock)
    browser.open_plate(str(root), SIGNAL_PATTERN, labels_csv=str(labels_csv), column="phenotype")
    qtbot.waitUntil(lambda: not browser.busy(), timeout=20_000)
    model = Trainer(browser.plate, dict(browser.session.labels), TrainConfig(tile=16, batch_size=16, steps=10,
                                                                            device="cpu")).fit()
    return root, labels_csv, (browser, train, importance, explain, apply), browser.session, model


def test_no_dock_writes_inside_the_plate_folder(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    root, labels_csv, (browser, train, importance, explain, apply), session, model = docks_with_a_model(
        make_napari_viewer, qtbot, tmp_path, monkeypatch)
    train.files.set_trained(model)
    session.set_model(model)
    apply.predict_plate()
    qtbot.waitUntil(lambda: apply.job is None and bool(session.predictions), timeout=30_000)
    verdict = Verdict(True, 0.9, 0.5, 0.01, 0.95, 12, "11 of 12 held-out wells right")
    row = PhenotypeRow("positive", model.importance(), {c: 0.0 for c in model.channels}, verdict,
                       model.alpha_matrix().tolist(), 1)
    explain.show_matrix(PhenotypeMatrix("negative", list(model.channels), [row], stats=model.stats))
    before = folder_digest(root)

    inside = root / "sub"
    writers = {
        "Train: Save model": lambda: train.save_model(inside / "model.pt"),
        "Plate browser: Save labels": lambda: browser.save_labels(inside / "labels.csv"),
        "Channel importance: Export CSV": lambda: importance.export_csv(inside / "importance.csv"),
        "Channel importance: Export PNG": lambda: importance.export_png(inside / "importance.png"),
        "Explain: export matrix": lambda: explain.export(inside / "matrix.csv", inside / "matrix.png"),
        "Apply: Export CSV": lambda: apply.export_csv(str(inside / "predictions.csv")),
        "Apply: plate map": lambda: apply.exports.save_plate_map(str(inside / "map.png")),
        "Apply: save montage": lambda: apply.exports.montage(str(root / "top.png")),
    }
    for name, write in writers.items():
        start = len(notification_manager.records)
        write()
        messages = errors_since(start)
        assert any("inside the plate folder" in m and "-dcmix" in m for m in messages), (name, messages)
    QThreadPool.globalInstance().waitForDone(10_000)
    assert folder_digest(root) == before  # nothing written, nothing changed, no temporary files left
    for dock in (browser, train, importance, explain, apply):
        dock.teardown()


@pytest.mark.parametrize("name", ["model.pt"])
def test_the_guard_proposes_a_place_outside(tmp_path, name):
    from napari_dcmix._io import output_problem

    plate = tmp_path / "Plate7"
    plate.mkdir()
    problem = output_problem(plate / "a" / name, [plate])
    assert "inside the plate folder" in problem and str(tmp_path / "Plate7-dcmix") in problem
    assert output_problem(tmp_path / name, [plate]) is None


def test_no_dock_writes_over_a_file_it_read(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """Save model onto the loaded labels CSV, labels onto the model file, Apply's exports onto the model
    file, the matrix onto the labels: each refused with one notification, both files byte-identical."""
    root, labels_csv, (browser, train, importance, explain, apply), session, model = docks_with_a_model(
        make_napari_viewer, qtbot, tmp_path, monkeypatch, wells_per_class=3, sites=1, size=32)
    model_file = tmp_path / "loaded.pt"
    model.save(model_file)
    apply.load_model(str(model_file))
    qtbot.waitUntil(lambda: not apply.loading, timeout=30_000)
    train.files.set_trained(model)
    session.set_model(model)
    apply.predict_plate()
    qtbot.waitUntil(lambda: apply.job is None and bool(session.predictions), timeout=30_000)
    explain.show_matrix(PhenotypeMatrix("negative", list(model.channels), [PhenotypeRow(
        "positive", model.importance(), {c: 0.0 for c in model.channels}, Verdict(True, 0.9, 0.5, 0.01, 0.95, 6, "ok"),
        model.alpha_matrix().tolist(), 1)], stats=model.stats))
    before = {p: p.read_bytes() for p in (labels_csv, model_file)}
    link = tmp_path / "labels-link.csv"
    link.symlink_to(labels_csv)
    writers = {
        "Train: Save model onto the labels": (lambda: train.save_model(labels_csv), "labels file loaded"),
        "Train: Save model onto a symlink to the labels": (lambda: train.save_model(link), "labels file loaded"),
        "Plate browser: Save labels onto the model": (lambda: browser.save_labels(model_file), "model file loaded"),
        "Apply: Export CSV onto the model": (lambda: apply.export_csv(str(model_file)), "model file loaded"),
        "Apply: plate map onto the labels": (lambda: apply.exports.save_plate_map(str(labels_csv)), "labels file"),
        "Channel importance: Export CSV onto the labels": (lambda: importance.export_csv(labels_csv), "labels file"),
        "Explain: matrix CSV onto the model": (lambda: explain.export(model_file, None), "model file"),
    }
    for name, (write, text) in writers.items():
        start = len(notification_manager.records)
        write()
        messages = errors_since(start)
        assert any(text in m and "would be overwritten" in m for m in messages), (name, messages)
    QThreadPool.globalInstance().waitForDone(10_000)
    assert {p: p.read_bytes() for p in before} == before
    assert browser.save_labels(labels_csv) == labels_csv  # saving edited labels back to their own file is fine
    for dock in (browser, train, importance, explain, apply):
        dock.teardown()
