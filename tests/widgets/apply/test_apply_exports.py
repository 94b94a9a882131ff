"""The Apply dock's figures on an OME-Zarr plate: the plate map PNG is byte for byte the CLI's, the
montage arrives as a napari RGB layer with captions (built off the GUI thread) or as a PNG, and
nothing is ever written into the plate folder."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import write_zarr_signal_plate
from qtpy.QtCore import QThreadPool

from napari_dcmix.cli import main as cli_main
from napari_dcmix.figures.montage import montage_image, top_sites
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig, Trainer
from napari_dcmix.widgets.apply.dock import ApplyWidget
from napari_dcmix.widgets.apply.exports import CAPTIONS_LAYER, MONTAGE_LAYER
from napari_dcmix.widgets.session import get_session

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    root, labels_csv = write_zarr_signal_plate(folder / "signal.zarr", "0.4", wells_per_class=3)
    plate = open_plate(root)
    labels = read_labels(labels_csv, plate.sites, "phenotype")
    model = Trainer(plate, labels.site_labels, TrainConfig(epochs=1, tile=16, batch_size=16, device="cpu")).fit()
    model.save(folder / "model.pt")
    return SimpleNamespace(root=root, path=folder / "model.pt")


@pytest.fixture
def dock(make_napari_viewer, setup, qtbot):
    def factory():
        viewer = make_napari_viewer()
        widget = ApplyWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Apply")
        get_session(viewer).open_plate(open_plate(setup.root), None)
        widget.load_model(str(setup.path))
        qtbot.waitUntil(lambda: not widget.loading, timeout=30_000)
        return viewer, widget

    return factory


def predict(qtbot, widget):
    widget.predict_plate()
    qtbot.waitUntil(lambda: widget.job is None and not widget.jobs.running, timeout=WAIT_MS)


def test_plate_map_is_the_clis(dock, qtbot, setup, tmp_path):
    viewer, widget = dock()
    predict(qtbot, widget)
    assert widget.exports.value_combo.count() == 3  # prediction, negative, positive
    widget.exports.value_combo.setCurrentText("positive")
    written = widget.exports.save_plate_map(str(tmp_path / "dock.png"))
    assert written == [tmp_path / "dock.png"]
    assert cli_main(["predict", str(setup.path), str(setup.root), "--out", str(tmp_path / "p.csv"), "--device", "cpu",
                     "--plate-map", str(tmp_path / "cli.png"), "--plate-map-value", "positive"]) == 0
    assert (tmp_path / "dock.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    assert widget.exports.save_plate_map(str(setup.root / "inside.png")) == []
    assert not (setup.root / "inside.png").exists()


def test_montage_layer_and_png(dock, qtbot, setup, tmp_path):
    viewer, widget = dock()
    predict(qtbot, widget)
    widget.exports.k_spin.setValue(2)
    widget.exports.montage(None)
    qtbot.waitUntil(lambda: MONTAGE_LAYER in viewer.layers, timeout=WAIT_MS)
    layer = viewer.layers[MONTAGE_LAYER]
    site_probs = widget.results.site_probabilities()
    plate = get_session(viewer).plate
    expected, _ = montage_image(plate, top_sites(site_probs, widget.results.classes, 2), 2, tile=32)
    assert layer.rgb and layer.data.shape == expected.shape
    np.testing.assert_array_equal(layer.data, expected)
    features = viewer.layers[CAPTIONS_LAYER].features
    assert list(features["label"][features["label"] != ""]) == widget.results.classes  # one name per row
    assert any(" s1 · p " in c or " s2 · p " in c for c in features["caption"])
    qtbot.waitUntil(lambda: widget.exports.montage_button.isEnabled(), timeout=WAIT_MS)
    widget.exports.montage(str(tmp_path / "top.png"))
    qtbot.waitUntil(lambda: (tmp_path / "top.png").exists(), timeout=WAIT_MS)
    assert (tmp_path / "top.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    qtbot.waitUntil(lambda: widget.exports.montage_button.isEnabled(), timeout=WAIT_MS)
    assert QThreadPool.globalInstance().waitForDone(5000)
