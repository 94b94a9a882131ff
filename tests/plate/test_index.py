"""Indexing by names: bad folders and files become clear PlateErrors or listed problems, never tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from conftest import write_imagexpress

from napari_dcmix.errors import DcmixError, PlateError
from napari_dcmix.plate import ChannelRef, SiteKey, build_index, open_plate
from napari_dcmix.plate.index import list_image_files


def test_import_pulls_in_neither_torch_nor_qt():
    code = ("import sys, napari_dcmix.plate\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', "
            "'PySide6', 'napari'))\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""


def test_plate_error_is_a_user_error():
    assert issubclass(PlateError, DcmixError)


def test_index_structure(imagexpress_plate):
    index = build_index(imagexpress_plate)
    assert index.root == imagexpress_plate
    assert index.layout == "imagexpress"
    assert index.channel_keys == ["1", "2", "3"] and index.channels == ["w1", "w2", "w3"]
    assert list(index.sites) == sorted(index.sites)
    refs = index.sites[SiteKey("Plate1", "B02", 2)]
    assert [r.index for r in refs] == [None, None, None]
    assert [r.path for r in refs] == [f"Plate1_B02_s2_w{c}9A1E2A7D-1234-ABCD.tif" for c in (1, 2, 3)]
    assert all(isinstance(r, ChannelRef) for r in refs)
    assert index.problems == []


def test_site_key_label_and_order():
    assert SiteKey("Plate1", "B02", 3).label() == "Plate1 B02 s3"
    assert SiteKey("", "B02", 3).label() == "B02 s3"
    assert sorted([SiteKey("", "B02", 10), SiteKey("", "B02", 2), SiteKey("", "A12", 1)])[0] == SiteKey("", "A12", 1)


def test_missing_folder(tmp_path):
    with pytest.raises(PlateError, match="does not exist; choose the folder"):
        open_plate(tmp_path / "nope")


def test_file_instead_of_folder(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))
    with pytest.raises(PlateError, match="is not a folder"):
        open_plate(path)


def test_empty_folder(tmp_path):
    with pytest.raises(PlateError, match="holds no images .*choose the folder"):
        open_plate(tmp_path)


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "table.csv").write_text("well,x\n")
    with pytest.raises(PlateError, match="holds no images"):
        open_plate(tmp_path)


def test_unrecognised_names_suggest_a_pattern(tmp_path):
    for name in ("img_001.tif", "img_002.tif", "photo.png"):
        tifffile.imwrite(tmp_path / name, np.zeros((4, 4), np.uint8))
    with pytest.raises(PlateError, match="no known plate layout.*--pattern") as info:
        open_plate(tmp_path)
    assert "img_001.tif" in str(info.value)


def test_per_channel_names_are_not_taken_for_multichannel_files(signal_plate):
    root, _ = signal_plate  # B02_s1_ch0.tif: one channel per file, in no built-in naming
    with pytest.raises(PlateError, match="--pattern"):
        open_plate(root)


def test_sites_missing_channels_are_listed_and_skipped(imagexpress_plate):
    (imagexpress_plate / "Plate1_B03_s2_w29A1E2A7D-1234-ABCD.tif").unlink()
    (imagexpress_plate / "Plate1_C02_s1_w39A1E2A7D-1234-ABCD.tif").unlink()
    plate = open_plate(imagexpress_plate)
    assert SiteKey("Plate1", "B03", 2) not in plate.sites and SiteKey("Plate1", "C02", 1) not in plate.sites
    assert len(plate.sites) == 10
    found = [p for p in plate.problems if p.kind == "missing-channel"]
    assert [(p.site, p.action) for p in found] == [("Plate1 B03 s2", "skipped"), ("Plate1 C02 s1", "skipped")]
    assert "Plate1 B03 s2 lacks w2" in found[0] and "Plate1 C02 s1 lacks w3" in found[1]
    assert found[0].file == "Plate1_B03_s2_w19A1E2A7D-1234-ABCD.tif"  # a file of the site, to find it
    assert plate.problems.skipped() == ["Plate1 B03 s2", "Plate1 C02 s1"]
    assert plate.sites_of("B03") == [SiteKey("Plate1", "B03", 1)]


def test_every_incomplete_site_is_named(tmp_path):
    root = write_imagexpress(tmp_path / "ixm", wells=[f"B{c:02d}" for c in range(1, 13)], sites=3, channels=2, size=4)
    for path in root.glob("*_w2*.tif"):
        if "_s1_" not in path.name:
            path.unlink()
    plate = open_plate(root)
    assert len(plate.sites) == 12
    named = [p.site for p in plate.problems if "missing channel files" in p]
    assert len(named) == 24 and "Plate1 B12 s3" in named  # the front ends show the first 20 and a count


def test_no_complete_site(tmp_path):
    root = tmp_path / "ixm"
    root.mkdir()
    tifffile.imwrite(root / "P_B02_s1_w1.tif", np.zeros((4, 4), np.uint16))
    tifffile.imwrite(root / "P_B03_s1_w2.tif", np.zeros((4, 4), np.uint16))
    with pytest.raises(PlateError, match="no site in .* has a file for every channel"):
        open_plate(root)


def test_duplicate_channel_files_are_listed(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    for name in ("B02_DAPI.tif", "B02_DAPI_again.tif", "B02_GFP.tif"):
        tifffile.imwrite(root / name, np.zeros((4, 4), np.uint16))
    plate = open_plate(root, r"(?P<well>[A-Z]\d+)_(?P<channel>[A-Z]+)")
    assert plate.channels == ["DAPI", "GFP"]
    assert any("already has" in p and "B02_DAPI_again.tif" in p for p in plate.problems)


def test_hidden_folders_and_files_skipped(imagexpress_plate):
    hidden = imagexpress_plate / ".trash"
    hidden.mkdir()
    tifffile.imwrite(hidden / "Plate9_H12_s1_w1.tif", np.zeros((4, 4), np.uint16))
    tifffile.imwrite(imagexpress_plate / "._Plate1_B02_s1_w1.tif", np.zeros((4, 4), np.uint16))
    plate = open_plate(imagexpress_plate)
    assert plate.plates == ["Plate1"] and len(plate.sites) == 12


def test_symlink_loop_does_not_hang(imagexpress_plate):
    try:
        os.symlink(imagexpress_plate, imagexpress_plate / "loop", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("no symbolic links here")
    files = list_image_files(imagexpress_plate)
    assert len(files) == 12 * 3 + 6 and not any(f.startswith("loop/") for f in files)


def test_symlinked_image_folder_is_followed(tmp_path):
    real = write_imagexpress(tmp_path / "real", wells=["B02"], sites=1, channels=2, size=4)
    root = tmp_path / "plate"
    root.mkdir()
    try:
        os.symlink(real, root / "TimePoint_1", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("no symbolic links here")
    assert open_plate(root).sites == [SiteKey("Plate1", "B02", 1)]


def test_user_pattern_site_that_is_not_a_number(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    for name in ("B02_sA_ch1.tif", "B02_s1_ch1.tif"):
        tifffile.imwrite(root / name, np.zeros((4, 4), np.uint16))
    plate = open_plate(root, r"(?P<well>[A-Z]\d+)_(?P<site>s\w)_(?P<channel>ch\d)")
    assert plate.sites == [SiteKey("", "B02", 1)]
    assert any("not a number" in p and "B02_sA_ch1.tif" in p for p in plate.problems)


def test_repeated_channel_names_made_distinct(tmp_path):
    root = tmp_path / "export"
    from conftest import write_operetta

    write_operetta(root, wells=("B02",), fields=1, channels=2, names={"1": "Brightfield", "2": "Brightfield"})
    channels = open_plate(root).channels
    assert len(set(channels)) == 2 and all(c.startswith("Brightfield") for c in channels)


def test_opening_reads_no_pixels(imagexpress_plate, monkeypatch):
    import imageio.v3 as iio

    from napari_dcmix.plate import reader

    def boom(*args, **kwargs):
        raise AssertionError("pixels read while opening a plate")

    monkeypatch.setattr(reader, "_read_2d", boom)
    monkeypatch.setattr(reader, "_load", boom)
    monkeypatch.setattr(tifffile, "imread", boom)
    monkeypatch.setattr(tifffile, "TiffFile", boom)
    monkeypatch.setattr(iio, "imread", boom)
    plate = open_plate(imagexpress_plate)
    assert len(plate.sites) == 12 and plate.format.wells == 96 and plate.wells()


def test_multichannel_opening_reads_one_header_only(tmp_path, monkeypatch):
    from conftest import write_ome_sites

    from napari_dcmix.plate import reader

    root = write_ome_sites(tmp_path / "ome")
    monkeypatch.setattr(reader, "_load", lambda *a: (_ for _ in ()).throw(AssertionError("pixels read")))
    opened = []
    real = tifffile.TiffFile

    class Spy(real):
        def __init__(self, *args, **kwargs):
            opened.append(args[0])
            super().__init__(*args, **kwargs)

        def asarray(self, *args, **kwargs):
            raise AssertionError("pixels read")

    monkeypatch.setattr(tifffile, "TiffFile", Spy)
    plate = open_plate(root)
    assert len(plate.sites) == 4 and len(opened) == 1


def test_ome_site_with_fewer_channels_is_a_clear_error(tmp_path):
    from conftest import write_ome_sites

    root = write_ome_sites(tmp_path / "ome", wells=("B02",), names=("a", "b", "c"))
    tifffile.imwrite(root / "C03_s1.ome.tif", np.zeros((2, 12, 12), np.uint16), metadata={"axes": "CYX"}, ome=True)
    plate = open_plate(root)
    with pytest.raises(PlateError, match="C03_s1.ome.tif holds 2 channels, fewer than"):
        plate.read_site(SiteKey("", "C03", 1))
    assert plate.read_site(SiteKey("", "B02", 1)).shape == (3, 12, 12)


def test_per_channel_ome_files_hint_at_a_pattern(tmp_path):
    root = tmp_path / "ome"
    root.mkdir()
    for c in (1, 2):
        tifffile.imwrite(root / f"B02_s1_w{c}.ome.tif", np.zeros((8, 8), np.uint16), ome=True)
    plate = open_plate(root)
    assert any("extra files" in p and "--pattern" in p for p in plate.problems)


def test_1536_plate_order(tmp_path):
    root = write_imagexpress(tmp_path / "ixm", wells=["AF48", "AA01", "B01", "A48", "Z02"], sites=1, channels=1, size=4)
    plate = open_plate(root)
    assert plate.format.wells == 1536
    order = ["A48", "B01", "Z02", "AA01", "AF48"]  # not the string order A48, AA01, AF48, B01, Z02
    assert [k.well for k in plate.sites] == order
    assert plate.wells() == order and [w for _, w in plate.well_keys()] == order
    assert plate.format.row_names()[26:] == ["AA", "AB", "AC", "AD", "AE", "AF"]
