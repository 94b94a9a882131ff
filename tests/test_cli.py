"""The CLI end to end on tiny plates: the same engine as the docks, errors as one line + exit 2."""

import csv
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    return write_signal_plate(tmp_path_factory.mktemp("cli") / "plate", signal_channel=2, wells_per_class=16)


def test_train_predict_importance_end_to_end(plate, tmp_path, capsys):
    root, labels = plate
    model = tmp_path / "model.pt"
    code, out, err = run(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                         "phenotype", "--out", model, "--tile", 16, "--steps", 150, "--device", "cpu", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) >= {"channels", "importance", "classes", "val_accuracy", "test_accuracy", "learned", "steps",
                           "images_seen", "device", "seconds"}
    assert result["classes"] == ["negative", "positive"] and result["device"] == "cpu"
    assert result["learned"] is True and result["steps"] <= 150 and result["images_seen"] == 32 * result["steps"]
    assert max(result["importance"], key=result["importance"].get) == "ch2"
    assert "step 50/150" in err and "warning" not in err  # progress goes to stderr

    preds = tmp_path / "pred.csv"
    code, out, err = run(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--out", preds, "--json")
    assert code == 0, err
    rows = list(csv.DictReader(open(preds)))
    assert list(rows[0]) == ["well", "prediction", "confidence", "p_negative", "p_positive"]
    assert len(rows) == 32
    code, _, _ = run(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--out", preds, "--per-site")
    assert list(csv.DictReader(open(preds)))[0].keys() >= {"well", "site"}

    code, out, err = run(capsys, "importance", model, "--permutation", root, "--pattern", SIGNAL_PATTERN,
                         "--labels", labels, "--label-column", "phenotype", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload["importance"]) == set(payload["permutation"]) == {"ch0", "ch1", "ch2"}
    assert max(payload["permutation"], key=payload["permutation"].get) == "ch2"


def test_inspect_json(imagexpress_plate, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("well,treatment\nB02,DMSO\nB03,drug\nC02,\nH12,drug\n")
    code, out, _ = run(capsys, "inspect", imagexpress_plate, "--labels", labels, "--json")
    assert code == 0
    info = json.loads(out)
    assert info["layout"] == "imagexpress" and info["wells"] == 6 and info["sites"] == 2
    assert info["channels"] == ["w1", "w2", "w3"] and info["shape"] == [3, 16, 16] and info["dtype"] == "uint16"
    assert info["labels"] == {"DMSO": 1, "drug": 1}
    assert any("H12" in p["message"] for p in info["problems"]) and info["skipped"] == []
    assert set(info) >= {"layout", "plates", "wells", "sites", "channels", "shape", "dtype", "labels", "problems"}


def _error(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()  # warnings about the data may come first, the error is the last line
    assert lines[-1].startswith("error: ") and all(line.startswith("warning: ") for line in lines[:-1]), err
    assert "Traceback" not in err
    return lines[-1]


def test_errors_are_one_line_exit_2(plate, tmp_path, capsys):
    root, labels = plate
    one_class = tmp_path / "one.csv"
    one_class.write_text("well,phenotype\nB02,negative\nC02,negative\n")
    common = ["--pattern", SIGNAL_PATTERN, "--tile", 16, "--epochs", 1]
    assert "one class" in _error(capsys, "train", root, "--labels", one_class, "--label-column", "phenotype",
                                 "--out", tmp_path / "m.pt", *common)
    empty = tmp_path / "empty.csv"
    empty.write_text("well,phenotype\nB02,\n")
    assert "no labeled sites" in _error(capsys, "train", root, "--labels", empty, "--label-column", "phenotype",
                                        "--out", tmp_path / "m.pt", *common)
    assert "no column 'nope'" in _error(capsys, "train", root, "--labels", labels, "--label-column", "nope",
                                         "--out", tmp_path / "m.pt", *common)
    assert "does not exist" in _error(capsys, "train", root, "--labels", labels, "--label-column", "phenotype",
                                      "--out", tmp_path / "missing" / "m.pt", *common)
    assert "inside the plate folder" in _error(capsys, "train", root, "--labels", labels, "--label-column",
                                               "phenotype", "--out", root / "m.pt", *common)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(256))
    assert "not a napari-dcmix model" in _error(capsys, "predict", junk, root, "--out", tmp_path / "p.csv")
    assert "no images" in _error(capsys, "inspect", tmp_path)  # only CSVs/.pt here
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "scan-0001.tif").write_bytes(b"II*\x00")
    assert "--pattern" in _error(capsys, "inspect", odd)
    assert "error" in _error(capsys, "train")  # missing arguments: argparse, still one line


def test_malicious_checkpoint_is_refused_and_never_runs(plate, tmp_path, capsys):
    root, _ = plate
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "napari-dcmix", "x": Payload()}))
    line = _error(capsys, "predict", evil, root, "--out", tmp_path / "p.csv")
    assert "not a napari-dcmix model" in line
    assert not marker.exists()


def test_module_entry_point_and_console_script(imagexpress_plate):
    proc = subprocess.run([sys.executable, "-m", "napari_dcmix", "inspect", str(imagexpress_plate), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout)["wells"] == 6
    proc = subprocess.run([sys.executable, "-m", "napari_dcmix", "inspect", "/no/such/plate"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_train_warns_when_nothing_was_learned(plate, tmp_path, capsys):
    root, labels = plate
    rows = list(csv.DictReader(open(labels)))
    shuffled = tmp_path / "shuffled.csv"
    with open(shuffled, "w", newline="") as handle:  # a label every 2nd well: unrelated to the texture
        writer = csv.writer(handle)
        writer.writerow(["well", "phenotype"])
        writer.writerows([r["well"], "a" if (i // 2) % 2 else "b"] for i, r in enumerate(rows))
    code, out, err = run(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--labels", shuffled, "--label-column",
                         "phenotype", "--out", tmp_path / "m.pt", "--tile", 16, "--steps", 60, "--json")
    assert code == 0
    assert json.loads(out)["learned"] is False
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "learned nothing you can trust" in warning[0] and "label more wells" in warning[0]


@pytest.mark.timeout(900)  # 7 models, the panel's out-of-fold scoring and a prediction, on shared cores
def test_explain_end_to_end(tmp_path, capsys):
    from conftest import write_phenotype_plate

    root, labels = write_phenotype_plate(tmp_path / "plate", {"ph_one": 0, "ph_two": 2})
    out_dir = tmp_path / "results"
    code, out, err = run(capsys, "explain", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                         "phenotype", "--tile", 16, "--steps", 80, "--out", out_dir, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["reference"] == "negative" and payload["channels"] == ["ch0", "ch1", "ch2"]
    rows = payload["phenotypes"]
    assert set(rows) == {"ph_one", "ph_two", "all phenotypes"}
    for name, channel in (("ph_one", "ch0"), ("ph_two", "ch2")):
        assert max(rows[name]["importance"], key=rows[name]["importance"].get) == channel
        assert rows[name]["learned"] is True and set(rows[name]) >= {"spread", "val_accuracy", "auc"}
    table = list(csv.DictReader(open(out_dir / "importance_per_phenotype.csv")))
    assert [r["phenotype"] for r in table] == ["ph_one", "ph_two", "all phenotypes"]
    assert (out_dir / "importance_per_phenotype.png").read_bytes()[:4] == b"\x89PNG"
    # the prediction model: the phenotype panel, with its out-of-fold figures, and predict takes it
    model = out_dir / "phenotype_panel.pt"
    assert payload["model"] == str(model) and model.is_file()
    assert set(payload["panel"]["z_prime"]) == {"ph_one", "ph_two"} and payload["panel"]["verdict"]["n_wells"] == 18
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # written atomically: no temp files left
    code, out, err = run(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--out", tmp_path / "calls.csv")
    assert code == 0, err
    calls = list(csv.DictReader(open(tmp_path / "calls.csv")))
    assert len(calls) == 18 and {"p_negative", "p_ph_one", "p_ph_two"} <= set(calls[0])
    truth = {r["well"]: r["phenotype"] for r in csv.DictReader(open(labels))}
    assert np.mean([c["prediction"] == truth[c["well"]] for c in calls]) >= 0.8


def test_explain_errors(tmp_path, capsys):
    from conftest import write_phenotype_plate

    root, labels = write_phenotype_plate(tmp_path / "plate", {"ph_one": 0}, reference="wells_a")
    before = sorted((p.name, p.stat().st_size) for p in root.iterdir())
    common = ["--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column", "phenotype", "--steps", 2]
    assert "choose the reference class" in _error(capsys, "explain", root, *common)
    assert "not among the labeled classes" in _error(capsys, "explain", root, *common, "--reference", "DMSO")
    assert "inside the plate folder" in _error(capsys, "explain", root, *common, "--reference", "wells_a",
                                               "--out", root / "results")
    assert sorted((p.name, p.stat().st_size) for p in root.iterdir()) == before


def test_explain_stains_json_csv_png(tmp_path, capsys):
    """``explain --stains --keep``: the stain search after explain, in the JSON and beside the matrix."""
    from conftest import write_phenotype_plate

    root, labels = write_phenotype_plate(tmp_path / "plate", {"ph_one": 1})
    out_dir = tmp_path / "results"
    code, out, err = run(capsys, "explain", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                         "phenotype", "--tile", 16, "--steps", 120, "--stains", "--keep", "ch0", "--out", out_dir,
                         "--json")
    assert code == 0, err
    payload = json.loads(out)
    stains = payload["stains"]["ph_one"]
    assert stains["alone"]["ch1"]["learned"] is True and stains["alone"]["ch2"]["learned"] is False
    assert stains["without"]["ch1"]["needed"] is True and stains["without"]["ch2"]["needed"] is False
    assert stains["smallest_panel"] == ["ch0", "ch1"]  # the kept stain, then the one that carries it
    assert payload["plate_panel"] == ["ch0", "ch1"] and payload["stains_complete"] is True
    assert [row[0] for row in stains["curve"]] == [1, 2, 3]  # ch0, ch0+ch1 (chosen), all for reference
    assert set(stains["agreement"]) == {"alone", "without", "warning"}
    assert set(stains["second_opinion"]) >= {"accuracy", "auc", "shares", "warning"}
    table = list(csv.DictReader(open(out_dir / "stains.csv")))
    assert [r["channel"] for r in table] == ["ch0", "ch1", "ch2"] and table[1]["needed"] == "True"
    assert (out_dir / "stains.png").read_bytes()[:4] == b"\x89PNG"
    assert "--keep names DNA, not a channel" in _error(capsys, "explain", root, "--pattern", SIGNAL_PATTERN,
                                                       "--labels", labels, "--label-column", "phenotype",
                                                       "--stains", "--keep", "DNA")
    assert "add --stains" in _error(capsys, "explain", root, "--pattern", SIGNAL_PATTERN, "--labels", labels,
                                    "--label-column", "phenotype", "--keep", "ch0")


@pytest.mark.parametrize("stop_at", [3, 17, 41])
def test_ctrl_c_during_train_saves_a_model_that_predicts(plate, tmp_path, capsys, monkeypatch, stop_at):
    import napari_dcmix.cli as cli

    root, labels = plate
    real = cli._train_progress

    def interrupt(ev, prefix=""):
        if ev.kind == "step" and ev.step == stop_at:
            raise KeyboardInterrupt
        real(ev, prefix)

    monkeypatch.setattr(cli, "_train_progress", interrupt)
    model = tmp_path / "m.pt"
    code, out, err = run(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                         "phenotype", "--out", model, "--tile", 16, "--steps", 60, "--json")
    assert code == 0 and json.loads(out)["interrupted"] is True
    code, _, err = run(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert len(list(csv.DictReader(open(tmp_path / "p.csv")))) == 32
