"""The data-quality report: each bad file or site becomes one named Problem (file, site, what was done,
what to do), pixels handed on are finite, and tifffile's own log lines never leak out unexplained."""

from __future__ import annotations

import logging
import struct
import threading

import numpy as np
import pytest
import tifffile
from conftest import write_imagexpress

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import SiteKey, open_plate, read_labels
from napari_dcmix.plate.labels import csv_columns
from napari_dcmix.plate.problems import Problem, ProblemLog, as_problem, capture_tifffile_log, make, tiff_detail

GUID = "9A1E2A7D-1234-ABCD"


def _file(root, well, site, ch):
    return root / f"Plate1_{well}_s{site}_w{ch}{GUID}.tif"


def _plate(tmp_path):
    return write_imagexpress(tmp_path / "ixm", wells=["B02", "B03"], sites=2, channels=2, size=16)


def test_problem_reads_like_the_string_it_replaced():
    p = make("unreadable", "B02_w1.tif could not be read", "re-export it", file="B02_w1.tif", site="B02 s1",
             action="skipped")
    assert str(p) == "B02_w1.tif could not be read: skipped; re-export it"
    assert "could not be read" in p and "H12" not in p
    assert p.well == "B02" and p.to_dict()["action"] == "skipped"
    assert as_problem("old text") == Problem("note", "old text")
    log = ProblemLog(["a"])
    assert log.report(p) and not log.report(p)  # de-duplicated
    assert log.skipped() == ["B02 s1"]


def test_tifffile_log_is_captured_per_thread_and_leaks_nowhere(caplog):
    logger = logging.getLogger("tifffile")
    seen_in_other_thread = []

    def other():
        logger.warning("<tifffile.TiffPages @9> from another thread")
        seen_in_other_thread.append(True)

    with caplog.at_level(logging.WARNING, logger="tifffile"):
        with capture_tifffile_log() as lines:
            logger.warning("<tifffile.TiffPages @8> invalid offset to first page 8")
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        assert tiff_detail(lines) == "invalid offset to first page 8"
        messages = [r.getMessage() for r in caplog.records]
    assert messages == ["<tifffile.TiffPages @9> from another thread"]  # only the uncaptured thread's line


def test_tiff_damage_tifffile_works_around_is_a_named_warning(tmp_path, caplog):
    root = _plate(tmp_path)
    path = _file(root, "B03", 1, 2)
    tifffile.imwrite(path, np.full((16, 16), 7, np.uint16), description="a description long enough")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].tags["ImageDescription"].offset
    raw = bytearray(path.read_bytes())
    raw[offset + 8:offset + 12] = struct.pack("<I", 0x7FFFFFF0)  # the tag's value points past the end
    path.write_bytes(bytes(raw))
    plate = open_plate(root)
    with caplog.at_level(logging.DEBUG, logger="tifffile"):
        site = plate.read_site(SiteKey("Plate1", "B03", 1))
    assert not [r for r in caplog.records if r.name == "tifffile"]
    assert site[1, 0, 0] == 7
    [p] = plate.problems
    assert (p.kind, p.file, p.site) == ("tiff-log", path.name, "Plate1 B03 s1")
    assert "invalid value offset" in p and "re-export" in p


def test_unreadable_file_names_file_and_site(tmp_path, caplog):
    root = _plate(tmp_path)
    bad = _file(root, "B02", 2, 1)
    bad.write_bytes(b"II*\x00\xff\xff\xff\x7f" + b"\x00" * 32)
    plate = open_plate(root)
    with caplog.at_level(logging.DEBUG, logger="tifffile"), pytest.raises(PlateError, match="Plate1 B02 s2: .*may be corrupt"):
        plate.read_site(SiteKey("Plate1", "B02", 2))
    assert not [r for r in caplog.records if r.name == "tifffile"]
    [p] = plate.problems
    assert (p.kind, p.file, p.site, p.action) == ("unreadable", bad.name, "Plate1 B02 s2", "skipped")
    assert plate.problems.skipped() == ["Plate1 B02 s2"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_pixels_are_repaired_and_reported(tmp_path, bad):
    root = _plate(tmp_path)
    img = np.linspace(1, 2, 256, dtype=np.float32).reshape(16, 16)
    img[:4, :4] = bad
    tifffile.imwrite(_file(root, "B03", 2, 1), img)
    plate = open_plate(root)
    site = plate.read_site(SiteKey("Plate1", "B03", 2))
    assert np.isfinite(site).all()
    assert site[0, 0, 0] == pytest.approx(np.percentile(img[np.isfinite(img)], 1.0))
    [p] = plate.problems
    assert p.kind == "non-finite" and p.action == "repaired" and p.site == "Plate1 B03 s2"
    assert ("16 NaN" if bad is np.nan else "16 infinite") in p
    stats = plate.channel_stats()
    assert np.isfinite(stats.low).all() and np.isfinite(stats.high).all()
    assert np.isfinite(stats.normalize(np.array(img)[None])).all()  # even unrepaired pixels reach no network


def test_all_nan_channel_is_skipped(tmp_path):
    root = _plate(tmp_path)
    tifffile.imwrite(_file(root, "B02", 1, 2), np.full((16, 16), np.nan, np.float32))
    plate = open_plate(root)
    with pytest.raises(PlateError, match="every pixel is non-finite"):
        plate.read_site(SiteKey("Plate1", "B02", 1))
    assert [p.action for p in plate.problems] == ["skipped"]


def test_stack_where_a_plane_was_expected_is_replaned(tmp_path):
    root = _plate(tmp_path)
    stack = np.stack([np.full((16, 16), 3, np.uint16), np.full((16, 16), 9, np.uint16)])
    tifffile.imwrite(_file(root, "B02", 1, 1), stack, metadata={"axes": "ZYX"})
    plate = open_plate(root)
    assert plate.read_site(SiteKey("Plate1", "B02", 1))[0, 0, 0] == 3
    [p] = plate.problems
    assert (p.kind, p.action, p.site) == ("stack", "re-planed", "Plate1 B02 s1") and "2×16×16 stack" in p


def test_mixed_shapes_are_one_skipped_site(tmp_path):
    root = _plate(tmp_path)
    tifffile.imwrite(_file(root, "B03", 1, 2), np.zeros((8, 8), np.uint16))
    plate = open_plate(root)
    with pytest.raises(PlateError, match="different shapes"):
        plate.read_site(SiteKey("Plate1", "B03", 1))
    [p] = plate.problems
    assert (p.kind, p.action, p.site) == ("mixed-shapes", "skipped", "Plate1 B03 s1")


def test_8_and_16_bit_in_one_plate_is_a_warning(tmp_path):
    root = _plate(tmp_path)
    tifffile.imwrite(_file(root, "B03", 2, 1), np.full((16, 16), 200, np.uint8))
    plate = open_plate(root)
    for key in plate.sites:
        plate.read_site(key)
    [p] = plate.problems  # one per channel and new bit depth, naming a file of each
    assert p.kind == "mixed-bit-depth" and p.site == "Plate1 B03 s2" and p.action == "warning"
    assert "channel w1 mixes bit depths" in p and "(Plate1 B03 s2) is uint8" in p and "(Plate1 B02 s1) is uint16" in p


def test_label_warnings_single_well_class(tmp_path):
    plate = open_plate(_plate(tmp_path))
    path = tmp_path / "l.csv"
    path.write_text("well,phenotype\nB02,dmso\nB03,drug\n")
    labels = read_labels(path, plate.sites)
    assert sorted(p.message.split(";")[0] for p in labels.problems) == [
        "class 'dmso' is labeled on one well only (Plate1 B02)", "class 'drug' is labeled on one well only (Plate1 B03)"]


@pytest.mark.parametrize("encoding,text", [
    ("utf-8-sig", "well;phenotype\r\nb2;dmso\r\n"),
    ("utf-8", "sep=;\r\nwell;phenotype\r\nb2;dmso\r\n"),
    ("utf-16", "well\tphenotype\r\nb2\tdmso\r\n"),
])
def test_one_header_reader_for_excel_exports(tmp_path, encoding, text):
    path = tmp_path / "excel.csv"
    path.write_bytes(text.encode(encoding))
    assert csv_columns(path) == ["well", "phenotype"]
    plate = open_plate(_plate(tmp_path))
    assert read_labels(path, plate.sites).well_labels() == {("Plate1", "B02"): "dmso"}


def test_header_reader_refuses_non_tables(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"PK\x03\x04 xlsx")
    with pytest.raises(PlateError, match="Excel workbook"):
        csv_columns(path)
