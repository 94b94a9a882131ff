"""Training and prediction on OME-Zarr plates (0.4 and 0.5) go through the same engine as files."""

import numpy as np
import pytest
from conftest import write_zarr_signal_plate

from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig, Trainer, predict_plate_rows


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
    rows = predict_plate_rows(trained, plate, device="cpu")
    assert [r["well"] for r in rows] == plate.wells()
    assert {r["prediction"] for r in rows} <= {"negative", "positive"}
