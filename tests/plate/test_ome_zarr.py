"""OME-Zarr HCS plates written by ome-zarr-py (NGFF 0.4 / zarr v2 and 0.5 / zarr v3): metadata-only
opening, channel names and colours from omero, lazy per-field reads, pyramid levels, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import site_pixels, write_ome_zarr_plate

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import SiteKey, open_plate
from napari_dcmix.plate.ome_zarr import is_hcs_plate
from napari_dcmix.plate.reader import read_channels


def _chunk_files(root: Path) -> list[Path]:
    """Every chunk of every full-resolution array (v2: ``s0/0/0/0/0``, v3: ``s0/c/0/0/0/0``)."""
    return [p for p in root.rglob("*") if p.is_file() and "s0" in p.parts and not p.name.startswith((".", "zarr"))]


def test_plate_wells_fields_and_named_channels(zarr_plate):
    plate = open_plate(zarr_plate)
    assert plate.layout == "ome-zarr" and plate.name == "ZPlate"
    assert plate.wells() == ["B02", "B03", "C02"]
    assert [len(plate.sites_of(w)) for w in plate.wells()] == [2, 2, 2]
    assert plate.channels == ["DNA", "ER", "Mito"]
    assert plate.channel_colors == ["#0000ff", "#00ff00", "#ff00ff"]
    assert plate.problems == []


def test_fields_read_at_full_resolution_in_channel_order(zarr_plate):
    plate = open_plate(zarr_plate)
    for key in plate.sites:
        site = plate.read_site(key)
        assert site.shape == (3, 16, 16) and site.dtype == np.uint16
        for c in range(3):
            np.testing.assert_array_equal(site[c], site_pixels(key.well, key.site, c, 16))


def test_opening_reads_no_pixels(zarr_plate):
    for chunk in _chunk_files(zarr_plate):
        chunk.write_bytes(b"\x00garbage")
    plate = open_plate(zarr_plate)  # metadata only: the damaged chunks are not touched
    assert len(plate.sites) == 6
    with pytest.raises(PlateError, match="field B/2/0 could not be read"):
        plate.read_site(SiteKey("", "B02", 1))


def test_thumbnails_read_a_lower_pyramid_level(zarr_plate):
    plate = open_plate(zarr_plate)
    refs = plate.index.sites[SiteKey("", "B03", 2)]
    small = read_channels(plate.root, refs, plate.channels, "B03 s2", min_side=8)
    assert small.shape == (3, 8, 8)
    full = read_channels(plate.root, refs, plate.channels, "B03 s2", min_side=9)
    assert full.shape == (3, 16, 16)  # the 8 px level is too small for 9 px: full resolution


def test_channel_only_axes_and_colour_fallback(tmp_path):
    import zarr

    root = write_ome_zarr_plate(tmp_path / "cyx.zarr", "0.5", wells=("A01",), fields=1, zyx=False,
                                channels=(("Hoechst", "0000FF"), ("Hoechst", "FF0000")))
    field = zarr.open_group(str(root / "A" / "1" / "0"), mode="a")
    ome = dict(field.attrs["ome"])
    ome["omero"] = {"channels": [{"label": "Hoechst", "color": "bluish"}, {"label": "Hoechst", "color": "FF0000"}]}
    field.attrs["ome"] = ome  # colours as some converters write them: not always valid hex
    plate = open_plate(root)
    assert plate.channels == ["Hoechst (C0)", "Hoechst (C1)"]  # repeated labels stay distinct
    assert plate.channel_colors == [None, "#ff0000"]
    np.testing.assert_array_equal(plate.read_site(plate.sites[0])[1], site_pixels("A01", 1, 1, 16))


def test_folder_of_plates_and_ignored_pattern(tmp_path, zarr_plate):
    assert is_hcs_plate(zarr_plate) and not is_hcs_plate(zarr_plate / "B")
    with pytest.raises(PlateError, match=rf"OME-Zarr plates \({zarr_plate.name}\); open one \.zarr folder"):
        open_plate(zarr_plate.parent)
    plate = open_plate(zarr_plate, pattern=r"(?P<well>\w+)_(?P<channel>\d)\.tif")
    assert any("--pattern ignored" in p for p in plate.problems)


def test_a_field_missing_a_channel_is_a_clear_error(tmp_path):
    import zarr

    root = write_ome_zarr_plate(tmp_path / "p.zarr", "0.4", wells=("B02", "B03"), fields=1)
    field = zarr.open_group(str(root / "B" / "3" / "0"), mode="a")
    field["s0"] = np.zeros((2, 1, 16, 16), np.uint16)  # re-written with 2 of the 3 channels
    plate = open_plate(root)
    assert plate.read_site(SiteKey("", "B02", 1)).shape == (3, 16, 16)
    with pytest.raises(PlateError, match="B/3/0 holds 2 channels"):
        plate.read_site(SiteKey("", "B03", 1))
