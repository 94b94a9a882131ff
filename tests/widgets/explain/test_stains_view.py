"""*Which stains can I drop?* in the Explain dock, in a real viewer: the search runs off the GUI thread
and reuses the finished explain, the chart and summary say each phenotype's smallest panel, a channel
button shows that channel alone as the composite with its own verdict, Stop keeps the finished runs,
exports refuse the plate folder, a bad Keep field is a notification."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from qtpy.QtCore import Qt

from conftest import write_phenotype_plate
from dcmix_dock_helpers import errors_since, no_threads_left
from napari.utils.notifications import notification_manager
from napari_dcmix.widgets.composite import composite_layers, refresh_now
from test_explain_dock import TIMEOUT_MS, expected_composite, explain_and_wait, open_dock


@pytest.fixture
def two_phenotypes(tmp_path):
    return write_phenotype_plate(tmp_path / "plate", {"alpha_up": 1, "beta_up": 2})


def search_and_wait(qtbot, panel):
    view = panel.stains_view
    qtbot.mouseClick(view.button, Qt.MouseButton.LeftButton)
    assert view.job is not None, "the stain search did not start"
    qtbot.waitUntil(lambda: view.job is None, timeout=TIMEOUT_MS)


def test_stain_search_from_the_dock(make_napari_viewer, qtbot, tmp_path, two_phenotypes):
    viewer, dock, panel, session, plate = open_dock(make_napari_viewer, *two_phenotypes)
    view = panel.stains_view
    assert view.button.text() == "Which stains can I drop?" and not view.csv_button.isEnabled()
    explain_and_wait(qtbot, panel)
    start = len(notification_manager.records)
    search_and_wait(qtbot, panel)
    assert errors_since(start) == []
    answer = view.answer
    assert answer.complete and answer.runs == 6  # the dock's explain reused: 3 alone, 3 without
    assert answer.phenotypes["alpha_up"].smallest_panel == ["ch1"]
    assert answer.phenotypes["beta_up"].smallest_panel == ["ch2"]
    assert "the next assay needs ch1, ch2" in view.status_label.text()
    assert view.phenotype_combo.count() == 2 and view.phenotype_combo.currentText() == "alpha_up"
    assert "smallest panel: ch1" in view.summary_label.text()
    assert "cannot drop: ch1" in view.summary_label.text() and "feature forest" in view.summary_label.text()
    titles = [ax.get_title() for ax in view.figure.axes]
    assert titles[0].startswith("alpha_up: accuracy by panel size")
    view.phenotype_combo.setCurrentText("beta_up")
    assert view.figure.axes[0].get_title().startswith("beta_up") and "smallest panel: ch2" in view.summary_label.text()

    view.channel_buttons["ch2"].click()  # the chosen channel alone as the composite, with its verdict
    refresh_now(viewer, session)
    snapshot = session.importance
    assert snapshot.phenotype == "beta_up: ch2 alone" and snapshot.learned
    (layer,) = composite_layers(viewer)
    np.testing.assert_allclose(layer.data, expected_composite(plate, session.site, [0, 0, 1]), rtol=1e-5, atol=1e-5)
    view.channel_buttons["ch0"].click()
    assert session.importance.learned is False  # ch0 alone learns nothing: the trust line says so
    assert "NOT LEARNED" in dock.verdict_label.text()

    out = tmp_path / "out"
    out.mkdir()
    assert view.export(csv_path=out / "s.csv", png_path=out / "s.png")
    with open(out / "s.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and {r["channel"] for r in rows if r["needed"] == "True"} == {"ch1", "ch2"}
    assert (out / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    start = len(notification_manager.records)
    assert not view.export(csv_path=plate.root / "s.csv")  # the plate folder is read-only
    assert errors_since(start) and not (plate.root / "s.csv").exists()


def test_stop_keeps_finished_runs_and_a_bad_keep_is_a_notification(make_napari_viewer, qtbot, two_phenotypes):
    viewer, dock, panel, session, plate = open_dock(make_napari_viewer, *two_phenotypes)
    view = panel.stains_view
    view.keep_field.setText("DNA")
    start = len(notification_manager.records)
    qtbot.mouseClick(view.button, Qt.MouseButton.LeftButton)
    assert view.job is None and any("Keep names DNA, not a channel" in e for e in errors_since(start))

    view.keep_field.setText("ch0")
    qtbot.mouseClick(view.button, Qt.MouseButton.LeftButton)
    assert view.button.text() == "Stop stain search" and not panel.explain_button.isEnabled()
    qtbot.waitUntil(lambda: bool(view.answer is not None and view.answer.phenotypes
                                 and view.answer.phenotypes["alpha_up"].alone), timeout=TIMEOUT_MS)
    qtbot.mouseClick(view.button, Qt.MouseButton.LeftButton)  # Stop
    qtbot.waitUntil(lambda: view.job is None, timeout=TIMEOUT_MS)
    assert no_threads_left()
    answer = view.answer
    assert not answer.complete and answer.phenotypes["alpha_up"].alone
    assert "stopped early: kept the" in view.status_label.text()
    assert view.button.text() == "Which stains can I drop?" and panel.explain_button.isEnabled()
    assert session.running is None
