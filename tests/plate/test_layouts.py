"""Every built-in layout detected from names alone, the sample-plate manifest, and the user's regex."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from conftest import (
    HARMONY_NS, WELLS_6, png_pixels, site_pixels, write_imagexpress, write_ome_sites, write_operetta, write_rxrx1,
)

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import SiteKey, open_plate
from napari_dcmix.plate.layouts import (
    IMAGEXPRESS, MULTICHANNEL_TIFF, OME_TIFF, OPERETTA, RXRX1, RXRX1_CHANNELS, harmony_channel_names, user_layout,
)

GUID = "9A1E2A7D-1234-4BCD-8EF0-0123456789AB"


# --- ImageXpress -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("Plate1_B02_s3_w2.tif", {"plate": "Plate1", "well": "B02", "site": "3", "channel": "2"}),
    (f"Plate1_B02_s3_w2{GUID}.tif", {"plate": "Plate1", "well": "B02", "site": "3", "channel": "2"}),
    ("Plate1_B02_s3_w212345678-1234-5678-9ABC-DEF012345678.tif", {"plate": "Plate1", "well": "B02", "site": "3", "channel": "2"}),
    (f"Plate1_B02_s3_w10{GUID}.TIF", {"plate": "Plate1", "well": "B02", "site": "3", "channel": "10"}),
    ("Plate1_B02_s3_w12.tif", {"plate": "Plate1", "well": "B02", "site": "3", "channel": "12"}),
    (f"Week1_150607_B02_s1_w1{GUID}.tif", {"plate": "Week1_150607", "well": "B02", "site": "1", "channel": "1"}),
    ("My_Plate_A1_B02_w3.tif", {"plate": "My_Plate_A1", "well": "B02", "channel": "3"}),
    ("A01_B02_w1.tiff", {"plate": "A01", "well": "B02", "channel": "1"}),
    ("B02_s1_w1.tif", {"well": "B02", "site": "1", "channel": "1"}),  # no plate prefix: not plate B02 / well s1
    ("Plate1_AF48_s9_w6.tif", {"plate": "Plate1", "well": "AF48", "site": "9", "channel": "6"}),
    ("TimePoint_3/Plate1_B02_s1_w1.tif", {"timepoint": "3", "plate": "Plate1", "well": "B02", "site": "1", "channel": "1"}),
    ("run/TimePoint_2/ZStep_4/P_C10_w2.tif", {"timepoint": "2", "plane": "4", "plate": "P", "well": "C10", "channel": "2"}),
])
def test_imagexpress_names(name, expected):
    assert IMAGEXPRESS.match(name) == expected


@pytest.mark.parametrize("name", [
    f"Plate1_B02_s1_w1_thumb{GUID}.tif", "Plate1_B02_s1_w1_thumb.tif", "Plate1_B02_s1_w1.png", "Plate1_B02_s1.tif",
    "Plate1_B02_s1_w1.ome.tif", "Plate1_B02_s1_wA.tif",
])
def test_imagexpress_ignores(name):
    assert IMAGEXPRESS.match(name) is None


def test_imagexpress_thumb_folder_name_is_not_a_thumbnail():
    assert IMAGEXPRESS.match("my_thumbs/Plate1_B02_s1_w1.tif") is not None


def test_open_imagexpress(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    assert plate.layout == "imagexpress"
    assert plate.channels == ["w1", "w2", "w3"]
    assert plate.plates == ["Plate1"]
    assert plate.wells() == WELLS_6
    assert len(plate.sites) == 12 and plate.problems == []  # thumbnails ignored silently
    assert plate.sites_of("B02") == [SiteKey("Plate1", "B02", 1), SiteKey("Plate1", "B02", 2)]
    site = plate.read_site(SiteKey("Plate1", "C03", 2))
    assert site.shape == (3, 16, 16) and site.dtype == np.uint16
    for c in range(3):
        np.testing.assert_array_equal(site[c], site_pixels("C03", 2, c))


def test_imagexpress_single_site_wells_and_underscored_plate(tmp_path):
    root = write_imagexpress(tmp_path / "ixm", wells=["A01", "H12"], sites=1, channels=2, size=8, plate="Week1_150607")
    plate = open_plate(root)
    assert plate.layout == "imagexpress"
    assert plate.plates == ["Week1_150607"]
    assert plate.sites == [SiteKey("Week1_150607", "A01", 1), SiteKey("Week1_150607", "H12", 1)]
    np.testing.assert_array_equal(plate.read_site(plate.sites[1])[1], site_pixels("H12", 1, 1, 8))
    assert plate.format.wells == 96


def test_imagexpress_without_plate_prefix(tmp_path):
    root = tmp_path / "ixm"
    root.mkdir()
    for well in ("B02", "C03"):
        for c in (1, 2):
            tifffile.imwrite(root / f"{well}_s1_w{c}.tif", site_pixels(well, 1, c - 1, 8))
    plate = open_plate(root)
    assert plate.layout == "imagexpress"
    assert plate.sites == [SiteKey("", "B02", 1), SiteKey("", "C03", 1)]


def test_imagexpress_channels_in_natural_order(tmp_path):
    root = tmp_path / "ixm"
    root.mkdir()
    for c in (1, 2, 10, 11):  # w10 must come after w2, not after w1
        tifffile.imwrite(root / f"P_B02_w{c}{GUID}.tif", np.full((8, 8), c, np.uint16))
    plate = open_plate(root)
    assert plate.channels == ["w1", "w2", "w10", "w11"]
    assert plate.read_site(plate.sites[0])[:, 0, 0].tolist() == [1, 2, 10, 11]


def test_imagexpress_time_points_use_the_first(tmp_path):
    for t in (1, 2):
        folder = tmp_path / "ixm" / f"TimePoint_{t}"
        folder.mkdir(parents=True)
        for c in (1, 2):
            tifffile.imwrite(folder / f"P1_B02_s1_w{c}.tif", np.full((8, 8), 10 * t + c, np.uint16))
    plate = open_plate(tmp_path / "ixm")
    assert plate.sites == [SiteKey("P1", "B02", 1)]
    assert plate.read_site(plate.sites[0])[:, 0, 0].tolist() == [11, 12]
    assert any("time series" in p and "time point 1" in p for p in plate.problems)


def test_imagexpress_two_plates_in_one_folder(tmp_path):
    root = tmp_path / "ixm"
    write_imagexpress(root, wells=["B02"], sites=1, channels=2, size=8, plate="PlateA")
    write_imagexpress(root, wells=["B02", "C02"], sites=1, channels=2, size=8, plate="PlateB")
    plate = open_plate(root)
    assert plate.plates == ["PlateA", "PlateB"]
    assert plate.wells("PlateB") == ["B02", "C02"] and plate.wells("PlateA") == ["B02"]
    assert plate.well_keys() == [("PlateA", "B02"), ("PlateB", "B02"), ("PlateB", "C02")]


# --- Operetta / Opera Phenix (Harmony) --------------------------------------------------------------
def test_operetta_names():
    assert OPERETTA.match("Images/r02c03f04p01-ch2sk1fk1fl1.tiff") == {
        "row": "02", "col": "03", "site": "04", "plane": "01", "channel": "2", "timepoint": "1"}
    assert OPERETTA.match("r16c24f100p01-ch1sk1fk1fl1.tiff")["site"] == "100"
    assert OPERETTA.match("r02c03f04p01-ch2sk1fk1fl1.png") is None


@pytest.mark.parametrize("style", ["maps", "images", "both"])
def test_open_operetta_with_harmony_names(tmp_path, style):
    names = {"1": "HOECHST 33342", "2": "Alexa 488", "3": "MitoTracker Deep Red"}
    root = write_operetta(tmp_path / "export", names=names, style=style)
    plate = open_plate(root)
    assert plate.layout == "operetta"
    assert plate.channels == ["HOECHST 33342", "Alexa 488", "MitoTracker Deep Red"]
    assert plate.wells() == ["B02", "B03", "C04"]
    assert plate.sites_of("C04") == [SiteKey("", "C04", 1), SiteKey("", "C04", 2)]
    site = plate.read_site(SiteKey("", "C04", 2))
    for c in range(3):
        np.testing.assert_array_equal(site[c], site_pixels("C04", 2, c, 12))
    # opened at the Images folder itself, the XML lies in the plate folder
    assert open_plate(root / "Images").channels == plate.channels


def test_operetta_index_xml_name(tmp_path):
    root = write_operetta(tmp_path / "export", names={"1": "DAPI", "2": "GFP", "3": "RFP"}, xml_name="Index.xml")
    assert open_plate(root).channels == ["DAPI", "GFP", "RFP"]


def test_operetta_without_xml(tmp_path):
    plate = open_plate(write_operetta(tmp_path / "export", channels=2))
    assert plate.channels == ["ch1", "ch2"]


def test_operetta_planes_and_time_points(tmp_path):
    root = write_operetta(tmp_path / "export", wells=("B02",), fields=1, channels=2, planes=2, timepoints=2)
    plate = open_plate(root)
    assert plate.sites == [SiteKey("", "B02", 1)]
    np.testing.assert_array_equal(plate.read_site(plate.sites[0])[1], site_pixels("B02", 1, 1, 12))  # plane 1, time 1
    assert any("z-stack" in p for p in plate.problems) and any("time series" in p for p in plate.problems)


def test_harmony_channel_names_realistic_xml(tmp_path):
    (tmp_path / "Index.idx.xml").write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<EvaluationInputData xmlns="{HARMONY_NS}" Version="2">\n'
        "<Images><Image Version=\"1\"><id>0101K1F1P1R1</id><ChannelID>1</ChannelID>"
        "<ChannelName>HOECHST 33342</ChannelName></Image>"
        "<Image Version=\"1\"><id>0101K1F1P1R2</id><ChannelID>2</ChannelID><ChannelName>Alexa 647 &amp; WGA</ChannelName></Image>"
        "<Image Version=\"1\"><id>0101K1F2P1R1</id><ChannelID>1</ChannelID><ChannelName>HOECHST 33342</ChannelName></Image>"
        "</Images><Maps><Map><Entry ChannelID=\"1\"><ChannelName>HOECHST 33342</ChannelName></Entry></Map></Maps>"
        "</EvaluationInputData>\n", encoding="utf-8")
    assert harmony_channel_names(tmp_path) == {"1": "HOECHST 33342", "2": "Alexa 647 & WGA"}


def test_harmony_channel_names_damaged_xml(tmp_path):
    (tmp_path / "Index.idx.xml").write_text("<EvaluationInputData><Maps><Map><Entry ChannelID='1'><ChannelName>DAPI",
                                            encoding="utf-8")
    assert harmony_channel_names(tmp_path) in ({}, {"1": "DAPI"})  # never raises
    assert harmony_channel_names(tmp_path / "nothing") == {}


# --- RxRx1 ------------------------------------------------------------------------------------------
def test_rxrx1_names():
    assert RXRX1.match("HUVEC-01/Plate1/B02_s1_w3.png") == {
        "plate": "HUVEC-01/Plate1", "well": "B02", "site": "1", "channel": "3"}
    assert RXRX1.match("rxrx1/images/U2OS-03/Plate4/AF48_s2_w6.png")["plate"] == "U2OS-03/Plate4"
    assert RXRX1.match("Plate2/B02_s2_w6.png")["plate"] == "Plate2"
    assert RXRX1.match("HUVEC-01/Plate1/B02_s1_w3.tif") is None


def test_open_rxrx1_several_experiments_and_plates(tmp_path):
    root = write_rxrx1(tmp_path / "images", experiments=("HUVEC-01", "U2OS-02"), plates=(1, 2))
    plate = open_plate(root)
    assert plate.layout == "rxrx1"
    assert plate.plates == ["HUVEC-01/Plate1", "HUVEC-01/Plate2", "U2OS-02/Plate1", "U2OS-02/Plate2"]
    assert plate.channels == [RXRX1_CHANNELS[str(c)] for c in range(1, 7)]
    assert plate.channels[0] == "Hoechst" and plate.channels[5] == "WGA"
    assert len(plate.sites) == 4 * 3 * 2
    site = plate.read_site(SiteKey("U2OS-02/Plate2", "C02", 2))
    assert site.shape == (6, 12, 12) and site.dtype == np.uint8
    for c in range(6):
        np.testing.assert_array_equal(site[c], png_pixels("C02", 2, c))


def test_rxrx1_plate_ids_do_not_depend_on_the_folder_opened(tmp_path):
    root = write_rxrx1(tmp_path / "images", experiments=("HEPG2-07",), plates=(3,), wells=("B02",), sites=1)
    for folder in (root, root / "HEPG2-07", root / "HEPG2-07" / "Plate3"):
        plate = open_plate(folder)
        assert plate.layout == "rxrx1"
        assert plate.sites == [SiteKey("HEPG2-07/Plate3", "B02", 1)], folder


# --- one multi-channel (OME-)TIFF per site ----------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("B02_s1.ome.tif", {"well": "B02", "site": "1"}),
    ("Plate1_B02_s2.ome.tiff", {"plate": "Plate1", "well": "B02", "site": "2"}),
    ("P1_B02.ome.tif", {"plate": "P1", "well": "B02"}),
    ("B02_s1.ome.tif", {"well": "B02", "site": "1"}),
    ("Exp_1_B02_site3_extra.ome.tif", {"plate": "Exp_1", "well": "B02", "site": "3"}),
    ("r02c02f01p01.ome.tiff", {"well": "r02c02", "site": "01"}),
    ("B02_2.ome.tif", {"well": "B02", "site": "2"}),
])
def test_ome_names(name, expected):
    assert OME_TIFF.match(name) == expected


def test_open_ome_tiff_channel_names_and_order(tmp_path):
    root = write_ome_sites(tmp_path / "ome", names=("DNA", "ER & Golgi", "Mito"))
    plate = open_plate(root)
    assert plate.layout == "ome-tiff"
    assert plate.channels == ["DNA", "ER & Golgi", "Mito"]  # XML entities decoded
    assert plate.sites == [SiteKey("", w, s) for w in ("B02", "C03") for s in (1, 2)]
    site = plate.read_site(SiteKey("", "C03", 2))
    assert site.shape == (3, 12, 12)
    for c in range(3):
        np.testing.assert_array_equal(site[c], site_pixels("C03", 2, c, 12))


def test_ome_tiff_with_plate_prefix_and_z_axis(tmp_path):
    root = tmp_path / "ome"
    root.mkdir()
    data = np.stack([np.stack([np.full((8, 8), 10 * z + c, np.uint16) for c in range(2)]) for z in range(3)])  # ZCYX
    tifffile.imwrite(root / "Screen_7_D05_s1.ome.tif", data, metadata={"axes": "ZCYX", "Channel": {"Name": ["a", "b"]}},
                     ome=True)
    plate = open_plate(root)
    assert plate.sites == [SiteKey("Screen_7", "D05", 1)]
    assert plate.channels == ["a", "b"]
    assert plate.read_site(plate.sites[0])[:, 0, 0].tolist() == [0, 1]  # first z-plane, channels in order


def test_ome_tiff_unnamed_or_repeated_channels(tmp_path):
    root = tmp_path / "ome"
    root.mkdir()
    tifffile.imwrite(root / "B02_s1.ome.tif", np.zeros((3, 8, 8), np.uint16), metadata={"axes": "CYX"}, ome=True)
    assert open_plate(root).channels == ["C0", "C1", "C2"]
    tifffile.imwrite(root / "B02_s1.ome.tif", np.zeros((2, 8, 8), np.uint16),
                     metadata={"axes": "CYX", "Channel": {"Name": ["GFP", "GFP"]}}, ome=True)
    channels = open_plate(root).channels
    assert len(set(channels)) == 2 and all(c.startswith("GFP") for c in channels)


def test_ome_rgb_samples_are_channels(tmp_path):
    root = tmp_path / "ome"
    root.mkdir()
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    tifffile.imwrite(root / "B02_s1.ome.tif", rgb, photometric="rgb", ome=True)
    plate = open_plate(root)
    assert len(plate.channels) == 3
    assert plate.read_site(plate.sites[0])[:, 0, 0].tolist() == [10, 20, 30]


def test_plain_multichannel_tiff_per_site(tmp_path):
    root = write_ome_sites(tmp_path / "mc", names=("a", "b", "c"), ome=False)  # tifffile writes axes SYX
    assert MULTICHANNEL_TIFF.match("B02_s1.tif") == {"well": "B02", "site": "1"}
    assert MULTICHANNEL_TIFF.match("B02_s1_c1.tif") is None  # a channel file, not plate "B02_s1" / well C01
    plate = open_plate(root)
    assert plate.layout == "multichannel-tiff"
    assert plate.channels == ["C0", "C1", "C2"]
    site = plate.read_site(SiteKey("", "B02", 2))
    for c in range(3):  # every channel, not channel 0 three times
        np.testing.assert_array_equal(site[c], site_pixels("B02", 2, c, 12))


def test_multichannel_file_read_once_per_site(tmp_path, monkeypatch):
    from napari_dcmix.plate import reader

    plate = open_plate(write_ome_sites(tmp_path / "ome"))
    calls = []
    load = reader._load
    monkeypatch.setattr(reader, "_load", lambda path, notes=None: calls.append(path) or load(path, notes))
    plate.read_site(plate.sites[0])
    assert len(calls) == 1


# --- the plugin's own sample plate -------------------------------------------------------------------
def _write_sample_like(root, channels=("DNA", "ER", "Mito"), pattern=None):
    images = root / "images"
    images.mkdir(parents=True)
    for well in ("B02", "C02"):
        for c, ch in enumerate(channels):
            tifffile.imwrite(images / f"{well}_s1_{ch}.tif", np.full((8, 8), c, np.uint16))
    pattern = pattern or r"images/(?P<well>[A-Z]+\d+)_s(?P<site>\d+)_(?P<channel>[A-Za-z0-9]+)\.tif"
    (root / "dcmix_plate.json").write_text(json.dumps({"layout": "dcmix-sample", "channels": list(channels),
                                                       "pattern": pattern}), encoding="utf-8")
    return root


def test_sample_layout_keeps_manifest_channel_order(tmp_path):
    plate = open_plate(_write_sample_like(tmp_path / "sample", channels=("Mito", "DNA", "ER")))
    assert plate.layout == "dcmix-sample"
    assert plate.channels == ["Mito", "DNA", "ER"]  # not alphabetical
    assert plate.read_site(plate.sites[0])[:, 0, 0].tolist() == [0, 1, 2]


@pytest.mark.parametrize("manifest", ["{not json", '{"channels": ["DNA"]}', '{"channels": "DNA", "pattern": "x"}',
                                      '{"channels": ["DNA"], "pattern": "(unclosed"}',
                                      '{"channels": ["DNA"], "pattern": "(?P<well>B02)"}'])
def test_damaged_sample_manifest(tmp_path, manifest):
    root = _write_sample_like(tmp_path / "sample")
    (root / "dcmix_plate.json").write_text(manifest, encoding="utf-8")
    with pytest.raises(PlateError, match="dcmix_plate.json is damaged.*generate the sample plate again"):
        open_plate(root)


# --- the user's own regex ----------------------------------------------------------------------------
def test_user_pattern_well_group(signal_plate):
    from conftest import SIGNAL_PATTERN

    root, _ = signal_plate
    plate = open_plate(root, SIGNAL_PATTERN)
    assert plate.layout == "pattern"
    assert plate.channels == ["ch0", "ch1", "ch2"]
    assert len(plate.wells()) == 16 and len(plate.sites) == 32


def test_user_pattern_row_col_and_plate_groups(tmp_path):
    root = tmp_path / "lab"
    for plate_name in ("screenA", "screenB"):
        folder = root / plate_name / "raw"
        folder.mkdir(parents=True)
        for row, col in ((2, 3), (16, 24)):
            for ch in ("DAPI", "GFP"):
                tifffile.imwrite(folder / f"row{row}_col{col}_fld1_{ch}.tif",
                                 np.full((8, 8), (ch == "GFP") + 10 * row, np.uint16))
    pattern = r"(?P<plate>[^/]+)/raw/row(?P<row>\d+)_col(?P<col>\d+)_fld(?P<site>\d+)_(?P<channel>[A-Z]+)\.tif$"
    plate = open_plate(root, pattern)
    assert plate.plates == ["screenA", "screenB"]
    assert plate.wells("screenA") == ["B03", "P24"]
    assert plate.format.wells == 384
    assert plate.channels == ["DAPI", "GFP"]
    assert plate.read_site(SiteKey("screenB", "P24", 1))[:, 0, 0].tolist() == [160, 161]


def test_user_pattern_letter_rows_and_textual_site(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    for ch in (1, 2):
        tifffile.imwrite(root / f"b-7_site03_c{ch}.tif", np.zeros((8, 8), np.uint8))
    plate = open_plate(root, r"(?P<row>[a-z])-(?P<col>\d+)_(?P<site>site\d+)_(?P<channel>c\d)\.tif")
    assert plate.sites == [SiteKey("", "B07", 3)]


def test_user_pattern_overrides_detection(imagexpress_plate):
    plate = open_plate(imagexpress_plate, r"_(?P<well>[A-H]\d\d)_s(?P<site>\d)_(?P<channel>w\d)")
    assert plate.layout == "pattern" and plate.plates == [""]
    assert plate.channels == ["w1", "w2", "w3"]
    assert len(plate.sites) == 12


@pytest.mark.parametrize("pattern, message", [
    (r"(?P<well>[A-Z]\d+", "not a valid regular expression"),
    (r"(?P<well>[A-Z]\d+)_(?P<site>\d+)\.tif", "named group for the channel"),
    (r"(?P<row>[A-Z])_(?P<channel>\w+)\.tif", r"\(\?P<well>…\) or both"),
    (r"(?P<well>x)(?P<well>y)(?P<channel>z)", "not a valid regular expression"),
])
def test_bad_user_patterns(imagexpress_plate, pattern, message):
    with pytest.raises(PlateError, match=message):
        open_plate(imagexpress_plate, pattern)
    with pytest.raises(PlateError, match=message):
        user_layout(pattern)


def test_user_pattern_matching_nothing(imagexpress_plate):
    with pytest.raises(PlateError, match="no file in .* matches the pattern layout; check the pattern"):
        open_plate(imagexpress_plate, r"(?P<well>Z\d+)_(?P<channel>q\d)\.png")


def test_user_pattern_bad_well_ids_are_listed(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    for name in ("B02_ch1.tif", "ZZZ_ch1.tif", "B00_ch1.tif"):
        tifffile.imwrite(root / name, np.zeros((8, 8), np.uint16))
    plate = open_plate(root, r"(?P<well>[A-Z]+\d*)_(?P<channel>ch\d)\.tif")
    assert plate.sites == [SiteKey("", "B02", 1)]
    assert sorted(p.file for p in plate.problems if "well id could not be read" in p) == ["B00_ch1.tif", "ZZZ_ch1.tif"]
