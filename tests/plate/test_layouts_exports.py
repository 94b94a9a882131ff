"""Real export names detected without --pattern: ImageXpress with a bracketed GUID and Thermo
Cellomics ArrayScan / CellInsight (fields counted from 0, channels d0…, ``.TIF`` upper-case)."""

from __future__ import annotations

import numpy as np
import tifffile
from conftest import site_pixels

from napari_dcmix.plate import SiteKey, open_plate

GUIDS = ["9AA4D9EA-18E4-4354-8C7D-0202029A8048", "0F1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"]


def test_imagexpress_bracketed_guid(tmp_path):
    for w in (1, 2):
        for well in ("C16", "C17"):
            name = f"101210OranePlt1_{well}_w{w}_[{GUIDS[w - 1]}].tif"
            tifffile.imwrite(tmp_path / name, site_pixels(well, 1, w - 1))
    tifffile.imwrite(tmp_path / f"101210OranePlt1_C16_w1_thumb[{GUIDS[0]}].tif", np.zeros((4, 4), np.uint16))
    plate = open_plate(tmp_path)
    assert plate.layout == "imagexpress" and plate.plates == ["101210OranePlt1"]
    assert plate.wells() == ["C16", "C17"] and plate.channels == ["w1", "w2"]
    assert plate.sites == [SiteKey("101210OranePlt1", "C16", 1), SiteKey("101210OranePlt1", "C17", 1)]
    np.testing.assert_array_equal(plate.read_site(plate.sites[1])[1], site_pixels("C17", 1, 1))


def test_arrayscan_cellinsight_names(tmp_path):
    for well in ("D03", "D04"):
        for field in (0, 1):
            for d in (0, 1, 2):
                suffix = ".TIF" if d == 2 else ".tif"  # both spellings occur in one export
                name = f"AS_09125_050116030001_{well}f{field:02d}d{d}{suffix}"
                tifffile.imwrite(tmp_path / name, site_pixels(well, field + 1, d))
    plate = open_plate(tmp_path)
    assert plate.layout == "arrayscan"
    assert plate.plates == ["AS_09125_050116030001"]
    assert plate.wells() == ["D03", "D04"] and plate.channels == ["d0", "d1", "d2"]
    assert [k.site for k in plate.sites_of("D03", "AS_09125_050116030001")] == [1, 2]  # field 00 is site 1
    site = plate.read_site(SiteKey("AS_09125_050116030001", "D04", 2))
    for d in range(3):
        np.testing.assert_array_equal(site[d], site_pixels("D04", 2, d))
    assert plate.problems == []
