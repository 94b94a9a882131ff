"""Every writer of every dock on a full disk or a failing drive (issue 22): one error notification naming
the file and the reason, the previous file byte for byte, no temporary file left, and the dock still
usable (the same export works once the disk has room). Faults are injected into the atomic writes
(``fault_injection``); the docks are real, in a real viewer."""

from __future__ import annotations

import pytest
from qtpy.QtCore import QThreadPool

from dcmix_dock_helpers import errors_since
from fault_injection import inject, previous_files, temporary_files
from napari.utils.notifications import notification_manager
from test_output_guard import docks_with_a_model


def _stains(model):
    from napari_dcmix.training.stain_figures import PanelStep, PhenotypeStains, SubsetFigures
    from napari_dcmix.training.stains import StainsAnswer

    def figures(channels, accuracy):
        return SubsetFigures(tuple(channels), accuracy, accuracy, True, 0.01, 12, [accuracy] * 3, [accuracy] * 3)

    channels = list(model.channels)
    stains = PhenotypeStains("positive", dict(model.importance()), figures(channels, 0.95),
                             alone={c: figures([c], 0.8) for c in channels},
                             curve=[PanelStep(tuple(channels), figures(channels, 0.95), None)],
                             smallest_panel=channels, panel_reason="all stains")
    return StainsAnswer("negative", channels, [], {"positive": stains}, channels, complete=True, runs=4)


@pytest.mark.parametrize("fault", ["write-mid", "replace"])
def test_no_dock_loses_a_file_to_a_full_disk(make_napari_viewer, qtbot, tmp_path, monkeypatch, fault):
    from napari_dcmix.training.explain import PhenotypeMatrix, PhenotypeRow
    from napari_dcmix.training.gate import Verdict

    root, labels_csv, (browser, train, importance, explain, apply), session, model = docks_with_a_model(
        make_napari_viewer, qtbot, tmp_path, monkeypatch, wells_per_class=3, sites=1, size=32)
    train.files.set_trained(model)
    session.set_model(model)
    apply.predict_plate()
    qtbot.waitUntil(lambda: apply.job is None and bool(session.predictions), timeout=30_000)
    explain.show_matrix(PhenotypeMatrix("negative", list(model.channels), [PhenotypeRow(
        "positive", model.importance(), {c: 0.0 for c in model.channels}, Verdict(True, 0.9, 0.5, 0.01, 0.95, 6, "ok"),
        model.alpha_matrix().tolist(), 1)], stats=model.stats))
    explain.stains_view.answer = _stains(model)
    out = tmp_path / "out"
    out.mkdir()
    montage_done = []
    writers = {  # name -> (the files, the write)
        "Train: Save model": ([out / "m.pt"], lambda: train.save_model(out / "m.pt")),
        "Plate browser: Save labels": ([out / "l.csv"], lambda: browser.save_labels(out / "l.csv")),
        "Channel importance: Export CSV": ([out / "a.csv"], lambda: importance.export_csv(out / "a.csv")),
        "Channel importance: Export PNG": ([out / "a.png"], lambda: importance.export_png(out / "a.png")),
        "Explain: matrix CSV": ([out / "x.csv"], lambda: explain.export(out / "x.csv", None)),
        "Explain: matrix PNG": ([out / "x.png"], lambda: explain.export(None, out / "x.png")),
        "Explain: stains CSV": ([out / "s.csv"], lambda: explain.stains_view.export(csv_path=out / "s.csv")),
        "Explain: stains PNG": ([out / "s.png"], lambda: explain.stains_view.export(png_path=out / "s.png")),
        "Apply: Export CSV": ([out / "p.csv"], lambda: apply.export_csv(str(out / "p.csv"))),
        "Apply: plate map": ([out / "map.png"], lambda: apply.exports.save_plate_map(str(out / "map.png"))),
        "Apply: save montage": ([out / "top.png"], lambda: montage_done.append(apply.exports.montage(str(out / "top.png")))),
    }
    for name, (paths, write) in writers.items():
        before = previous_files(*paths)
        reason = inject(monkeypatch, fault)
        start = len(notification_manager.records)
        write()
        qtbot.waitUntil(lambda: errors_since(start) != [], timeout=30_000)  # the montage is drawn in the background
        QThreadPool.globalInstance().waitForDone(10_000)
        messages = errors_since(start)
        assert len(messages) == 1 and f"cannot write {paths[0]}" in messages[0] and reason in messages[0], (name, messages)
        assert {p: p.read_bytes() for p in paths} == before, name
        assert temporary_files(out) == [], name
        monkeypatch.undo()
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        start = len(notification_manager.records)
        write()  # the disk has room again: the same export works
        qtbot.waitUntil(lambda: all(p.read_bytes() != before[p] for p in paths), timeout=30_000)
        assert errors_since(start) == [], name
    QThreadPool.globalInstance().waitForDone(10_000)
    for dock in (browser, train, importance, explain, apply):
        dock.teardown()
