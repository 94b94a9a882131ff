"""Prediction at scale: tiles of several sites per forward pass, the CSV streamed and renamed at the end."""

import csv

import numpy as np
import pytest
import torch

from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.errors import DcmixError
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import open_plate
from napari_dcmix.training import TrainedModel, predict_sites, well_probabilities
from napari_dcmix.training import exports
from napari_dcmix.training.data import grid_tiles
from napari_dcmix.training.exports import pycytominer_rows, write_plate_predictions
from napari_dcmix.training.predictor import prediction_rows


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root, _ = write_signal_plate(tmp_path_factory.mktemp("pred") / "plate", wells_per_class=3, size=40)
    (next(root.glob("C02_s2_ch1.tif"))).write_bytes(b"")  # one unreadable site: skipped, never a row
    plate = open_plate(root, SIGNAL_PATTERN)
    torch.manual_seed(0)
    model = TrainedModel(ChannelClassifier("dcmix", 3, 2), plate.channels, ["negative", "positive"],
                         plate.channel_stats(), 16, {"normalization": "model"})
    return plate, model


def one_forward_per_site(trained, plate):
    """The previous predictor: the whole site normalised, its tiles, one forward, the mean softmax."""
    source = trained.site_source(plate)
    model = trained.model.eval()
    out = {}
    for key in plate.sites:
        site = source.get(key)
        if site is not None:
            with torch.no_grad():
                probs = torch.softmax(model(torch.from_numpy(grid_tiles(site, trained.tile))).float(), dim=1)
            out[key] = probs.mean(0).numpy().astype(np.float64)
    return out


@pytest.mark.parametrize("batch_size", [1, 5, 64, 1000])
def test_batches_across_sites_give_the_per_site_results(setup, batch_size):
    plate, model = setup
    expected = one_forward_per_site(model, plate)  # 9 tiles a site: batches of 5 split sites, 64 mixes 7
    preds = list(predict_sites(model, plate, batch_size=batch_size))
    assert [p.key for p in preds] == [k for k in plate.sites if k in expected] and len(preds) == len(plate.sites) - 1
    assert [p.done for p in preds] == [i + 1 for i, k in enumerate(plate.sites) if k in expected]
    for p in preds:
        np.testing.assert_allclose(p.probabilities, expected[p.key], atol=1e-5, rtol=0)
    assert preds[-1].total == len(plate.sites) and preds[-1].eta == 0


def test_closing_the_generator_stops_prediction(setup):
    plate, model = setup
    gen = predict_sites(model, plate, batch_size=4)
    first = [next(gen) for _ in range(3)]
    gen.close()
    assert [p.done for p in first] == [1, 2, 3]
    with pytest.raises(StopIteration):
        next(gen)


@pytest.mark.parametrize("fmt,per_site", [("csv", False), ("csv", True), ("pycytominer", False)])
def test_streamed_table_equals_the_rows_built_in_memory(setup, tmp_path, fmt, per_site):
    plate, model = setup
    site_probs = {p.key: p.probabilities for p in predict_sites(model, plate)}
    if fmt == "pycytominer":
        expected = pycytominer_rows(model.classes, site_probs, plate)
    else:
        results = site_probs if per_site else well_probabilities(site_probs)
        expected = prediction_rows(model.classes, results, with_plate=False)
    written = write_plate_predictions(model, plate, tmp_path / "p.csv", fmt=fmt, per_site=per_site)
    rows = list(csv.DictReader(open(tmp_path / "p.csv", newline="")))
    assert rows == [{k: str(v) for k, v in row.items()} for row in expected] and written.rows == len(expected)
    assert sum(written.counts.values()) == len(expected) and set(written.site_probabilities) == set(site_probs)
    assert len(rows) == (len(plate.sites) - 1 if per_site or fmt == "pycytominer" else len({(k.plate, k.well) for k in plate.sites}))
    assert exports.table_rows(model.classes, plate, site_probs, fmt, per_site) == expected  # the dock's table
    exports.write_table(tmp_path / "q.csv", model.classes, plate, exports.in_plate_order(plate, site_probs), fmt, per_site)
    assert (tmp_path / "q.csv").read_bytes() == (tmp_path / "p.csv").read_bytes()  # the dock's export


def test_rows_are_written_while_the_plate_is_still_being_predicted(setup, tmp_path, monkeypatch):
    plate, model = setup
    predicted, written_at = [], []
    real_write = exports.PredictionTable._write

    def spy(self, rows):
        written_at.append((len(predicted), len(rows)))
        real_write(self, rows)

    monkeypatch.setattr(exports.PredictionTable, "_write", spy)
    write_plate_predictions(model, plate, tmp_path / "p.csv", progress=predicted.append)
    # a well's row goes out when the next well's first site arrives, not once the whole plate is done
    assert written_at[0] == (3, 1) and len(written_at) == len({(k.plate, k.well) for k in plate.sites})
    assert [n for n, _ in written_at] == sorted(n for n, _ in written_at) and written_at[-2][0] < len(predicted)


def test_an_interrupted_prediction_leaves_no_file(setup, tmp_path):
    plate, model = setup
    (tmp_path / "old.csv").write_text("kept\n")

    def interrupt(pred):
        if pred.done == 5:
            raise KeyboardInterrupt

    for name in ("new.csv", "old.csv"):
        with pytest.raises(KeyboardInterrupt):
            write_plate_predictions(model, plate, tmp_path / name, progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"] and (tmp_path / "old.csv").read_text() == "kept\n"


def test_never_written_inside_the_plate_folder(setup):
    plate, model = setup
    with pytest.raises(DcmixError, match="inside the plate folder"):
        write_plate_predictions(model, plate, plate.root / "p.csv")
    assert not list(plate.root.glob("*p.csv*"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_train_and_predict_on_cuda(tmp_path):
    from napari_dcmix.plate import read_labels
    from napari_dcmix.training import TrainConfig, Trainer

    root, labels_csv = write_signal_plate(tmp_path / "plate", signal_channel=1)
    plate = open_plate(root, SIGNAL_PATTERN)
    labels = read_labels(labels_csv, plate.sites, "phenotype")
    config = TrainConfig(steps=30, eval_every=10, tile=16, batch_size=16, coverage=2, seed=0, device="cuda")
    trained = Trainer(plate, labels.site_labels, config).fit()
    assert trained.metadata["steps"] == 30
    on_gpu = {p.key: p.probabilities for p in predict_sites(trained, plate, device="cuda", batch_size=32)}
    on_cpu = {p.key: p.probabilities for p in predict_sites(trained, plate, device="cpu")}
    assert on_gpu.keys() == on_cpu.keys() == set(plate.sites)
    for key in on_cpu:
        np.testing.assert_allclose(on_gpu[key], on_cpu[key], atol=1e-4)
