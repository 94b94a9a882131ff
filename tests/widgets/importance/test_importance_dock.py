"""Importance dock and the DCMIX composite: bars equal α, composite equals Σ α_c x_c, permutation
importance, α history, exports, side-by-side grid, theme, all-channels models."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from qtpy.QtCore import Qt

from dcmix_dock_helpers import errors_since, fast_settings, no_threads_left, publish_signal_plate
from napari.utils.notifications import notification_manager
from napari_dcmix._layers import META_KEY
from napari_dcmix.colors import channel_rgb
from napari_dcmix.training import TrainConfig, Trainer
from napari_dcmix.widgets import composite as composite_module
from napari_dcmix.training.snapshot import ImportanceSnapshot
from napari_dcmix.widgets.importance.bars import ALPHA_GROUP, NOT_LEARNED_SHADE, PERMUTATION_GROUP, chart_data
from napari_dcmix.widgets.composite import COMPOSITE_NAME, composite_layers, update_composite, viewer_grid
from napari_dcmix.widgets.importance.dock import ImportanceWidget
from napari_dcmix.widgets.train.dock import TrainWidget

TIMEOUT_MS = 60_000


@pytest.fixture
def docks(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    importance = ImportanceWidget(viewer)
    viewer.window.add_dock_widget(importance, name="Channel importance")
    session, plate, labels = publish_signal_plate(viewer, tmp_path)
    yield viewer, importance, session, plate, labels
    importance.teardown()
    assert no_threads_left()


def headless_model(plate, labels, model="dcmix", epochs=1):
    config = TrainConfig(model=model, tile=16, batch_size=16, epochs=epochs, device="cpu", seed=0)
    return Trainer(plate, labels, config).fit()


def expected_composite(plate, key, trained, alpha=None) -> np.ndarray:
    """Σ_c α_c x_c computed independently: raw site -> model channel order -> normalise -> blend."""
    raw = plate.read_site(key).astype(np.float64)
    order = [plate.channels.index(c) for c in trained.channels]
    low, high = trained.stats.low.astype(np.float64), trained.stats.high.astype(np.float64)
    normalised = (raw[order] - low[:, None, None]) / (high - low)[:, None, None]
    if alpha is None:
        alpha = trained.model.mixing.alpha().detach().numpy()[0]
    alpha = np.asarray(alpha, np.float64)
    return np.einsum("c,cyx->yx", alpha, normalised)


def test_chart_and_composite_follow_training_in_the_train_dock(docks, qtbot, monkeypatch):
    viewer, importance, session, plate, _ = docks
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train")
    fast_settings(train, rounds=2)
    live_composites = []
    real_update = composite_module.update_composite

    def recording_update(viewer_, session_, payload=None, **kwargs):
        layers = real_update(viewer_, session_, payload, **kwargs)
        current = session_.importance
        if current is not None and not current.final and layers:
            live_composites.append((current.alpha[0].copy(), np.array(layers[0].data)))
        return layers

    monkeypatch.setattr(composite_module, "update_composite", recording_update)
    start = len(notification_manager.records)
    qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: train.worker is None, timeout=TIMEOUT_MS)
    qtbot.wait(100)  # the composite refresh runs on a short timer after the signal
    assert errors_since(start) == []
    assert live_composites, "the composite was not shown while training"
    for alpha, data in live_composites:  # each live composite is Σ α_c x_c with the α of that moment
        np.testing.assert_allclose(data, expected_composite(plate, session.site, session.model, alpha),
                                   rtol=1e-5, atol=1e-5)

    trained = session.model
    heights = importance.bar_heights()
    assert list(heights) == plate.channels == [t.get_text() for t in importance.ax.get_xticklabels()]
    np.testing.assert_allclose([heights[c] for c in trained.channels], trained.model.importance(), rtol=1e-6)
    alpha_bars = [p for p in importance.ax.patches if p.get_gid() == ALPHA_GROUP]
    assert len(alpha_bars) == 3
    from matplotlib.colors import to_hex

    expected = ([NOT_LEARNED_SHADE] * 3 if trained.learned is False else [c.lower() for c in channel_rgb(plate.channels)])
    assert [to_hex(p.get_facecolor()) for p in alpha_bars] == expected  # greyed when the gate says not learned
    assert importance.bar_groups() == [ALPHA_GROUP]
    assert f"{100 * trained.metadata['test_accuracy']:.0f}%" in importance.verdict_label.text()

    (layer,) = composite_layers(viewer)
    assert layer.name == COMPOSITE_NAME and layer.colormap.name == "gray" and layer.blending != "additive"
    np.testing.assert_allclose(layer.data, expected_composite(plate, session.site, trained), rtol=1e-5, atol=1e-5)

    layer.contrast_limits = (0.1, 0.6)  # the user's contrast survives a well switch
    other = plate.sites[5]
    session.set_site(other)
    qtbot.wait(100)
    assert composite_layers(viewer) == [layer]
    np.testing.assert_allclose(layer.data, expected_composite(plate, other, trained), rtol=1e-5, atol=1e-5)
    assert tuple(layer.contrast_limits) == pytest.approx((0.1, 0.6))
    train.shutdown()


def test_permutation_importance_exports_and_history(docks, qtbot, tmp_path):
    viewer, importance, session, plate, labels = docks
    session.set_model(headless_model(plate, labels, epochs=2))
    assert importance.bar_groups() == [ALPHA_GROUP]
    start = len(notification_manager.records)
    qtbot.mouseClick(importance.permutation_button, Qt.MouseButton.LeftButton)
    assert importance.permutation_job is not None
    qtbot.waitUntil(lambda: importance.permutation_job is None, timeout=TIMEOUT_MS)
    assert errors_since(start) == []
    assert importance.bar_groups() == sorted([ALPHA_GROUP, PERMUTATION_GROUP])
    permutation = importance.bar_heights(PERMUTATION_GROUP)
    assert list(permutation) == plate.channels
    assert permutation == pytest.approx(importance.permutation["normalized"])
    assert importance.bar_heights() == pytest.approx(session.model.importance())

    csv_path, png_path = tmp_path / "importance.csv", tmp_path / "importance.png"
    assert importance.export_csv(csv_path) and importance.export_png(png_path)
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["channel"] for r in rows] == plate.channels
    assert list(rows[0]) == ["channel", "alpha", "permutation_drop", "permutation_normalized", "test_accuracy",
                             "learned"]
    assert float(rows[0]["test_accuracy"]) == pytest.approx(session.model.metadata["test_accuracy"], abs=1e-5)
    assert rows[0]["learned"] == str(session.model.learned).lower()
    assert float(rows[1]["alpha"]) == pytest.approx(session.model.importance()["ch1"], abs=1e-5)
    assert float(rows[1]["permutation_drop"]) == pytest.approx(importance.permutation["drop"]["ch1"], abs=1e-5)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    importance.history_button.click()
    assert [line.get_label() for line in importance.ax.lines] == plate.channels
    assert len(importance.ax.lines[0].get_xdata()) == 2  # one point per epoch
    importance.history_button.click()
    assert importance.bar_groups() == sorted([ALPHA_GROUP, PERMUTATION_GROUP])

    session.set_model(headless_model(plate, labels, epochs=1))  # another model: the old check is stale
    assert importance.permutation is None and importance.bar_groups() == [ALPHA_GROUP]


def test_cancel_permutation_importance(docks, qtbot):
    viewer, importance, session, plate, labels = docks
    session.set_model(headless_model(plate, labels))
    importance.start_permutation()
    importance.cancel_permutation()
    qtbot.waitUntil(lambda: importance.permutation_job is None, timeout=TIMEOUT_MS)
    assert importance.permutation_button.text() == "Permutation importance"
    assert no_threads_left()


def test_all_channels_model_has_no_alpha_but_permutation_works(docks, qtbot):
    viewer, importance, session, plate, labels = docks
    session.set_model(headless_model(plate, labels, model="all-channels"))
    qtbot.wait(100)
    assert importance.bar_groups() == []
    assert any("no α" in t.get_text() for t in importance.ax.texts)
    assert composite_layers(viewer) == []
    importance.start_permutation()
    qtbot.waitUntil(lambda: importance.permutation_job is None, timeout=TIMEOUT_MS)
    assert importance.bar_groups() == [PERMUTATION_GROUP]


def test_side_by_side_theme_and_errors(docks, qtbot):
    viewer, importance, session, plate, labels = docks
    qtbot.mouseClick(importance.side_by_side_button, Qt.MouseButton.LeftButton)
    assert viewer_grid(viewer).enabled
    qtbot.mouseClick(importance.side_by_side_button, Qt.MouseButton.LeftButton)
    assert not viewer_grid(viewer).enabled
    viewer_grid(viewer).enabled = True
    assert importance.side_by_side_button.isChecked()
    viewer_grid(viewer).enabled = False

    start = len(notification_manager.records)
    qtbot.mouseClick(importance.permutation_button, Qt.MouseButton.LeftButton)
    assert importance.permutation_job is None and any("no model yet" in m for m in errors_since(start))
    dark = importance.figure.get_facecolor()
    viewer.theme = "light"
    assert importance.figure.get_facecolor() != dark


def test_update_composite_without_docks(make_napari_viewer, tmp_path):
    """Any dock (or the demo) can call update_composite; K > 1 mixed outputs give one layer each."""
    viewer = make_napari_viewer()
    session, plate, labels = publish_signal_plate(viewer, tmp_path)
    trained = headless_model(plate, labels)
    snapshot = dataclasses.replace(ImportanceSnapshot.of_model(trained),
                                   alpha=np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]], np.float32))
    layers = update_composite(viewer, session, snapshot)
    assert [l.name for l in layers] == [f"{COMPOSITE_NAME} 1", f"{COMPOSITE_NAME} 2"]
    assert all(META_KEY in l.metadata for l in layers)
    session.set_site(None)
    assert update_composite(viewer, session, snapshot) == [] and composite_layers(viewer) == []


def test_importance_logic_without_qt():
    from napari_dcmix.plate import ChannelStats

    stats = ChannelStats(["a", "b"], [0, 0], [1, 1])
    snapshot = ImportanceSnapshot(["a", "b"], np.array([[0.25, 0.75]], np.float32), {"a": 0.25, "b": 0.75}, stats,
                                  [{"a": 0.5, "b": 0.5}, {"a": 0.25, "b": 0.75}], "dcmix", 2, final=False, token="t")
    data = chart_data(snapshot, {"normalized": {"a": 0.1, "b": 0.9}, "drop": {"a": 0.0, "b": 0.4}})
    assert data.groups == {"α": [0.25, 0.75], "permutation": [0.1, 0.9]}
    assert snapshot.history_series() == ([1, 2], {"a": [0.5, 0.25], "b": [0.5, 0.75]})
    rows = snapshot.csv_rows()
    assert rows[1] == {"channel": "b", "alpha": "0.75", "permutation_drop": "", "permutation_normalized": "",
                       "test_accuracy": "", "learned": ""}
    assert "not judged yet" in snapshot.verdict_text() and not data.muted and snapshot.learned is None
    assert chart_data(None).note


def verdict(learned: bool) -> dict:
    from napari_dcmix.training.gate import Verdict

    reason = "10 of 12 held-out wells right" if learned else "6 of 12 held-out wells right is no better than chance"
    return Verdict(learned, 10 / 12 if learned else 0.5, 0.5, 0.02 if learned else 0.6, 0.9, 12, reason).to_dict()


def test_not_learned_alpha_is_greyed_and_says_why(docks, qtbot):
    """α of a model the honesty gate rejects is grey with a warning; a learned one keeps the channel colours,
    and both show the held-out accuracy beside α."""
    from matplotlib.colors import to_hex

    viewer, importance, session, plate, labels = docks
    snapshot = ImportanceSnapshot.of_model(headless_model(plate, labels))
    for learned in (True, False):
        session.set_importance(dataclasses.replace(snapshot, verdict=verdict(learned), token=learned))
        bars = [p for p in importance.ax.patches if p.get_gid() == ALPHA_GROUP]
        colours = [to_hex(p.get_facecolor()) for p in bars]
        text = importance.verdict_label.text()
        notes = [t.get_text() for t in importance.ax.texts]
        if learned:
            assert colours == [c.lower() for c in channel_rgb(plate.channels)]
            assert text.startswith("learned: held-out test accuracy 83% on 12 wells") and not any("NOT LEARNED" in n for n in notes)
        else:
            assert colours == [NOT_LEARNED_SHADE] * 3
            assert "NOT LEARNED" in text and "no better than chance" in text
            assert any("NOT LEARNED" in n for n in notes)
    assert importance.bar_heights() == pytest.approx(snapshot.importance)  # heights stay α either way
