"""The plate map's geometry (no Qt): hit-testing up to 1536 wells, header labels, tooltips."""

import pytest

from napari_dcmix.plate.wells import FORMATS, well_id
from napari_dcmix.widgets.plate_browser.grid_geometry import GridGeometry, label_step, well_tooltip


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


def test_tooltip_shows_label_sites_and_prediction():
    pred = {"prediction": "er_stress", "confidence": 0.83, "probabilities": {"er_stress": 0.83, "negative": 0.17}}
    text = well_tooltip("B02", True, "negative", 2, pred)
    assert "B02" in text and "2 sites" in text and "label: negative" in text
    assert "prediction: er_stress (83% confident)" in text and "negative: 17%" in text
    assert well_tooltip("A01", False, None, 0) == "A01: no images"
    assert "unlabeled" in well_tooltip("C03", True, None, 1)
