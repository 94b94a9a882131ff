"""The CLI when the disk fills up or fails while it writes (issue 22): ``train``'s model, ``predict``'s CSV,
plate map and montage, ``explain``'s matrix, panel and stains — one ``error: cannot write …`` line with
exit code 2, the previous file byte for byte, no temporary file, and (explain) every other output still
written. Faults are injected into the writes (``fault_injection``)."""

from __future__ import annotations

import pytest
import torch

from conftest import SIGNAL_PATTERN, write_phenotype_plate, write_signal_plate
from fault_injection import FAULTS, inject, previous_files, temporary_files
from napari_dcmix.cli import main
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import open_plate
from napari_dcmix.training import TrainedModel

pytestmark = pytest.mark.timeout(600)


def error_line(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err, err
    assert lines[-1].startswith("error: ") and not any(line.startswith("error") for line in lines[:-1]), err
    return lines[-1]


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-faults")
    root, labels = write_signal_plate(folder / "plate", wells_per_class=3, sites=1, size=32)
    torch.manual_seed(0)
    opened = open_plate(root, SIGNAL_PATTERN)
    model = folder / "model.pt"
    TrainedModel(ChannelClassifier("dcmix", 3, 2).eval(), opened.channels, ["negative", "positive"],
                 opened.channel_stats(), 16).save(model)
    return root, labels, model


@pytest.mark.parametrize("fault", FAULTS)
def test_train_on_a_full_disk_keeps_the_previous_model(plate, tmp_path, capsys, monkeypatch, fault):
    root, labels, _ = plate
    out = tmp_path / "m.pt"
    before = previous_files(out)
    reason = inject(monkeypatch, fault)
    line = error_line(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                      "phenotype", "--out", out, "--tile", 16, "--steps", 20, "--device", "cpu")
    assert f"cannot write {out}: {reason}" in line and "nothing was written there" in line
    assert out.read_bytes() == before[out] and temporary_files(tmp_path) == []


@pytest.mark.parametrize("fault", ["write", "write-mid", "replace"])
@pytest.mark.parametrize("output", ["--out", "--plate-map", "--montage"])
def test_predict_on_a_full_disk_keeps_the_previous_file(plate, tmp_path, capsys, monkeypatch, output, fault):
    root, _, model = plate
    paths = {"--out": tmp_path / "p.csv", "--plate-map": tmp_path / "map.png", "--montage": tmp_path / "top.png"}
    argv = ["predict", model, root, "--pattern", SIGNAL_PATTERN, "--out", paths["--out"]]
    if output != "--out":
        argv += [output, paths[output]]
    before = previous_files(*([paths["--out"], paths[output]] if output != "--out" else [paths["--out"]]))
    if output != "--out":  # the CSV goes first and is written; the figure fails
        from napari_dcmix import _io

        real = _io.atomic_write

        def figure_fails(path, *args, **kwargs):
            if str(path).endswith(".png"):
                inject(monkeypatch, fault)
            return real(path, *args, **kwargs)

        monkeypatch.setattr(_io, "atomic_write", figure_fails)
        reason = "No space left on device" if fault != "replace" else "Input/output error"
    else:
        reason = inject(monkeypatch, fault)
    line = error_line(capsys, *argv)
    assert f"cannot write {paths[output]}: {reason}" in line
    assert paths[output].read_bytes() == before[paths[output]] and temporary_files(tmp_path) == []
    if output != "--out":
        assert paths["--out"].read_bytes() != before[paths["--out"]]  # the CSV before it was written


def test_explain_writes_every_output_it_can_and_names_the_others(tmp_path, capsys, monkeypatch):
    """The matrix PNG cannot be written (a drive error at the rename): the panel (the trained models) and
    the matrix CSV are still written, the error names the PNG, the earlier PNG is kept."""
    from napari_dcmix import _io

    root, labels = write_phenotype_plate(tmp_path / "plate", {"ph_one": 1}, wells_per_class=4, sites=1)
    out = tmp_path / "results"
    out.mkdir()
    png = out / "importance_per_phenotype.png"
    before = previous_files(png, out / "phenotype_panel.pt", out / "importance_per_phenotype.csv")
    real = _io.atomic_write

    def png_fails(path, *args, **kwargs):
        if str(path).endswith(".png"):
            inject(monkeypatch, "replace")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(_io, "atomic_write", png_fails)
    line = error_line(capsys, "explain", root, "--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column",
                      "phenotype", "--tile", 16, "--steps", 20, "--folds", 2, "--no-all", "--out", out)
    assert f"cannot write {png}: Input/output error" in line and "check the disk" in line
    assert png.read_bytes() == before[png] and temporary_files(out) == []
    for written in (out / "phenotype_panel.pt", out / "importance_per_phenotype.csv"):
        assert written.read_bytes() != before[written]
    assert TrainedModel.load(out / "phenotype_panel.pt").classes == ["negative", "ph_one"]
