"""The one rule for outputs that name an input (``_io.check_not_an_input``) and for two outputs that
are one file: equal paths, ``..`` and symlinks (resolved) and hard links (same inode) all count."""

from __future__ import annotations

import os

import pytest

from napari_dcmix._io import check_distinct_outputs, check_not_an_input, output_problem, same_file
from napari_dcmix.errors import DcmixError


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"weights")
    return path


def test_every_spelling_of_an_input_is_refused(tmp_path, model):
    (tmp_path / "sym.pt").symlink_to(model)
    os.link(model, tmp_path / "hard.pt")
    (tmp_path / "sub").mkdir()
    for spelled in (model, tmp_path / "sub" / ".." / "model.pt", tmp_path / "sym.pt", tmp_path / "hard.pt"):
        with pytest.raises(DcmixError, match="is the model file given as MODEL; it would be overwritten"):
            check_not_an_input(spelled, {"the model file given as MODEL": model}, "--out predictions")
    assert model.read_bytes() == b"weights"


def test_other_paths_and_missing_inputs_pass(tmp_path, model):
    assert check_not_an_input(tmp_path / "p.csv", {"the model": model, "the labels": None}) == tmp_path / "p.csv"
    assert not same_file(tmp_path / "a.csv", tmp_path / "b.csv")  # neither exists: compared by name
    assert same_file(tmp_path / "a.csv", tmp_path / "." / "a.csv")


def test_two_outputs_that_are_one_file(tmp_path):
    with pytest.raises(DcmixError, match="--montage and --plate-map are both .*f.png; one would overwrite the other"):
        check_distinct_outputs({"--plate-map": tmp_path / "f.png", "--montage": tmp_path / "f.png", "--x": None})
    check_distinct_outputs({"--plate-map": tmp_path / "a.png", "--montage": tmp_path / "b.png"})


def test_the_docks_rule_is_the_same(tmp_path, model):
    plate = tmp_path / "plate"
    plate.mkdir()
    assert "is the model file loaded in Apply; it would be overwritten" in output_problem(
        model, [plate], {"the model file loaded in Apply": model}, "predictions")
    assert "inside the plate folder" in output_problem(plate / "x.csv", [plate], {"the model": model})
    assert output_problem(tmp_path / "x.csv", [plate], {"the model": model}) is None
