"""LabelBook: the labels and class list the docks edit, and the label checks Trainer shares."""

from __future__ import annotations

from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.plate.label_book import (LabelBook, class_problem, class_warnings, class_well_counts,
                                           labels_problem)


def test_edits_keep_labels_and_class_list_together():
    book = LabelBook({("", "B02"): "a"})
    assert book.classes == ["a"]
    assert book.add_class("  z ") == "z" and book.add_class("") is None and book.classes == ["a", "z"]
    assert book.assign("", ["B03", "C02"], "b") == 2
    assert book.labels == {("", "B02"): "a", ("", "B03"): "b", ("", "C02"): "b"}
    assert book.classes == ["a", "z", "b"]  # assigning a new class lists it
    assert book.clear("", ["B03"]) == 1 and book.labels == {("", "B02"): "a", ("", "C02"): "b"}
    assert book.counts() == {"a": 1, "z": 0, "b": 1}
    assert not book.rename_class("b", "a") and not book.rename_class("b", " ") and not book.rename_class("q", "r")
    assert book.rename_class("b", "c") and book.labels[("", "C02")] == "c" and book.classes == ["a", "z", "c"]
    assert book.remove_class("c") == 1 and book.labels == {("", "B02"): "a"} and book.classes == ["a", "z"]
    assert book.plate_labels("") == {"B02": "a"} and book.plate_labels("other") == {}


def test_replace_adds_new_classes_or_starts_over():
    book = LabelBook(classes=["ctrl"])
    book.replace({("P1", "B02"): "pos", ("P1", "B03"): "neg"})
    assert book.classes == ["ctrl", "neg", "pos"]
    book.replace({("P1", "B02"): "x"}, reset_classes=True)
    assert book.classes == ["x"] and book.well_count("x") == 1


def test_checks_in_words_a_biologist_can_act_on():
    assert class_warnings({"a": 2, "b": 5}) == ["a: only 2 wells (label at least 3)"]
    assert class_warnings({"a": 1}) == ["a: only 1 well (label at least 3)",
                                        "only one class (a); label wells of at least two classes"]
    assert class_problem(["a", "b"]) is None
    assert class_problem(["a"]) == "only one class (a) is labeled; a classifier needs at least two classes"
    assert class_problem([]).startswith("no labeled sites")
    assert labels_problem({}, {}).startswith("no wells are labeled")
    assert labels_problem({("", "Z99"): "a"}, {}).startswith("none of the labeled wells is on this plate")
    assert labels_problem({("", "B02"): "a"}, {"a": 1}) == class_problem(["a"])


def test_counts_on_a_plate_only_count_wells_with_images(tmp_path):
    root, csv = write_signal_plate(tmp_path / "p", wells_per_class=3)
    plate = open_plate(root, SIGNAL_PATTERN)
    labels = read_labels(csv, plate.sites, "phenotype").well_labels()
    book = LabelBook(labels)
    book.assign(plate.plates[0], ["P24"], "ghost")  # no images there
    assert book.counts_on(plate) == {"negative": 3, "positive": 3} == class_well_counts(plate, labels)
    assert class_well_counts(None, book.labels)["ghost"] == 1
    assert book.problem(plate) is None and book.warnings(plate) == []
    book.remove_class("positive")
    assert book.problem(plate) == class_problem(["negative"])
