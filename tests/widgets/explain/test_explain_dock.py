"""Explain per phenotype in the Channel importance dock, in a real viewer: the matrix (each phenotype's
true channel on top), not-learned rows greyed, Cancel keeps rows, exports and their plate-folder guard,
a row click shows that phenotype's composite, errors as notifications."""

from __future__ import annotations

import csv
import hashlib
import threading

import numpy as np
import pytest
from matplotlib.backend_bases import MouseEvent
from matplotlib.colors import to_hex
from qtpy.QtCore import Qt

from conftest import SIGNAL_PATTERN, write_phenotype_plate
from dcmix_dock_helpers import errors_since, no_threads_left
from napari.utils.notifications import notification_manager
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig
from napari_dcmix.training.explain import ALL_PHENOTYPES
from napari_dcmix.training.matrix_figure import NOT_LEARNED_SHADE
from napari_dcmix.training import explain as explain_module
from napari_dcmix.training.controls import CHOOSE_REFERENCE
from napari_dcmix.widgets.session import TRAIN_RUN
from napari_dcmix.widgets.composite import COMPOSITE_NAME, composite_layers, refresh_now
from napari_dcmix.widgets.explain.dock import ExplainWidget
from napari_dcmix.widgets.importance.dock import ImportanceWidget
from napari_dcmix.widgets.session import get_session

TIMEOUT_MS = 240_000
TINY = TrainConfig(eval_every=20, patience=100, tile=16, batch_size=16, coverage=2, device="cpu", seed=0)


def open_dock(make_napari_viewer, root, csv_path, labels=None):
    """The Explain dock (``panel``) beside the Channel importance dock (``dock``), which shows the chosen row too."""
    viewer = make_napari_viewer()
    dock = ImportanceWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Channel importance")
    panel = ExplainWidget(viewer)
    viewer.window.add_dock_widget(panel, name="Explain per phenotype")
    plate = open_plate(root, SIGNAL_PATTERN)
    labels = labels or read_labels(csv_path, plate.sites, "phenotype").well_labels()
    session = get_session(viewer)
    session.open_plate(plate, SIGNAL_PATTERN)
    session.set_labels(labels, "phenotype")
    session.set_site(plate.sites[0])
    panel.base_config = TINY
    panel.steps.setValue(80)
    return viewer, dock, panel, session, plate


def explain_and_wait(qtbot, panel):
    qtbot.mouseClick(panel.explain_button, Qt.MouseButton.LeftButton)
    assert panel.worker is not None, "Explain did not start a worker"
    qtbot.waitUntil(lambda: panel.worker is None, timeout=TIMEOUT_MS)


def folder_digest(root) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def expected_composite(plate, key, alpha) -> np.ndarray:
    """Σ_c α_c x_c computed independently from the raw site and the plate's own statistics."""
    raw = plate.read_site(key).astype(np.float64)
    stats = plate.channel_stats(plate_id=plate.plates[0])
    low, high = stats.low.astype(np.float64), stats.high.astype(np.float64)
    normalised = (raw - low[:, None, None]) / (high - low)[:, None, None]
    return np.einsum("c,cyx->yx", np.asarray(alpha, np.float64), normalised)


def click_matrix_row(panel, index: int) -> None:
    """A real matplotlib click on row ``index`` of the heat map (what the user does)."""
    panel.canvas.draw()
    ax = panel.figure.axes[0]
    x, y = ax.transData.transform((0, index))
    MouseEvent("button_press_event", panel.canvas, x, y, button=1)._process()


@pytest.fixture
def two_phenotypes(tmp_path):
    return write_phenotype_plate(tmp_path / "plate", {"alpha_up": 1, "beta_up": 2})


def test_matrix_rows_click_composite_and_exports(make_napari_viewer, qtbot, tmp_path, two_phenotypes):
    viewer, dock, panel, session, plate = open_dock(make_napari_viewer, *two_phenotypes)
    assert panel.reference_combo.currentText() == "negative"  # guessed from the class names
    start = len(notification_manager.records)
    explain_and_wait(qtbot, panel)
    assert errors_since(start) == []

    matrix = panel.matrix
    assert matrix.complete and [r.phenotype for r in matrix.rows] == ["alpha_up", "beta_up", ALL_PHENOTYPES]
    ax = panel.figure.axes[0]  # the drawn heat map: α values and each row's top channel
    shown = ax.images[0].get_array()
    np.testing.assert_allclose(shown, matrix.values())
    columns = [t.get_text() for t in ax.get_xticklabels()]
    assert columns[int(np.argmax(shown[0]))] == "ch1" and columns[int(np.argmax(shown[1]))] == "ch2"
    assert all(matrix.row(p).learned for p in ("alpha_up", "beta_up"))
    assert to_hex(panel.figure.get_facecolor()) != "#ffffff"  # themed like the other charts (dark)
    assert [panel.row_list.item(i).text().split(":")[0] for i in range(3)] == [
        "alpha_up", "beta_up", "all phenotypes (every class at once)"]
    # the phenotype panel (not the multi-class model) became the session's model: Apply predicts with it,
    # and the status line says so with its out-of-fold accuracy and Z′ of every phenotype
    model = session.model
    assert model.kind == "dcmix-panel"
    assert model.classes == ["alpha_up", "beta_up", "negative"] and model.metadata["members"] == 3  # a model per fold
    status = panel.status_label.text()
    assert "Apply now predicts with the phenotype panel" in status and "session's model" in status
    assert f"held-out accuracy {model.metadata['test_accuracy']:.2f}" in status and "Z′ alpha_up" in status
    assert "held-out test accuracy" in dock.verdict_label.text() or "NOT LEARNED" in dock.verdict_label.text()

    for index, phenotype in ((1, "beta_up"), (0, "alpha_up")):  # a click on a row shows its composite
        click_matrix_row(panel, index)
        refresh_now(viewer, session)
        row = matrix.row(phenotype)
        (layer,) = composite_layers(viewer)
        assert layer.name == COMPOSITE_NAME
        np.testing.assert_allclose(layer.data, expected_composite(plate, session.site, row.alpha[0]),
                                   rtol=1e-5, atol=1e-5)
        assert dock.bar_heights() == pytest.approx(row.importance)
        assert panel.bar_heights() == pytest.approx(row.importance)  # the row's α beside the matrix
        assert phenotype in panel.row_title.text() and panel.selected.phenotype == phenotype
        assert phenotype in dock.info_label.text() and "held-out test accuracy" in dock.verdict_label.text()
    other = plate.sites[3]
    session.set_site(other)  # the chosen phenotype's composite follows the current site
    refresh_now(viewer, session)
    np.testing.assert_allclose(composite_layers(viewer)[0].data,
                               expected_composite(plate, other, matrix.row("alpha_up").alpha[0]), rtol=1e-5, atol=1e-5)

    out = tmp_path / "out"
    out.mkdir()
    assert panel.export(csv_path=out / "m.csv", png_path=out / "m.png")
    with open(out / "m.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["phenotype"] for r in rows] == ["alpha_up", "beta_up", ALL_PHENOTYPES]
    assert float(rows[0]["alpha_ch1"]) == pytest.approx(matrix.row("alpha_up").importance["ch1"], abs=1e-4)
    assert (out / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    before = folder_digest(plate.root)
    for kwargs in ({"csv_path": plate.root / "m.csv"}, {"png_path": plate.root / "sub" / "m.png"}):
        start = len(notification_manager.records)
        assert not panel.export(**kwargs)
        messages = errors_since(start)
        assert any("inside the plate folder" in m and "-dcmix" in m for m in messages), messages
    assert folder_digest(plate.root) == before  # byte-identical
    panel.shutdown()
    assert no_threads_left()


def test_shuffled_labels_row_is_greyed_with_the_reason(make_napari_viewer, qtbot, tmp_path, two_phenotypes):
    root, csv_path = two_phenotypes
    plate = open_plate(root, SIGNAL_PATTERN)
    wells = sorted(read_labels(csv_path, plate.sites, "phenotype").well_labels())
    names = np.random.default_rng(3).permutation(["negative", "noise"] * (len(wells) // 2))
    shuffled = {w: str(c) for w, c in zip(wells, names)}
    viewer, dock, panel, session, plate = open_dock(make_napari_viewer, root, csv_path, shuffled)
    explain_and_wait(qtbot, panel)
    (row,) = panel.matrix.rows  # one phenotype: no all-phenotypes model
    assert row.phenotype == "noise" and not row.learned
    item = panel.row_list.item(0)
    assert "NOT LEARNED" in item.text() and row.verdict.reason in item.toolTip()
    assert to_hex(item.foreground().color().name()) == NOT_LEARNED_SHADE
    ax = panel.figure.axes[0]
    grey = [p for p in ax.patches if to_hex(p.get_facecolor()) == NOT_LEARNED_SHADE]
    assert len(grey) == 1 and grey[0].get_y() == pytest.approx(-0.5)  # the band over row 0
    assert f"acc {row.verdict.accuracy:.2f}" in ax.get_yticklabels()[0].get_text()  # α never without it
    assert to_hex(ax.get_yticklabels()[0].get_color()) == NOT_LEARNED_SHADE
    shown = [t.get_text() for t in ax.texts if t.get_visible()]
    assert shown == ["NOT LEARNED"]  # the row's α values are hidden under the band
    # one phenotype: the panel of its models is the session's model, NOT LEARNED, and says so
    assert session.model.kind == "dcmix-panel" and session.model.learned is False
    assert "(NOT LEARNED: do not trust its calls)" in panel.status_label.text()
    panel.select_row("noise")
    assert "NOT LEARNED" in dock.verdict_label.text() and row.verdict.reason in panel.reason_label.text()
    bars = [p for p in dock.ax.patches if p.get_gid()]
    assert {to_hex(p.get_facecolor()) for p in bars} == {NOT_LEARNED_SHADE}  # the α bars are greyed too


def test_cancel_keeps_finished_rows_and_runs_off_the_gui_thread(make_napari_viewer, qtbot, monkeypatch,
                                                               two_phenotypes, two_fold_threads):
    viewer, dock, panel, session, plate = open_dock(make_napari_viewer, *two_phenotypes)
    threads = []
    real = explain_module.Explainer

    def recording(*args, **kwargs):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(explain_module, "Explainer", recording)
    panel.folds.setValue(3)  # 2 side by side, the third starts when one ends: the Stop comes before it ends
    panel.steps.setValue(40)
    progress, side_by_side = [], []

    def on_event(event):
        progress.append(panel.progress_bar.value())
        side_by_side.append(event.side_by_side)
        if event.kind == "row" and panel.explain_button.isEnabled():
            qtbot.mouseClick(panel.explain_button, Qt.MouseButton.LeftButton)  # "Cancel explain"

    qtbot.mouseClick(panel.explain_button, Qt.MouseButton.LeftButton)
    assert panel.explain_button.text() == "Cancel explain" and session.training
    panel.worker.yielded.connect(on_event)
    qtbot.waitUntil(lambda: panel.worker is None, timeout=TIMEOUT_MS)
    assert threads == [False]  # built and run in the worker thread, never on the GUI thread
    assert max(side_by_side) == 2  # two folds at once, a thread each
    assert progress == sorted(progress) and 0 < progress[-1] < 1000  # never steps back, though folds overlap
    matrix = panel.matrix  # the folds finished before the Stop (1, or 2 when the one beside it ended too)
    kept = matrix.rows[0].repeats
    assert not matrix.complete and [r.phenotype for r in matrix.rows] == ["alpha_up", "beta_up", ALL_PHENOTYPES]
    assert kept in (1, 2) and all(r.partial and r.repeats == kept for r in matrix.rows)
    assert panel.row_list.count() == 3 and f"(partial: {kept} model" in panel.row_list.item(0).text()
    plural = "s" if kept > 1 else ""
    assert f"stopped: kept the {kept} finished fold model{plural} in 3 rows marked partial" in panel.status_label.text()
    assert session.model is None and not session.training  # a cancelled run replaces no model
    assert panel.explain_button.text() == "Explain per phenotype" and no_threads_left()


def test_reference_that_cannot_be_guessed_is_asked_for(make_napari_viewer, qtbot, tmp_path):
    root, csv_path = write_phenotype_plate(tmp_path / "plate", {"b": 1}, reference="a", wells_per_class=3)
    viewer, dock, panel, session, plate = open_dock(make_napari_viewer, root, csv_path)
    assert panel.reference_combo.currentText() == CHOOSE_REFERENCE
    assert "choose the reference class" in panel.reference_hint.text()
    start = len(notification_manager.records)
    qtbot.mouseClick(panel.explain_button, Qt.MouseButton.LeftButton)
    assert panel.worker is None and any("Reference box" in m for m in errors_since(start))
    panel.reference_combo.setCurrentText("a")
    assert panel.config().reference == "a"
    session.begin_run(TRAIN_RUN)  # the Train dock is training: explain waits for it
    start = len(notification_manager.records)
    panel.start()
    assert panel.worker is None and any("Train dock" in m for m in errors_since(start))
    session.end_run(TRAIN_RUN)
    start = len(notification_manager.records)
    assert not panel.export(csv_path=tmp_path / "m.csv")
    assert any("nothing to export" in m for m in errors_since(start))
