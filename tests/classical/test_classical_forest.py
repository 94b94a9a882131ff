"""The forest's answer on plates whose answer is known: the true channel on top, out of fold."""

import numpy as np
import pytest
from conftest import SIGNAL_PATTERN, write_phenotype_plate

from napari_dcmix.classical import explain_with_forest, well_features
from napari_dcmix.classical.forest import ALL_CLASSES
from napari_dcmix.errors import DcmixError
from napari_dcmix.plate import open_plate, read_labels




@pytest.fixture(scope="module")
def plate_and_labels(tmp_path_factory):
    root, csv = write_phenotype_plate(tmp_path_factory.mktemp("forest") / "plate", {"alpha": 1, "beta": 2},
                                      channels=3, wells_per_class=6, sites=2, size=32)
    plate = open_plate(root, SIGNAL_PATTERN)
    return plate, read_labels(csv, plate.sites, "phenotype").well_labels()


def test_each_phenotype_is_told_from_the_reference_by_its_own_channel(plate_and_labels):
    plate, labels = plate_and_labels
    answer = explain_with_forest(plate, labels, "negative", folds=3, seed=0, trees=100)
    assert [r.phenotype for r in answer.rows] == ["alpha", "beta", ALL_CLASSES]
    alpha, beta, everything = answer.rows
    assert alpha.top_channel == "ch1" and beta.top_channel == "ch2"
    assert alpha.accuracy >= 0.9 and beta.accuracy >= 0.9 and alpha.auc >= 0.9
    assert alpha.n_wells == 12 and everything.n_wells == 18
    for row in answer.rows:
        assert sum(row.shares.values()) == pytest.approx(1.0)
    assert set(answer.predictions) == set(labels) and everything.auc is None


def test_shuffled_labels_are_not_learned(plate_and_labels):
    plate, labels = plate_and_labels
    wells = sorted(labels)
    classes = np.random.default_rng(3).permutation([labels[w] for w in wells])
    shuffled = dict(zip(wells, classes))
    answer = explain_with_forest(plate, shuffled, "negative", folds=3, seed=0, trees=100)
    assert max(r.accuracy for r in answer.rows[:-1]) < 0.85  # near chance: nothing to learn


def test_each_plate_is_normalised_on_its_own(plate_and_labels):
    plate, labels = plate_and_labels
    table = well_features(plate, labels)
    assert table.values.shape == (18, 3 * 36)
    assert np.allclose(np.median(table.values, axis=0), 0.0, atol=1e-9)  # centred per plate


def test_a_missing_reference_says_what_to_do(plate_and_labels):
    plate, labels = plate_and_labels
    with pytest.raises(DcmixError, match="reference class 'DMSO'"):
        explain_with_forest(plate, labels, "DMSO")
