"""predict --labels: Z′ of every phenotype against the negative control, the rule the Apply dock uses."""

import csv
import json
import math

import pytest
import torch

from conftest import SIGNAL_PATTERN, write_phenotype_plate
from napari_dcmix.cli import main
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainedModel, predict_sites, well_probabilities
from napari_dcmix.training.controls import z_primes

CLASSES = ["DMSO", "er", "mito"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("zprime")
    root, labels = write_phenotype_plate(base / "plate", {"er": 1, "mito": 2}, wells_per_class=3, size=24,
                                         reference="DMSO")
    plate = open_plate(root, SIGNAL_PATTERN)
    torch.manual_seed(0)
    model = TrainedModel(ChannelClassifier("dcmix", 3, 3), plate.channels, CLASSES, plate.channel_stats(), 16,
                         {"normalization": "model"})
    model.save(base / "model.pt")
    probs = well_probabilities(list(predict_sites(model, plate)))
    well_probs = {w: dict(zip(CLASSES, p)) for w, p in probs.items()}
    well_labels = read_labels(labels, plate.sites, "phenotype").well_labels()
    return base, root, labels, well_probs, well_labels


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def predict(setup, out, *extra):
    base, root, *_ = setup
    return ["predict", base / "model.pt", root, "--pattern", SIGNAL_PATTERN, "--out", out, "--device", "cpu", *extra]


def test_z_prime_of_every_phenotype_against_the_guessed_reference(setup, tmp_path, capsys):
    _, _, labels, well_probs, well_labels = setup
    code, out, err = run(capsys, *predict(setup, tmp_path / "p.csv", "--labels", labels, "--label-column",
                                          "phenotype", "--json"))
    assert code == 0, err
    payload = json.loads(out)
    expected = z_primes(well_probs, well_labels, "DMSO", CLASSES)
    assert all(isinstance(v, float) and math.isfinite(v) for v in expected.values())  # numbers, not nulls
    assert payload["reference"] == "DMSO" and list(payload["z_prime"]) == ["er", "mito"]
    for cls in ("er", "mito"):
        assert payload["z_prime"][cls] == pytest.approx(expected[cls], abs=1e-9)
    assert f"Z′ vs DMSO on P(phenotype vs DMSO): er {expected['er']:.2f} · mito {expected['mito']:.2f}" in err
    assert len(list(csv.DictReader(open(tmp_path / "p.csv", newline="")))) == 9  # the CSV is unchanged


def test_a_given_reference_and_the_text_output(setup, tmp_path, capsys):
    _, _, labels, well_probs, well_labels = setup
    code, out, err = run(capsys, *predict(setup, tmp_path / "p.csv", "--labels", labels, "--reference", "er"))
    assert code == 0, err
    expected = z_primes(well_probs, well_labels, "er", CLASSES)
    assert list(expected) == ["DMSO", "mito"]
    assert f"Z′ vs er on P(phenotype vs er): DMSO {expected['DMSO']:.2f} · mito {expected['mito']:.2f}" in err
    assert out.startswith("predictions written to") and "Z′" not in out  # stdout: the results, as before


def test_without_labels_nothing_new(setup, tmp_path, capsys):
    code, out, err = run(capsys, *predict(setup, tmp_path / "p.csv", "--json"))
    assert code == 0, err
    payload = json.loads(out)
    assert "z_prime" not in payload and "reference" not in payload and "Z′" not in err


def _relabeled(setup, tmp_path, names):
    _, _, labels, *_ = setup
    rows = list(csv.DictReader(open(labels, newline="")))
    path = tmp_path / "relabeled.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["well", "phenotype"])
        writer.writeheader()
        writer.writerows({"well": r["well"], "phenotype": names[r["phenotype"]]} for r in rows)
    return path


@pytest.mark.parametrize("case", ["reference without labels", "unknown reference", "no control named",
                                  "two controls named"])
def test_a_reference_that_cannot_be_known_is_one_error_before_any_work(setup, tmp_path, capsys, case):
    _, _, labels, *_ = setup
    renames = {"no control named": {"DMSO": "a", "er": "b", "mito": "c"},
               "two controls named": {"DMSO": "DMSO", "er": "mock", "mito": "c"}}
    relabeled = ["--labels", _relabeled(setup, tmp_path, renames[case])] if case in renames else []
    extra, message = {
        "reference without labels": (["--reference", "DMSO"], "give --labels CSV too"),
        "unknown reference": (["--labels", labels, "--reference", "dmso"],
                              "'dmso' is not among the labeled classes (DMSO, er, mito)"),
        "no control named": (relabeled, "cannot tell which class is the negative control among a, b, c"),
        "two controls named": (relabeled, "DMSO, mock all look like one"),
    }[case]
    code, out, err = run(capsys, *predict(setup, tmp_path / "p.csv", *extra))
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and lines[-1].startswith("error: ") and message in lines[-1], err
    assert "Traceback" not in err and not (tmp_path / "p.csv").exists() and "predicted" not in err
    if case in renames:
        assert "--reference" in lines[-1]


def test_the_labels_file_is_never_the_output(setup, tmp_path, capsys):
    _, _, labels, *_ = setup
    before = labels.read_bytes()
    code, out, err = run(capsys, *predict(setup, labels, "--labels", labels))
    assert code == 2 and "is the labels file given as --labels; it would be overwritten" in err
    assert labels.read_bytes() == before
