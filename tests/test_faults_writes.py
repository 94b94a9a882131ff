"""A full disk or a failing drive while any output is written (issue 22, faults during long runs): every
writer of the core — model, predictions CSV (streamed), labels CSV, α CSV, matrix CSV+PNG, stains CSV+PNG,
plate map, montage — fails with one DcmixError naming the file and the reason, leaves the previous file
byte for byte, and leaves no temporary file. The faults are injected into the writes
(``fault_injection``), never by filling a real disk."""

from __future__ import annotations

import errno

import pytest
import torch

from conftest import SIGNAL_PATTERN, write_signal_plate
from fault_injection import FAULTS, digest, inject, previous_files, temporary_files
from napari_dcmix._io import atomic_write, atomic_write_bytes
from napari_dcmix.errors import DcmixError
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import open_plate
from napari_dcmix.training import TrainedModel, predict_sites, well_probabilities


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    root, _ = write_signal_plate(tmp_path_factory.mktemp("faults") / "plate", wells_per_class=3, size=32)
    plate = open_plate(root, SIGNAL_PATTERN)
    torch.manual_seed(0)
    model = TrainedModel(ChannelClassifier("dcmix", 3, 2).eval(), plate.channels, ["negative", "positive"],
                         plate.channel_stats(), 16, {"normalization": "model"})
    site_probs = {p.key: p.probabilities for p in predict_sites(model, plate)}
    return plate, model, site_probs


def _matrix(model):
    from napari_dcmix.training.explain import PhenotypeMatrix, PhenotypeRow
    from napari_dcmix.training.gate import Verdict

    verdict = Verdict(True, 0.9, 0.5, 0.01, 0.95, 12, "11 of 12 held-out wells right")
    row = PhenotypeRow("positive", model.importance(), {c: 0.0 for c in model.channels}, verdict,
                       model.alpha_matrix().tolist(), 1)
    return PhenotypeMatrix("negative", list(model.channels), [row], stats=model.stats)


def _stains(model):
    from napari_dcmix.training.stain_figures import PanelStep, PhenotypeStains, SubsetFigures
    from napari_dcmix.training.stains import StainsAnswer

    def figures(channels, accuracy):
        return SubsetFigures(tuple(channels), accuracy, accuracy, accuracy > 0.7, 0.01, 12, [accuracy] * 3,
                             [accuracy] * 3)

    channels = list(model.channels)
    stains = PhenotypeStains("positive", dict(model.importance()), figures(channels, 0.95),
                             alone={c: figures([c], 0.6 + 0.1 * i) for i, c in enumerate(channels)},
                             without={c: figures([o for o in channels if o != c], 0.9) for c in channels},
                             curve=[PanelStep(tuple(channels[-1:]), figures(channels[-1:], 0.93), None),
                                    PanelStep(tuple(channels), figures(channels, 0.95), None)],
                             smallest_panel=channels[-1:], panel_reason="as good as all stains")
    return StainsAnswer("negative", channels, [], {"positive": stains}, channels[-1:], complete=True, runs=7)


def _writers(plate, model, site_probs, folder):
    """Each writer of the core: name -> (the files it writes, a call that writes them)."""
    from napari_dcmix.figures.montage import save_montage
    from napari_dcmix.figures.plate_map import save_plate_maps
    from napari_dcmix.plate.labels import write_labels
    from napari_dcmix.training.exports import in_plate_order, write_table
    from napari_dcmix.training.matrix_figure import save_matrix
    from napari_dcmix.training.snapshot import ImportanceSnapshot, write_importance_csv
    from napari_dcmix.training.stains_figure import save_stains

    f = folder
    wells = well_probabilities(site_probs)
    labels = {well: "negative control" if i % 2 else "phenotype" for i, (_, well) in enumerate(plate.well_keys())}
    return {
        "model": ([f / "m.pt"], lambda: model.save(f / "m.pt")),
        "predictions CSV": ([f / "p.csv"], lambda: write_table(f / "p.csv", model.classes, plate,
                                                               in_plate_order(plate, site_probs))),
        "predictions per site": ([f / "s.csv"], lambda: write_table(f / "s.csv", model.classes, plate,
                                                                    in_plate_order(plate, site_probs), per_site=True)),
        "labels CSV": ([f / "l.csv"], lambda: write_labels(f / "l.csv", {("", w): c for w, c in labels.items()}, "class")),
        "α CSV": ([f / "a.csv"], lambda: write_importance_csv(f / "a.csv",
                                                              ImportanceSnapshot.of_model(model).csv_rows())),
        "matrix CSV": ([f / "m.csv"], lambda: save_matrix(_matrix(model), f / "m.csv", None)),
        "matrix PNG": ([f / "m.png"], lambda: save_matrix(_matrix(model), None, f / "m.png")),
        "stains CSV": ([f / "st.csv"], lambda: save_stains(_stains(model), f / "st.csv", None)),
        "stains PNG": ([f / "st.png"], lambda: save_stains(_stains(model), None, f / "st.png")),
        "plate map": ([f / "map.png"], lambda: save_plate_maps(f / "map.png", plate, wells, model.classes)),
        "montage": ([f / "top.png"], lambda: save_montage(f / "top.png", plate, site_probs, model.classes, k=2)),
    }


WRITERS = ["model", "predictions CSV", "predictions per site", "labels CSV", "α CSV", "matrix CSV", "matrix PNG",
           "stains CSV", "stains PNG", "plate map", "montage"]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("writer", WRITERS)
def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary_file(predicted, tmp_path, monkeypatch,
                                                                             writer, fault):
    plate, model, site_probs = predicted
    paths, write = _writers(plate, model, site_probs, tmp_path)[writer]
    write()  # it works without a fault, and what it writes differs from the earlier version below
    written = {p: p.read_bytes() for p in paths}
    before = previous_files(*paths)
    assert all(written[p] != before[p] for p in paths)
    reason = inject(monkeypatch, fault)
    with pytest.raises(DcmixError) as err:
        write()
    message = str(err.value)
    assert message.startswith("cannot write ") and reason in message and str(paths[0]) in message
    assert "nothing was written there" in message and ("free some space" in message or "check the disk" in message)
    assert {p: p.read_bytes() for p in paths} == before  # byte for byte
    assert temporary_files(tmp_path) == []
    monkeypatch.undo()
    write()  # the disk has room again: the same call writes the file
    assert {p: p.read_bytes() for p in paths} != before and temporary_files(tmp_path) == []


@pytest.mark.parametrize("budget", [100, 4096, 40_000, 300_000])
def test_a_model_file_cut_anywhere_by_a_full_disk_is_one_clear_error(predicted, tmp_path, monkeypatch, budget):
    """torch.save reports a write that fails mid-file as a RuntimeError about a file position: the atomic
    writer still sees the write fail, so it is the same one-line error, never a traceback."""
    _, model, _ = predicted
    before = previous_files(tmp_path / "m.pt")
    inject(monkeypatch, "write-mid", budget=budget)
    with pytest.raises(DcmixError, match="No space left on device"):
        model.save(tmp_path / "m.pt")
    assert {tmp_path / "m.pt": (tmp_path / "m.pt").read_bytes()} == before and temporary_files(tmp_path) == []


def test_a_writer_that_swallows_a_failed_write_still_renames_nothing(tmp_path, monkeypatch):
    before = previous_files(tmp_path / "x.bin")
    inject(monkeypatch, "write")
    with pytest.raises(DcmixError, match="No space left"):
        with atomic_write(tmp_path / "x.bin", "wb") as handle:
            try:
                handle.write(b"x" * 10_000)
                handle.flush()
            except OSError:
                pass  # a careless library going on as if the bytes were written
    assert (tmp_path / "x.bin").read_bytes() == before[tmp_path / "x.bin"] and temporary_files(tmp_path) == []


@pytest.mark.parametrize("code,advice", [(errno.EACCES, "choose a folder you can write to"),
                                         (errno.EROFS, "choose a folder you can write to"),
                                         (errno.EDQUOT, "free some space"), (errno.EIO, "check the disk")])
def test_the_error_says_what_to_do_for_each_cause(tmp_path, monkeypatch, code, advice):
    from napari_dcmix import _io

    def fail(*_args, **_kwargs):
        raise OSError(code, errno.errorcode[code])

    monkeypatch.setattr(_io.tempfile, "mkstemp", fail)  # the temporary file cannot even be made
    with pytest.raises(DcmixError, match=advice):
        atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert not (tmp_path / "x.bin").exists()


def test_an_interrupt_while_writing_is_not_turned_into_a_write_error(tmp_path, monkeypatch):
    inject(monkeypatch, "write")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "x.txt") as handle:
            try:
                handle.write("x" * 10_000)
                handle.flush()
            except OSError:
                pass
            raise KeyboardInterrupt
    assert sorted(digest(tmp_path)) == []


def test_predictions_streamed_into_a_full_disk_leave_nothing(predicted, tmp_path, monkeypatch):
    """``write_plate_predictions`` streams rows while predicting: the disk filling up mid-plate stops it
    with the error, and neither the CSV nor a temporary file is left."""
    from napari_dcmix.training.exports import write_plate_predictions

    plate, model, _ = predicted
    before = previous_files(tmp_path / "p.csv")
    inject(monkeypatch, "write-mid")
    with pytest.raises(DcmixError, match="No space left"):
        write_plate_predictions(model, plate, tmp_path / "p.csv")
    assert {tmp_path / "p.csv": (tmp_path / "p.csv").read_bytes()} == before and temporary_files(tmp_path) == []
