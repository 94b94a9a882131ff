"""The CLI's bad-input matrix: one bad thing at a time, each a clear ``error: …`` (exit 2) or a named
``warning:`` (exit 0, the rest of the plate used), never a traceback, the input folder byte-identical."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import shutil
import struct

import numpy as np
import pytest
import tifffile
import torch
from conftest import SIGNAL_PATTERN, write_rxrx1, write_signal_plate

from napari_dcmix.cli import main
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import ChannelStats
from napari_dcmix.training import TrainedModel

BAD = "B02_s1_ch1.tif"  # the one file each pixel case spoils


def folder_hash(root) -> dict[str, str]:
    """Every file under ``root``, by relative path, with the SHA-256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def error_line(capsys, *argv) -> str:
    code, out, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    # one error, last; before it only warnings and progress lines (training prints its start line)
    assert lines[-1].startswith("error: ") and not any(line.startswith("error") for line in lines[:-1]), err
    return lines[-1]


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: ")]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root, labels = write_signal_plate(tmp_path_factory.mktemp("bad") / "plate", wells_per_class=3, sites=1, size=32)
    return root, labels


@pytest.fixture
def plate(pristine, tmp_path):
    """A private copy of the tiny plate (3 channels ch0-ch2, 6 wells, 1 site) and its labels."""
    root = tmp_path / "plate"
    shutil.copytree(pristine[0], root)
    labels = tmp_path / "labels.csv"
    shutil.copy(pristine[1], labels)
    return root, labels


@pytest.fixture
def model(tmp_path):
    """An (untrained) model file for the signal plate's channels, written without training."""
    torch.manual_seed(0)
    net = ChannelClassifier("dcmix", 3, 2).eval()
    stats = ChannelStats(["ch0", "ch1", "ch2"], [900, 900, 900], [1100, 1100, 1100])
    path = tmp_path / "model.pt"
    TrainedModel(net, ["ch0", "ch1", "ch2"], ["negative", "positive"], stats, 16).save(path)
    return path


# --- bad pixels: named warning, exit 0, the rest of the plate used ------------------------------------
def _spoil_stack(path):
    tifffile.imwrite(path, np.ones((3, 32, 32), np.uint16), metadata={"axes": "ZYX"})


def _spoil_float(value):
    def spoil(path):
        img = np.full((32, 32), 1000.0, np.float32)
        img[5:9, 5:9] = value
        tifffile.imwrite(path, img)
    return spoil


def _spoil_tiff_tag(path):
    tifffile.imwrite(path, np.full((32, 32), 1000, np.uint16), description="description of the image")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].tags["ImageDescription"].offset
    raw = bytearray(path.read_bytes())
    raw[offset + 8:offset + 12] = struct.pack("<I", 0x7FFFFFF0)
    path.write_bytes(bytes(raw))


PIXEL_CASES = {
    "corrupt tiff": (lambda p: p.write_bytes(b"II*\x00" + bytes(range(7, 71))), "unreadable", "could not be read", True),
    "truncated tiff": (lambda p: p.write_bytes(p.read_bytes()[:300]), "unreadable", "could not be read", True),
    "empty tiff": (lambda p: p.write_bytes(b""), "unreadable", "empty: 0 bytes", True),
    "site missing a channel": (lambda p: p.unlink(), "missing-channel", "B02 s1 lacks ch1", True),
    "mixed shapes": (lambda p: tifffile.imwrite(p, np.ones((16, 24), np.uint16)), "mixed-shapes", "different shapes", True),
    "3-D stack": (_spoil_stack, "stack", "3×32×32 stack", False),
    "NaN float": (_spoil_float(np.nan), "non-finite", "16 NaN", False),
    "Inf float": (_spoil_float(np.inf), "non-finite", "16 infinite", False),
    "8-bit in a 16-bit plate": (lambda p: tifffile.imwrite(p, np.full((32, 32), 9, np.uint8)), "mixed-bit-depth", "is uint8", False),
    "tiff damage tifffile logs": (_spoil_tiff_tag, "tiff-log", "invalid value offset", False),
}


@pytest.mark.parametrize("case", list(PIXEL_CASES))
def test_bad_pixels_are_named_warnings(plate, capsys, caplog, case):
    root, _ = plate
    spoil, kind, text, skipped = PIXEL_CASES[case]
    spoil(root / BAD)
    before = folder_hash(root)
    code, out, err = run(capsys, "inspect", root, "--pattern", SIGNAL_PATTERN, "--check", "--json")
    assert code == 0, err
    [line] = [w for w in warnings_of(err) if text in w]
    assert "B02 s1" in line
    payload = json.loads(out)
    assert any(p["kind"] == kind and "B02 s1" in p["message"] for p in payload["problems"])
    assert payload["skipped"] == (["B02 s1"] if skipped else [])
    # tifffile's own words appear only inside the named warning, never as a bare log line
    assert all(line.startswith(("warning: ", "checked ")) for line in err.splitlines()), err
    assert not [r for r in caplog.records if r.name == "tifffile"]
    assert folder_hash(root) == before


@pytest.mark.parametrize("case,content", [("corrupt png", b"\x89PNG\r\n\x1a\nbroken"), ("empty png", b""),
                                          ("truncated png", None)])
def test_bad_png_is_a_named_warning(tmp_path, capsys, case, content):
    root = write_rxrx1(tmp_path / "rxrx1", plates=(1,), wells=("B02", "B03"), sites=1, channels=2)
    bad = root / "HUVEC-01" / "Plate1" / "B02_s1_w2.png"
    bad.write_bytes(bad.read_bytes()[:60] if content is None else content)
    before = folder_hash(root)
    code, out, err = run(capsys, "inspect", root, "--check", "--json")
    assert code == 0, err
    [line] = [w for w in warnings_of(err) if "B02_s1_w2.png" in w]
    assert "HUVEC-01/Plate1 B02 s1" in line and "skipped" in line
    assert json.loads(out)["skipped"] == ["HUVEC-01/Plate1 B02 s1"]
    assert folder_hash(root) == before


def test_warnings_are_capped_at_20_with_a_count(plate, capsys):
    root, _ = plate
    for n in range(2, 27):
        (root / f"B02_s{n}_ch0.tif").write_bytes(b"")  # 25 sites lacking ch1 and ch2 (names only are read)
    code, out, err = run(capsys, "inspect", root, "--pattern", SIGNAL_PATTERN, "--json")
    warnings = warnings_of(err)
    assert code == 0 and len(json.loads(out)["problems"]) == 25 and len(json.loads(out)["skipped"]) == 25
    assert len(warnings) == 21 and "B02 s2 lacks ch1, ch2" in warnings[0]
    assert warnings[-1] == "warning: … and 5 more problems (all of them are listed by --json)"


# --- plates and patterns: one error line, exit 2 --------------------------------------------------------
def test_nonexistent_path(tmp_path, capsys):
    assert "does not exist" in error_line(capsys, "inspect", tmp_path / "nope")


def test_folder_of_unrelated_files(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "table.csv").write_text("a,b\n")
    before = folder_hash(tmp_path)
    assert "holds no images" in error_line(capsys, "inspect", tmp_path)
    assert folder_hash(tmp_path) == before


def test_file_where_a_folder_is_expected(plate, capsys):
    root, _ = plate
    assert "is not a folder" in error_line(capsys, "inspect", root / "B02_s1_ch0.tif")


@pytest.mark.parametrize("pattern,text", [("(?P<well>[A-Z]\\d+", "not a valid regular expression"),
                                          (".*\\.tif", "needs a named group")])
def test_bad_patterns(plate, capsys, pattern, text):
    root, _ = plate
    before = folder_hash(root)
    assert text in error_line(capsys, "inspect", root, "--pattern", pattern)
    assert folder_hash(root) == before


# --- labels ---------------------------------------------------------------------------------------------
LABEL_ERRORS = {
    "not a CSV": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "not a CSV table"),
    "empty": (b"", "not a CSV table with a header row"),
    "no well column": (b"site,phenotype\n1,a\n", "has no 'well' column"),
}


@pytest.mark.parametrize("case", list(LABEL_ERRORS))
def test_unusable_labels_are_errors(plate, capsys, case):
    root, labels = plate
    labels.write_bytes(LABEL_ERRORS[case][0])
    before = folder_hash(root)
    assert LABEL_ERRORS[case][1] in error_line(capsys, "inspect", root, "--pattern", SIGNAL_PATTERN, "--labels", labels)
    assert folder_hash(root) == before


def test_unknown_label_column(plate, capsys):
    root, labels = plate
    line = error_line(capsys, "inspect", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column", "dose")
    assert "no column 'dose'" in line and "phenotype" in line


LABEL_WARNINGS = {
    "unknown wells": ("well,phenotype\nB02,negative\nC02,positive\nD02,negative\nE02,positive\nP24,positive\n",
                      "labels for wells not on the plate (ignored): P24"),
    "one class": ("well,phenotype\nB02,negative\nC02,negative\n", "only one class ('negative')"),
    "class of one well": ("well,phenotype\nB02,negative\nD02,negative\nC02,positive\n",
                          "class 'positive' is labeled on one well only (C02)"),
}


@pytest.mark.parametrize("case", list(LABEL_WARNINGS))
def test_doubtful_labels_are_named_warnings(plate, capsys, case):
    root, labels = plate
    labels.write_text(LABEL_WARNINGS[case][0])
    code, out, err = run(capsys, "inspect", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--json")
    assert code == 0
    assert [w for w in warnings_of(err) if LABEL_WARNINGS[case][1] in w]
    assert any(LABEL_WARNINGS[case][1] in p["message"] for p in json.loads(out)["problems"])


EXCEL = {
    "BOM ; CRLF b2-style": lambda rows: ("\ufeffwell;phenotype\r\n" + "".join(f"{w[0].lower()}{int(w[1:])};{c}\r\n" for w, c in rows)).encode("utf-8"),
    "sep= line": lambda rows: ("sep=;\r\nwell;phenotype\r\n" + "".join(f"{w};{c}\r\n" for w, c in rows)).encode("cp1252"),
    "UTF-16 tab": lambda rows: ("well\tphenotype\r\n" + "".join(f"{w}\t{c}\r\n" for w, c in rows)).encode("utf-16"),
}


@pytest.mark.parametrize("case", list(EXCEL))
def test_excel_exports_read_like_plain_csv(plate, capsys, case):
    root, labels = plate
    code, out, _ = run(capsys, "inspect", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--json")
    plain = json.loads(out)["labels"]
    rows = [line.split(",") for line in labels.read_text().splitlines()[1:]]
    labels.write_bytes(EXCEL[case](rows))
    code, out, err = run(capsys, "inspect", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--json")
    assert code == 0 and warnings_of(err) == []
    assert json.loads(out)["labels"] == plain == {"negative": 3, "positive": 3}


# --- models ----------------------------------------------------------------------------------------------
def _tamper(model, edit):
    payload = torch.load(model, weights_only=True)
    edit(payload)
    torch.save(payload, model)


def _drop_key(payload):
    payload["state_dict"].pop(next(iter(payload["state_dict"])))


def _wrong_shape(payload):
    key = next(k for k, v in payload["state_dict"].items() if v.ndim == 4)
    payload["state_dict"][key] = torch.zeros(1, 1, 1, 1)


MODEL_ERRORS = {
    "not a model": (lambda m: m.write_text("just text"), "not a napari-dcmix model"),
    "truncated model": (lambda m: m.write_bytes(m.read_bytes()[:500]), "not a napari-dcmix model"),
    "missing keys": (lambda m: _tamper(m, _drop_key), "weights do not fit the model"),
    "wrong shapes": (lambda m: _tamper(m, _wrong_shape), "weights do not fit the model"),
}


@pytest.mark.parametrize("case", list(MODEL_ERRORS))
def test_bad_model_files(plate, model, tmp_path, capsys, case):
    root, _ = plate
    MODEL_ERRORS[case][0](model)
    before = folder_hash(root)
    assert MODEL_ERRORS[case][1] in error_line(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN,
                                               "--out", tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists() and folder_hash(root) == before


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_a_code_payload(plate, tmp_path, capsys):
    root, _ = plate
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "napari-dcmix", "x": _Payload(tmp_path / "pwned")}))
    assert "not a napari-dcmix model" in error_line(capsys, "predict", evil, root, "--pattern", SIGNAL_PATTERN,
                                                    "--out", tmp_path / "p.csv")
    assert not (tmp_path / "pwned").exists()


def test_model_with_nan_tensors_is_refused(plate, model, tmp_path, capsys):
    root, _ = plate

    def poison(payload):
        key = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
        payload["state_dict"][key] = torch.full_like(payload["state_dict"][key], float("nan"))
    _tamper(model, poison)
    assert "non-finite" in error_line(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN,
                                      "--out", tmp_path / "p.csv")


def test_model_channels_do_not_match_the_plate(model, tmp_path, capsys):
    root = write_rxrx1(tmp_path / "rxrx1", plates=(1,), wells=("B02",), sites=1, channels=2)
    line = error_line(capsys, "predict", model, root, "--out", tmp_path / "p.csv")
    assert "ch0" in line and not (tmp_path / "p.csv").exists()


# --- outputs and devices ---------------------------------------------------------------------------------
def test_unwritable_output(plate, model, tmp_path, capsys, monkeypatch):
    root, _ = plate
    out_dir = tmp_path / "locked"
    out_dir.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(out_dir) else real(p, mode))
    assert "is not writable" in error_line(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN,
                                           "--out", out_dir / "p.csv")


def test_full_disk_while_writing_the_csv(plate, model, tmp_path, capsys, monkeypatch):
    root, _ = plate
    from napari_dcmix import _io

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(_io.os, "fsync", full)
    before = folder_hash(root)
    line = error_line(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--out", tmp_path / "p.csv")
    assert "No space left" in line
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith((".p.csv", "p.csv"))]  # no partial, no temp
    assert folder_hash(root) == before


def test_full_disk_while_writing_a_model(model, tmp_path, monkeypatch):
    from napari_dcmix import _io
    from napari_dcmix.errors import DcmixError

    trained = TrainedModel.load(model)
    monkeypatch.setattr(_io.os, "fsync", lambda _fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(DcmixError, match="No space left"):
        trained.save(tmp_path / "again.pt")
    assert not [p for p in tmp_path.iterdir() if "again" in p.name]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_where_there_is_none(plate, model, tmp_path, capsys):
    root, _ = plate
    assert "no CUDA GPU" in error_line(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN,
                                       "--out", tmp_path / "p.csv", "--device", "cuda")


# --- training on a plate with one bad file of each kind ------------------------------------------------
def test_train_names_each_bad_file_once_and_trains_on_the_rest(tmp_path, capsys, caplog):
    root, labels = write_signal_plate(tmp_path / "plate", wells_per_class=4, sites=2, size=32)
    (root / "B02_s1_ch1.tif").write_bytes(b"II*\x00" + bytes(range(7, 71)))
    (root / "C02_s1_ch0.tif").write_bytes(b"")
    _spoil_float(np.nan)(root / "D02_s1_ch2.tif")
    _spoil_stack(root / "E02_s2_ch0.tif")
    (root / "F02_s2_ch1.tif").unlink()
    tifffile.imwrite(root / "G02_s1_ch2.tif", np.ones((8, 8), np.uint16))
    before = folder_hash(root)
    out_model = tmp_path / "m.pt"
    code, out, err = run(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                         "phenotype", "--out", out_model, "--tile", 16, "--epochs", 1, "--batch-size", 8,
                         "--device", "cpu", "--json")
    assert code == 0, err
    warnings = warnings_of(err)
    for name in ("B02_s1_ch1.tif", "C02_s1_ch0.tif", "D02_s1_ch2.tif (channel ch2) has 16 NaN", "E02_s2_ch0.tif", "F02 s2 lacks ch1",
                 "G02 s1: channels have different shapes"):
        assert sum(name in w for w in warnings) == 1, (name, warnings)
    payload = json.loads(out)
    assert set(payload["skipped"]) == {"B02 s1", "C02 s1", "F02 s2", "G02 s1"}
    assert np.isfinite(list(payload["importance"].values())).all()
    assert not [r for r in caplog.records if r.name == "tifffile"]
    assert out_model.is_file() and folder_hash(root) == before


def test_non_finite_loss_stops_with_an_error(tmp_path, capsys, monkeypatch):
    root, labels = write_signal_plate(tmp_path / "plate", wells_per_class=3, sites=1, size=32)
    # as a diverging run (or extreme pixels) does: the network's output turns NaN from step 8 on
    forward, calls = ChannelClassifier.forward, []

    def diverging(self, x, *args, **kwargs):
        out = forward(self, x, *args, **kwargs)
        calls.append(1)
        return out * float("nan") if self.training and len(calls) > 8 else out
    monkeypatch.setattr(ChannelClassifier, "forward", diverging)
    line = error_line(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                      "phenotype", "--out", tmp_path / "m.pt", "--tile", 16, "--steps", 30, "--device", "cpu")
    assert "finite" in line or "nan" in line.lower()


def test_absurd_learning_rate_is_one_error_line(tmp_path, capsys):  # refused by the field spec's bounds
    root, labels = write_signal_plate(tmp_path / "plate", wells_per_class=3, sites=1, size=32)
    line = error_line(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                      "phenotype", "--out", tmp_path / "m.pt", "--tile", 16, "--steps", 5, "--lr", "1e38",
                      "--device", "cpu")
    assert "learning rate" in line or "lr" in line


def test_out_of_memory_halves_the_batch_with_a_notice(tmp_path, capsys, monkeypatch):
    root, labels = write_signal_plate(tmp_path / "plate", wells_per_class=3, sites=1, size=32)
    forward = ChannelClassifier.forward

    def tight(self, x, *args, **kwargs):
        if x.shape[0] > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, x, *args, **kwargs)
    monkeypatch.setattr(ChannelClassifier, "forward", tight)
    code, out, err = run(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                         "phenotype", "--out", tmp_path / "m.pt", "--tile", 16, "--steps", 5, "--batch-size", 16,
                         "--device", "cpu")
    assert code == 0 and "batch" in err and "halv" in err


def test_predict_when_no_site_can_be_read(plate, model, tmp_path, capsys):
    root, _ = plate
    for path in root.glob("*_ch0.tif"):
        path.write_bytes(b"")
    before = folder_hash(root)
    code, out, err = run(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--out", tmp_path / "p.csv")
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: no predictions to write")
    assert len([w for w in warnings_of(err) if "could not be read (it is empty" in w]) == 6  # each file named
    assert not (tmp_path / "p.csv").exists() and folder_hash(root) == before
