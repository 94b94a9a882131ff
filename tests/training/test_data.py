"""Training data: splits by well, k-fold wells, and per-plate normalisation of multi-plate folders."""

import imageio.v3 as iio
import numpy as np

from conftest import write_rxrx1
from napari_dcmix.plate import SiteKey, open_plate
from napari_dcmix.training.data import SiteSource, split_wells, well_folds


def _labels(n_wells: int, classes=("a", "b")) -> dict:
    return {SiteKey("", f"B{i + 2:02d}", s): classes[i % len(classes)] for i in range(n_wells) for s in (1, 2)}


def test_folds_hold_every_well_once_and_are_stratified():
    labels = _labels(12)
    folds = well_folds(labels, 3, seed=0)
    wells = [w for fold in folds for w in fold]
    assert len(wells) == len(set(wells)) == 12
    for fold in folds:
        assert {labels[SiteKey(p, w, 1)] for p, w in fold} == {"a", "b"}


def test_a_class_of_two_wells_gets_no_test_well_but_still_trains():
    labels = {**_labels(10), SiteKey("", "H01", 1): "rare", SiteKey("", "H02", 1): "rare"}
    train, val, test = split_wells(labels, 0.2, 0.2, seed=0)
    assert "rare" not in {labels[k] for k in test} and "rare" in {labels[k] for k in train}


def test_each_plate_of_a_folder_is_normalised_on_its_own(tmp_path):
    root = write_rxrx1(tmp_path / "rxrx1", plates=(1, 2))
    for path in (root / "HUVEC-01" / "Plate2").glob("*.png"):  # plate 2 imaged twice as bright
        iio.imwrite(path, np.clip(iio.imread(path).astype(int) * 2, 0, 255).astype(np.uint8))
    plate = open_plate(root)
    source = SiteSource(plate, "plate")
    one, two = (next(k for k in plate.sites if k.plate == p) for p in plate.plates)
    assert not np.allclose(source.stats_for(one.plate).high, source.stats_for(two.plate).high)
    shared = SiteSource(plate, plate.channel_stats())
    # per plate, the bright plate's sites land in the same range as the dim plate's
    per_plate = [np.median(source.get(k)) for k in (one, two)]
    pooled = [np.median(shared.get(k)) for k in (one, two)]
    assert abs(per_plate[0] - per_plate[1]) < abs(pooled[0] - pooled[1])
