"""Training and prediction on OME-Zarr plates (0.4 and 0.5) go through the same engine as files."""

import csv

import numpy as np
import pytest
from conftest import write_zarr_signal_plate

from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig, Trainer
from napari_dcmix.training.exports import write_plate_predictions


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_train_and_predict_on_a_zarr_plate(tmp_path, version):
    root, csv_path = write_zarr_signal_plate(tmp_path / f"signal{version}.zarr", version)
    plate = open_plate(root)
    labels = read_labels(csv_path, plate.sites, "phenotype")
    assert len(labels.site_labels) == 24  # 12 wells × 2 fields
    trained = Trainer(plate, labels.site_labels, TrainConfig(epochs=3, tile=16, batch_size=16, coverage=2,
                                                               seed=0, device="cpu")).fit()
    assert trained.channels == ["DNA", "ER", "Mito"]
    assert np.isclose(sum(trained.importance().values()), 1.0)
    written = write_plate_predictions(trained, plate, tmp_path / "predictions.csv", device="cpu")
    rows = list(csv.DictReader(open(tmp_path / "predictions.csv", newline="")))
    assert written.rows == len(rows)
    assert [r["well"] for r in rows] == plate.wells()
    assert {r["prediction"] for r in rows} <= {"negative", "positive"}
