"""Pure logic of the plate browser (no Qt, no viewer): grid hit-testing up to 1536 wells, selection
and navigation, tooltips, label editing, where labels are saved, thumbnails and mosaics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_dcmix.plate.wells import FORMATS, well_id
from napari_dcmix.widgets.plate_browser.grid_logic import (GridGeometry, class_colors, csv_columns, default_labels_path,
                                              display_classes, label_step, rect_wells, step_well, well_tooltip)
from napari_dcmix.widgets.plate_browser.site_layers import tile_sites
from napari_dcmix.widgets.plate_browser.thumbnails import downsample, make_thumbnail, thumbnail_size


@pytest.mark.parametrize("n", [96, 384, 1536])
def test_every_cell_centre_and_corner_maps_back_to_its_well(n):
    rows, cols = FORMATS[n]
    g = GridGeometry.fit(rows, cols, width=380, height=300)
    assert g.cell * cols <= 380 and g.cell * rows <= 300
    for r in range(rows):
        for c in range(cols):
            x, y, w, h = g.cell_rect(r, c)
            well = well_id(r, c + 1)
            assert g.hit(x + w / 2, y + h / 2) == ("well", well)
            assert g.hit(x + 0.01, y + 0.01) == ("well", well)          # top-left corner inside
            assert g.hit(x + w - 0.01, y + h - 0.01) == ("well", well)  # bottom-right corner inside


def test_1536_layout_headers_and_outside():
    g = GridGeometry.fit(32, 48, width=400, height=320, left=24, top=16)
    assert g.cell >= 6  # still clickable in a normal-size dock
    assert g.hit(*g.well_center("AF48")) == ("well", "AF48")
    assert g.hit(*g.well_center("AA01")) == ("well", "AA01")
    assert g.hit(g.ox - 5, g.oy + 2.5 * g.cell) == ("row", 2)
    assert g.hit(g.ox + 47.5 * g.cell, g.oy - 5) == ("col", 47)
    assert g.hit(g.ox - 5, g.oy - 5) == ("all",)
    assert g.hit(g.ox + 48 * g.cell + 1, g.oy + 1) == ("none",)
    assert g.cell_at(-100, -100, clamp=True) == (0, 0)
    assert g.cell_at(1e6, 1e6, clamp=True) == (31, 47)
    # header labels thin out instead of overlapping on a dense plate
    assert label_step(48, g.cell, 14) * g.cell >= 14
    assert label_step(12, 30, 14) == 1


def test_selection_and_navigation():
    present = ["B02", "B03", "C02", "C03", "D02", "D03", "D05"]
    assert rect_wells("B02", "C03", present) == ["B02", "B03", "C02", "C03"]
    assert rect_wells("D03", "B03", present) == ["B03", "C03", "D03"]
    assert step_well("B03", "next", present) == "C02"  # wraps to the next row
    assert step_well("C02", "prev", present) == "B03"
    assert step_well("D05", "next", present) == "D05"  # stays at the end
    assert step_well("B02", "down", present) == "C02"
    assert step_well("B03", "up", present) == "B03"
    assert step_well("D03", "up", present) == "C03"
    assert step_well("D05", "up", present) == "D05"  # nothing above in column 5
    assert step_well(None, "next", present) == "B02"


def test_tooltip_shows_label_sites_and_prediction():
    pred = {"prediction": "er_stress", "confidence": 0.83, "probabilities": {"er_stress": 0.83, "negative": 0.17}}
    text = well_tooltip("B02", True, "negative", 2, pred)
    assert "B02" in text and "2 sites" in text and "label: negative" in text
    assert "prediction: er_stress (83% confident)" in text and "negative: 17%" in text
    assert well_tooltip("A01", False, None, 0) == "A01: no images"
    assert "unlabeled" in well_tooltip("C03", True, None, 1)


def test_class_colours_and_display_order():
    colours = class_colors(["a", "b"])
    assert colours["a"] != colours["b"]
    assert display_classes(["a"], {("", "B02"): {"prediction": "q"}}) == ["a", "q"]


def test_default_labels_path_is_never_inside_the_plate(tmp_path):
    plate = tmp_path / "data" / "plate7"
    (plate / "images").mkdir(parents=True)
    home = tmp_path / "home"
    assert default_labels_path(plate, None, home) == home / "napari-dcmix" / "plate7_labels.csv"
    inside = plate / "labels.csv"  # e.g. the sample plate ships its labels inside the folder
    assert default_labels_path(plate, inside, home) == home / "napari-dcmix" / "plate7_labels.csv"
    beside = tmp_path / "data" / "my_labels.csv"
    assert default_labels_path(plate, beside, home) == tmp_path / "data" / "plate7_labels.csv"
    same = tmp_path / "data" / "plate7_labels.csv"  # never overwrite the CSV the labels came from
    assert default_labels_path(plate, same, home) == tmp_path / "data" / "plate7_labels_edited.csv"


def test_csv_columns_sniffs_separators(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("well;phenotype;dose\nB02;a;1\n", encoding="utf-8")
    assert csv_columns(path) == ["well", "phenotype", "dose"]


def test_thumbnail_composites_channel_colours():
    site = np.zeros((2, 64, 64), np.uint16)
    site[0, :32] = 1000  # channel 0 (blue) bright in the top half
    site[1, :, 32:] = 500  # channel 1 (green) at half intensity in the right half
    thumb = make_thumbnail(site, [0, 0], [1000, 1000], ["#0000ff", "#00ff00"], size=16)
    assert thumb.shape == (16, 16, 3) and thumb.dtype == np.uint8
    np.testing.assert_array_equal(thumb[0, 0], [0, 0, 255])
    np.testing.assert_array_equal(thumb[-1, -1], [0, 128, 0])
    np.testing.assert_array_equal(thumb[0, -1], [0, 128, 255])
    np.testing.assert_array_equal(thumb[-1, 0], [0, 0, 0])
    assert downsample(np.ones((3, 1080, 1080)), 48).shape == (3, 46, 46)
    assert thumbnail_size(1536) < thumbnail_size(96)


def test_tile_sites_places_each_site_once():
    sites = [np.full((2, 4, 5), i + 1, np.uint16) for i in range(3)]
    mosaic = tile_sites(sites, gap=1)
    assert mosaic.shape == (2, 9, 11)  # 2 x 2 tiles, 1 px gaps
    np.testing.assert_array_equal(mosaic[:, :4, :5], sites[0])
    np.testing.assert_array_equal(mosaic[:, :4, 6:], sites[1])
    np.testing.assert_array_equal(mosaic[:, 5:, :5], sites[2])
    assert mosaic[:, 5:, 6:].max() == 0 and mosaic[:, 4].max() == 0


def test_labels_path_helper_accepts_strings(tmp_path):
    assert isinstance(default_labels_path(str(tmp_path / "p"), None, tmp_path), Path)
