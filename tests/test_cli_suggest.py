"""``napari-dcmix suggest`` end to end: the unlabelled wells to label next as a table, a CSV written
atomically and one JSON object; a panel's members' disagreement in the reasons; unreadable wells named."""

import csv
import json
import shutil

import pytest
import torch

from conftest import SIGNAL_PATTERN, constant_member, write_signal_plate
from napari_dcmix.cli import main
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.model.panel import PhenotypePanel
from napari_dcmix.plate import open_plate
from napari_dcmix.training import TrainedModel
from napari_dcmix.training.trainer import reference_stats


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A 12-well plate with 4 wells labelled, a single model and a 3-member panel (one pair disagrees)."""
    tmp = tmp_path_factory.mktemp("suggest")
    root, full = write_signal_plate(tmp / "plate", wells_per_class=6, sites=2, size=16)
    rows = list(csv.reader(open(full)))
    (tmp / "some.csv").write_text("\n".join(",".join(r) for r in rows[:5]) + "\n")
    plate = open_plate(root, SIGNAL_PATTERN)
    stats = reference_stats(plate)
    torch.manual_seed(0)
    single = TrainedModel(ChannelClassifier("dcmix", 3, 2).eval(), list(plate.channels), ["negative", "positive"],
                          stats, 16, {"normalization": "plate"})
    single.save(tmp / "single.pt")
    panel = PhenotypePanel([constant_member(v, seed=i) for i, v in enumerate([2.0, -2.0, 0.5])], [1, 1, 1], 2, 0)
    TrainedModel(panel.eval(), list(plate.channels), ["negative", "positive"], stats, 16,
                 {"normalization": "plate"}).save(tmp / "panel.pt")
    return tmp, root


def test_json_and_csv_name_only_unlabelled_wells_best_first(setup, tmp_path, capsys):
    tmp, root = setup
    out = tmp_path / "suggestions.csv"
    code, stdout, err = run(capsys, "suggest", tmp / "single.pt", root, "--pattern", SIGNAL_PATTERN, "--labels",
                            tmp / "some.csv", "--label-column", "phenotype", "--n", 3, "--out", out, "--json",
                            "--device", "cpu")
    assert code == 0, err
    payload = json.loads(stdout)
    labelled = {r["well"] for r in csv.DictReader(open(tmp / "some.csv"))}
    wells = [s["well"] for s in payload["suggestions"]]
    assert len(wells) == 3 and not set(wells) & labelled and payload["candidates"] == 12 - len(labelled)
    assert payload["members"] == 1 and payload["rule"].startswith("score = uncertainty") and payload["csv"] == str(out)
    assert all(s["disagreement"] is None and "one model" in s["reason"] for s in payload["suggestions"])
    rows = list(csv.DictReader(open(out, newline="")))
    assert [(r["well"], r["reason"]) for r in rows] == [(s["well"], s["reason"]) for s in payload["suggestions"]]
    assert [float(r["score"]) for r in rows] == sorted((float(r["score"]) for r in rows), reverse=True)
    assert "ranked 8 unlabelled wells: 3 suggested" in err and not [x for x in err.splitlines() if "warning" in x]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suggestions.csv"]  # no temporary file left

    code, stdout, _ = run(capsys, "suggest", tmp / "single.pt", root, "--pattern", SIGNAL_PATTERN, "--labels",
                          tmp / "some.csv", "--label-column", "phenotype", "--device", "cpu")
    assert code == 0 and stdout.splitlines()[0].startswith("wells to label next (single.pt (dcmix); 8 unlabelled")
    assert sum(line.lstrip()[:2].rstrip(".").isdigit() for line in stdout.splitlines()) == 8  # --n 8: all 8 left


def test_a_panel_s_disagreeing_members_are_in_the_reasons(setup, capsys):
    tmp, root = setup
    code, stdout, err = run(capsys, "suggest", tmp / "panel.pt", root, "--pattern", SIGNAL_PATTERN, "--labels",
                            tmp / "some.csv", "--label-column", "phenotype", "--n", 2, "--json", "--device", "cpu")
    assert code == 0, err
    payload = json.loads(stdout)
    assert payload["members"] == 3
    for s in payload["suggestions"]:
        assert s["disagreement"] > 0.3 and s["reason"].startswith("members disagree: 2 say positive, 1 says negative")


def test_wells_that_cannot_be_read_are_named_and_skipped(setup, tmp_path, capsys):
    tmp, root = setup
    copy = tmp_path / "plate"
    shutil.copytree(root, copy)
    for path in copy.glob("G02_s*_ch0.tif"):
        path.write_bytes(b"")
    code, stdout, err = run(capsys, "suggest", tmp / "single.pt", copy, "--pattern", SIGNAL_PATTERN, "--labels",
                            tmp / "some.csv", "--label-column", "phenotype", "--n", 20, "--json", "--device", "cpu")
    assert code == 0, err
    payload = json.loads(stdout)
    assert "G02" not in [s["well"] for s in payload["suggestions"]] and payload["skipped_wells"] == ["G02"]
    assert "warning: 1 unlabelled well(s) have no readable site and were not ranked: G02" in err
    assert "warning: only 7 unlabelled well(s) could be ranked, fewer than --n 20" in err
    assert any("G02" in p["message"] for p in payload["problems"])  # each unreadable file too
