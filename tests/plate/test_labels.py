"""Labels joined from CSV on well (and plate/site), RxRx1 metadata.csv, bad CSVs, and atomic saving."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import write_imagexpress, write_rxrx1, write_rxrx1_metadata

from napari_dcmix.errors import DcmixError, PlateError
from napari_dcmix.plate import Labels, SiteKey, open_plate, read_labels, write_labels


def _sites(plates=("",), wells=("B02", "B03", "C02"), sites=(1, 2)):
    return [SiteKey(p, w, s) for p in plates for w in wells for s in sites]


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_plain_join_on_well(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "well,phenotype\nB2,dead\nb03,alive\nr03c02,\n")
    labels = read_labels(csv_path, _sites())
    assert isinstance(labels, Labels)
    assert labels.column == "phenotype" and labels.columns == ["well", "phenotype"]
    assert labels.site_labels == {SiteKey("", "B02", 1): "dead", SiteKey("", "B02", 2): "dead",
                                  SiteKey("", "B03", 1): "alive", SiteKey("", "B03", 2): "alive"}  # C02: unlabeled
    assert labels.well_labels() == {("", "B02"): "dead", ("", "B03"): "alive"}
    assert labels.classes == ["alive", "dead"] and labels.counts() == {"alive": 1, "dead": 1}
    # the join is clean; what is left is the warning that each class has a single well
    assert [(p.kind, p.message.split(";")[0]) for p in labels.problems] == [
        ("labels", "class 'alive' is labeled on one well only (B03)"),
        ("labels", "class 'dead' is labeled on one well only (B02)")]


def test_join_onto_an_opened_plate(imagexpress_plate, tmp_path):
    plate = open_plate(imagexpress_plate)
    csv_path = _write(tmp_path / "l.csv", "well,treatment\nB02,DMSO\nC03,drug\n")
    labels = read_labels(csv_path, plate.sites)
    assert labels.well_labels() == {("Plate1", "B02"): "DMSO", ("Plate1", "C03"): "drug"}


def test_labels_for_absent_wells_are_reported(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "well,label\nB02,a\nH12,b\nG07,c\nnonsense,d\n,e\n")
    labels = read_labels(csv_path, _sites())
    assert labels.well_labels() == {("", "B02"): "a"}
    assert any("wells not on the plate" in p and "G07, H12" in p for p in labels.problems)
    assert any("unreadable well ids" in p and "nonsense" in p and "(empty)" in p for p in labels.problems)


def test_join_with_plate_column(tmp_path):
    sites = _sites(plates=("Plate1", "Plate2"))
    csv_path = _write(tmp_path / "l.csv", "plate,well,label\nPlate1,B02,x\n2,B02,y\nplate_2,B03,z\nPlate9,B02,w\n")
    labels = read_labels(csv_path, sites)
    assert labels.well_labels() == {("Plate1", "B02"): "x", ("Plate2", "B02"): "y", ("Plate2", "B03"): "z"}
    assert any("plates not in the folder" in p and "Plate9" in p for p in labels.problems)


def test_without_plate_column_every_plate_gets_the_label(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "well,label\nB02,x\n")
    labels = read_labels(csv_path, _sites(plates=("P1", "P2")))
    assert labels.well_labels() == {("P1", "B02"): "x", ("P2", "B02"): "x"}


def test_join_with_site_column(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "well,site,label\nB02,1,in focus\nB02,2,blurred\nB03,7,x\n")
    labels = read_labels(csv_path, _sites())
    assert labels.site_labels == {SiteKey("", "B02", 1): "in focus", SiteKey("", "B02", 2): "blurred"}
    assert any("sites not on the plate" in p and "B03 s7" in p for p in labels.problems)


def test_semicolon_and_tab_separated(tmp_path):
    for sep in (";", "\t"):
        csv_path = _write(tmp_path / "l.csv", f"Well{sep}Phenotype{sep}note\nB02{sep}a,b{sep}x;y\nB03{sep}c{sep}\n")
        labels = read_labels(csv_path, _sites())
        assert labels.column == "Phenotype"
        assert labels.well_labels() == {("", "B02"): "a,b", ("", "B03"): "c"}


def test_quoted_fields_bom_and_windows_encoding(tmp_path):
    csv_path = _write(tmp_path / "l.csv", '\ufeffwell,label\r\nB02,"dose 5 µM, 24 h"\r\n"B03","say ""hi"""\r\n')
    assert read_labels(csv_path, _sites()).well_labels() == {("", "B02"): "dose 5 µM, 24 h", ("", "B03"): 'say "hi"'}
    csv_path = _write(tmp_path / "l.csv", "well;label\nB02;5 µM\n", encoding="cp1252")
    assert read_labels(csv_path, _sites()).well_labels() == {("", "B02"): "5 µM"}
    csv_path = _write(tmp_path / "l.csv", "well\tlabel\nB02\tx\n", encoding="utf-16")
    assert read_labels(csv_path, _sites()).well_labels() == {("", "B02"): "x"}


def test_label_column_choice(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "plate,well,compound,Class,well_type\n,B02,cpd1,pos,treatment\n")
    assert read_labels(csv_path, _sites()).column == "Class"  # preferred names first
    assert read_labels(csv_path, _sites(), column="compound").well_labels() == {("", "B02"): "cpd1"}
    assert read_labels(csv_path, _sites(), column="COMPOUND").column == "compound"
    with pytest.raises(PlateError, match="has no column 'dose'; choose one of: plate, well, compound"):
        read_labels(csv_path, _sites(), column="dose")
    only_ids = _write(tmp_path / "ids.csv", "plate,well,site\n1,B02,1\n")
    with pytest.raises(PlateError, match="no label column besides the well ids"):
        read_labels(only_ids, _sites())


def test_empty_labels_are_unlabeled(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "well,label\nB02,\nB03,  \nC02,x\n")
    labels = read_labels(csv_path, _sites())
    assert labels.well_labels() == {("", "C02"): "x"}
    [only] = labels.problems  # empty labels are not a problem; a single class is
    assert "only one class ('x')" in only
    empty = read_labels(_write(tmp_path / "e.csv", "well,label\n"), _sites())
    assert empty.site_labels == {} and empty.classes == [] and empty.counts() == {}


def test_conflicting_rows_are_reported(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "well,label\nB02,a\nB2,b\n")
    labels = read_labels(csv_path, _sites())
    assert labels.well_labels() == {("", "B02"): "b"}
    assert any("labeled twice" in p and "B02 s1" in p for p in labels.problems)


def test_well_label_is_the_majority_of_its_sites(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "well,site,label\nB02,1,a\nB02,2,b\nB02,3,b\n")
    labels = read_labels(csv_path, _sites(sites=(1, 2, 3)))
    assert labels.well_labels() == {("", "B02"): "b"}


def test_one_unnamed_plate_and_a_csv_of_many_plates(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "plate,well,label\n1,B02,a\n2,B02,b\n")
    labels = read_labels(csv_path, _sites())
    assert labels.site_labels == {}
    assert any("name 2 plates" in p and "keep only this plate's rows" in p for p in labels.problems)
    single = _write(tmp_path / "s.csv", "plate,well,label\n1,B02,a\n")
    assert read_labels(single, _sites()).well_labels() == {("", "B02"): "a"}


# --- RxRx1 -----------------------------------------------------------------------------------------------
def test_rxrx1_metadata_csv(tmp_path):
    root = write_rxrx1(tmp_path / "images", experiments=("HUVEC-01", "HUVEC-02"), plates=(1, 2), wells=("B02", "B03"),
                       sites=2, channels=1, size=4)
    meta = write_rxrx1_metadata(tmp_path / "metadata.csv", [
        ("HUVEC-01", 1, "B02", 1, "treatment", "sirna_10"), ("HUVEC-01", 1, "B02", 2, "treatment", "sirna_10"),
        ("HUVEC-01", 2, "B03", 1, "negative_control", "EMPTY"),
        ("HUVEC-02", 1, "B02", 1, "positive_control", "sirna_1108"),
        ("HUVEC-02", 1, "C09", 1, "treatment", "sirna_3"),          # well not on the plate
        ("U2OS-01", 1, "B02", 1, "treatment", "sirna_4"),           # experiment not in the folder
    ])
    plate = open_plate(root)
    labels = read_labels(meta, plate.sites)
    assert labels.column == "well_type"
    assert labels.site_labels == {
        SiteKey("HUVEC-01/Plate1", "B02", 1): "treatment", SiteKey("HUVEC-01/Plate1", "B02", 2): "treatment",
        SiteKey("HUVEC-01/Plate2", "B03", 1): "negative_control",
        SiteKey("HUVEC-02/Plate1", "B02", 1): "positive_control",
    }
    assert any("wells not on the plate" in p and "HUVEC-02/Plate1 C09" in p for p in labels.problems)
    assert any("plates not in the folder" in p and "U2OS-01/1" in p for p in labels.problems)
    assert read_labels(meta, plate.sites, column="sirna").well_labels()[("HUVEC-02/Plate1", "B02")] == "sirna_1108"


def test_rxrx1_one_experiment_opened_with_the_full_metadata(tmp_path):
    root = write_rxrx1(tmp_path / "images", experiments=("HUVEC-01", "HEPG2-01"), plates=(1,), wells=("B02",), sites=1,
                       channels=1, size=4)
    meta = write_rxrx1_metadata(tmp_path / "metadata.csv", [
        ("HEPG2-01", 1, "B02", 1, "treatment", "sirna_7"), ("HUVEC-01", 1, "B02", 1, "negative_control", "EMPTY"),
    ])
    for folder in (root / "HUVEC-01", root / "HUVEC-01" / "Plate1"):
        plate = open_plate(folder)
        labels = read_labels(meta, plate.sites)  # HEPG2-01's Plate1 must not leak into HUVEC-01's Plate1
        assert labels.well_labels() == {("HUVEC-01/Plate1", "B02"): "negative_control"}, folder


def test_rxrx1_renamed_folder_with_one_experiment(tmp_path):
    root = write_rxrx1(tmp_path / "images", experiments=("my-copy",), plates=(1,), wells=("B02",), sites=1, channels=1,
                       size=4)
    meta = write_rxrx1_metadata(tmp_path / "metadata.csv", [("HUVEC-01", 1, "B02", 1, "treatment", "sirna_7")])
    labels = read_labels(meta, open_plate(root / "my-copy").sites)
    assert labels.well_labels() == {("my-copy/Plate1", "B02"): "treatment"}


def test_rxrx1_renamed_folder_with_many_experiments_is_ambiguous(tmp_path):
    root = write_rxrx1(tmp_path / "images", experiments=("my-copy",), plates=(1,), wells=("B02",), sites=1, channels=1,
                       size=4)
    meta = write_rxrx1_metadata(tmp_path / "metadata.csv", [("HUVEC-01", 1, "B02", 1, "treatment", "a"),
                                                             ("HEPG2-01", 1, "B02", 1, "positive_control", "b")])
    labels = read_labels(meta, open_plate(root / "my-copy").sites)
    assert labels.site_labels == {}
    assert any("several experiments" in p for p in labels.problems)


def test_plate_number_fitting_two_experiments_is_ambiguous(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "plate,well,label\n1,B02,x\n")
    labels = read_labels(csv_path, _sites(plates=("HUVEC-01/Plate1", "HUVEC-02/Plate1")))
    assert labels.site_labels == {}
    assert any("fit several plates" in p for p in labels.problems)


# --- bad labels files -------------------------------------------------------------------------------------
def test_no_well_column(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "position,label\nB02,x\n")
    with pytest.raises(PlateError, match="has no 'well' column .*position, label.*add one"):
        read_labels(csv_path, _sites())


def test_png_given_as_labels(tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "labels.csv"
    iio.imwrite(path, np.zeros((4, 4), np.uint8), extension=".png")
    with pytest.raises(PlateError, match="is a PNG image, not a CSV table; export the labels as CSV"):
        read_labels(path, _sites())


def test_tiff_and_binary_given_as_labels(tmp_path):
    tif = tmp_path / "x.tif"
    tifffile.imwrite(tif, np.zeros((4, 4), np.uint8))
    with pytest.raises(PlateError, match="is a TIFF image, not a CSV"):
        read_labels(tif, _sites())
    blob = tmp_path / "blob.csv"
    blob.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(PlateError, match="binary file, not a CSV"):
        read_labels(blob, _sites())
    xlsx = tmp_path / "labels.xlsx"
    xlsx.write_bytes(b"PK\x03\x04" + b"\x00" * 30)
    with pytest.raises(PlateError, match="Excel"):
        read_labels(xlsx, _sites())


@pytest.mark.parametrize("text", ["", "\n\n", "just one column\nB02\n", "well\nB02\n"])
def test_not_a_table(tmp_path, text):
    with pytest.raises(PlateError, match="not a CSV table with a header row"):
        read_labels(_write(tmp_path / "l.csv", text), _sites())


def test_malformed_csv(tmp_path):
    path = _write(tmp_path / "l.csv", 'well,label\nB02,"' + "x" * 200_000 + '"\n')  # beyond the csv field limit
    with pytest.raises(PlateError, match="is not a valid CSV table"):
        read_labels(path, _sites())


def test_missing_and_folder_paths(tmp_path):
    with pytest.raises(PlateError, match="does not exist; choose an existing CSV"):
        read_labels(tmp_path / "nope.csv", _sites())
    with pytest.raises(PlateError, match="is a folder, not a CSV"):
        read_labels(tmp_path, _sites())


# --- saving ---------------------------------------------------------------------------------------------
def test_write_labels_round_trip(tmp_path):
    wells = {("", "B02"): "dead", ("", "A10"): 'odd, "quoted" label', ("", "C01"): "alive"}
    path = write_labels(tmp_path / "out.csv", wells, column="phenotype")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "well,phenotype"
    assert [line.split(",")[0] for line in text.splitlines()[1:]] == ["A10", "B02", "C01"]  # plate order
    labels = read_labels(path, _sites(wells=("A10", "B02", "C01")))
    assert labels.column == "phenotype" and labels.well_labels() == wells


def test_write_labels_round_trip_with_plates(tmp_path):
    wells = {("HUVEC-01/Plate1", "B02"): "a", ("HUVEC-01/Plate2", "B02"): "b", ("HUVEC-01/Plate1", "AA01"): "c"}
    path = write_labels(tmp_path / "out.csv", wells)
    assert path.read_text().splitlines()[0] == "plate,well,label"
    sites = [SiteKey(p, w, 1) for (p, w) in wells]
    assert read_labels(path, sites).well_labels() == wells


def test_write_labels_is_atomic(tmp_path):
    path = write_labels(tmp_path / "out.csv", {("", "B02"): "old"})
    before = path.read_bytes()

    class Boom(Exception):
        pass

    class BadLabel:  # fails half-way through writing (after B02's row)
        def __str__(self):
            raise Boom()

    with pytest.raises(Boom):
        write_labels(path, {("", "B02"): "new", ("", "B03"): BadLabel()})
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary file left behind
    write_labels(path, {("", "B02"): "new"})
    assert "new" in path.read_text() and sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_write_labels_into_missing_folder(tmp_path):
    with pytest.raises(DcmixError, match="does not exist; create it"):
        write_labels(tmp_path / "missing" / "out.csv", {("", "B02"): "x"})


def test_labels_for_a_plate_with_problems(tmp_path):
    root = write_imagexpress(tmp_path / "ixm", wells=["B02", "B03"], sites=1, channels=2, size=4)
    next(root.glob("Plate1_B03_w2*.tif")).unlink()  # B03 is incomplete: not on the plate
    plate = open_plate(root)
    labels = read_labels(_write(tmp_path / "l.csv", "well,label\nB02,a\nB03,b\n"), plate.sites)
    assert labels.well_labels() == {("Plate1", "B02"): "a"}
    assert any("B03" in p for p in labels.problems)


def test_excel_sep_hint_line(tmp_path):
    csv_path = _write(tmp_path / "l.csv", "sep=;\r\nwell;label\r\nB02;a,b\r\n")
    assert read_labels(csv_path, _sites()).well_labels() == {("", "B02"): "a,b"}


def test_labels_onto_no_sites(tmp_path):
    labels = read_labels(_write(tmp_path / "l.csv", "well,label\nB02,a\n"), [])
    assert labels.site_labels == {} and any("not on the plate" in p for p in labels.problems)


def test_guess_labels_csv_takes_only_the_plates_own_csv(tmp_path):
    from napari_dcmix.plate.labels import guess_labels_csv

    plate = tmp_path / "screen" / "Plate1"
    plate.mkdir(parents=True)
    (tmp_path / "Plate1_labels.csv").write_text("well,label\n")  # another folder's Plate1: never guessed
    (tmp_path / "screen" / "labels.csv").write_text("well,label\n")  # the parent's own labels: not this plate's
    assert guess_labels_csv(plate) is None
    beside = tmp_path / "screen" / "Plate1_labels.csv"
    beside.write_text("well,label\n")
    assert guess_labels_csv(plate) == beside
    inside = plate / "labels.csv"
    inside.write_text("well,label\n")
    assert guess_labels_csv(plate) == inside  # the plate's own labels.csv comes first


def test_csv_columns_sniffs_separators(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("well;phenotype;dose\nB02;a;1\n", encoding="utf-8")
    from napari_dcmix.plate.labels import csv_columns

    assert csv_columns(path) == ["well", "phenotype", "dose"]
