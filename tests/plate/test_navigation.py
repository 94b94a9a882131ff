"""Which wells a click, drag or key reaches; the mosaic of a well's sites; class colours and order."""

import numpy as np

from napari_dcmix.colors import class_colors
from napari_dcmix.plate.label_book import display_classes
from napari_dcmix.plate.mosaic import tile_sites
from napari_dcmix.plate.navigation import rect_wells, step_in_order, step_well


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


def test_stepping_through_suggested_wells_in_their_order():
    ranked = [("P", "D05"), ("P", "B02"), ("P", "C03")]  # best first, not plate order
    assert step_in_order(None, "next", ranked) == ("P", "D05")
    assert step_in_order(("P", "A01"), "prev", ranked) == ("P", "C03")  # from a well not in the list: the last
    assert step_in_order(("P", "D05"), "next", ranked) == ("P", "B02")
    assert step_in_order(("P", "C03"), "next", ranked) == ("P", "C03")  # stays at the end
    assert step_in_order(("P", "D05"), "prev", ranked) == ("P", "D05")
    assert step_in_order(("P", "B02"), "next", []) is None


def test_tile_sites_places_each_site_once():
    sites = [np.full((2, 4, 5), i + 1, np.uint16) for i in range(3)]
    mosaic = tile_sites(sites, gap=1)
    assert mosaic.shape == (2, 9, 11)  # 2 x 2 tiles, 1 px gaps
    np.testing.assert_array_equal(mosaic[:, :4, :5], sites[0])
    np.testing.assert_array_equal(mosaic[:, :4, 6:], sites[1])
    np.testing.assert_array_equal(mosaic[:, 5:, :5], sites[2])
    assert mosaic[:, 5:, 6:].max() == 0 and mosaic[:, 4].max() == 0


def test_class_colours_and_display_order():
    colours = class_colors(["a", "b"])
    assert colours["a"] != colours["b"]
    assert display_classes(["a"], {("", "B02"): {"prediction": "q"}}) == ["a", "q"]
