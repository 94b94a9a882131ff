"""The plate browser on an OME-Zarr plate (0.4 and 0.5): wells, fields, named channels in the
omero colours, thumbnails from the lower pyramid level; and the Channel names field renaming
channels for the layers and the other docks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_imagexpress, write_ome_zarr_plate
from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtCore import QThreadPool

from napari_dcmix._layers import META_KEY
from napari_dcmix.plate import SiteKey
from napari_dcmix.widgets.session import get_session


def channel_layers(viewer):
    return [layer for layer in viewer.layers if META_KEY in layer.metadata]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_browser_shows_an_ome_zarr_plate(browser, qtbot, tmp_path, version):
    viewer, dock = browser()
    root = write_ome_zarr_plate(tmp_path / f"p{version}.zarr", version, wells=("B02", "C03", "D04"), fields=2,
                                size=128)
    dock.open_plate(str(root))
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    assert dock.grid.sites == {"B02": 2, "C03": 2, "D04": 2}
    assert "3 channels (DNA, ER, Mito)" in dock.open_panel.info.text()
    layers = channel_layers(viewer)
    assert [layer.name for layer in layers] == ["DNA", "ER", "Mito"]
    np.testing.assert_allclose(layers[2].colormap.colors[-1][:3], [1.0, 0.0, 1.0])  # omero FF00FF
    np.testing.assert_array_equal(layers[1].data, dock.plate.read_site(SiteKey("", "B02", 1))[1])
    dock.site_combo.setCurrentIndex(1)
    dock.site_combo.activated.emit(1)
    assert dock.current_key == SiteKey("", "B02", 2)
    assert sorted(dock.grid.thumbs) == ["B02", "C03", "D04"]
    assert dock.grid.thumbs["B02"].width() == 32  # 48 px wanted: the 64 px pyramid level, halved (not 128 px / 3)
    assert QThreadPool.globalInstance().waitForDone(5000)


def test_channel_names_field_renames_for_every_dock(browser, qtbot, tmp_path):
    viewer, dock = browser()
    dock.open_panel.path_edit.setText(str(write_imagexpress(tmp_path / "ixm")))
    dock.open_panel.names_edit.setText("w1=DNA, w3=Mito")
    dock.open_panel.open_button.click()
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    assert [layer.name for layer in channel_layers(viewer)] == ["DNA", "w2", "Mito"]
    assert get_session(viewer).plate.channels == ["DNA", "w2", "Mito"]

    n = len(notification_manager.records)
    dock.open_panel.names_edit.setText("w9=DNA")
    dock.open_panel.open_button.click()
    errors = [r for r in notification_manager.records[n:] if r.severity == NotificationSeverity.ERROR]
    assert errors and "'w9' is not on this plate" in str(errors[-1].message)
    assert get_session(viewer).plate.channels == ["DNA", "w2", "Mito"]  # the open plate stays


def test_conditions_in_tooltips_and_the_well_filter(browser, qtbot, tmp_path):
    viewer, dock = browser()
    root = write_imagexpress(tmp_path / "ixm")
    csv_path = tmp_path / "ixm_labels.csv"
    csv_path.write_text("well,phenotype,compound,dose\nB02,negative,DMSO,0\nB03,hit,taxol,1.5\n"
                        "C02,hit,taxol,10\nC03,negative,DMSO,0\n")
    dock.open_plate(str(root), labels_csv=str(csv_path), column="phenotype")
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    tip = dock.grid.tooltip_for("C02")
    assert "label: hit" in tip and "compound: taxol" in tip and "dose: 10" in tip
    assert "compound" not in dock.grid.tooltip_for("D02")  # not in the table
    dock.conditions.edit.setText("compound=taxol, dose>=2")
    dock.conditions.button.click()
    assert dock.grid.selected() == ["C02"]
    dock.conditions.edit.setText("solvent=DMSO")
    n = len(notification_manager.records)
    assert dock.conditions.apply() == []
    errors = [r for r in notification_manager.records[n:] if r.severity == NotificationSeverity.ERROR]
    assert errors and "'solvent' is not a column" in str(errors[-1].message)
    dock.open_plate(str(write_imagexpress(tmp_path / "other", plate="Plate2")))  # another plate: no conditions
    assert dock.grid.conditions == {} and not dock.conditions.edit.isEnabled()
