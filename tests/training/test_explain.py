import numpy as np
import pytest

from conftest import SIGNAL_PATTERN, stop_after_first_fold, write_phenotype_plate
from napari_dcmix.errors import DcmixError
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig
from napari_dcmix.training.explain import ALL_PHENOTYPES, ExplainConfig, Explainer, guess_reference

TINY = TrainConfig(steps=80, eval_every=20, patience=100, tile=16, batch_size=16, coverage=2, device="cpu", seed=0)


@pytest.fixture(scope="module")
def two_phenotypes(tmp_path_factory):
    root, csv_path = write_phenotype_plate(tmp_path_factory.mktemp("ph") / "plate", {"alpha_up": 1, "beta_up": 2})
    plate = open_plate(root, SIGNAL_PATTERN)
    return plate, read_labels(csv_path, plate.sites, "phenotype")


@pytest.fixture(scope="module")
def matrix(two_phenotypes):
    plate, labels = two_phenotypes
    return Explainer(plate, labels.site_labels, ExplainConfig(train=TINY)).fit()


@pytest.mark.parametrize("classes, expected", [
    (["negative_control", "mito", "er"], "negative_control"),
    (["DMSO", "compound_A"], "DMSO"),
    (["untreated", "treated"], "untreated"),
    (["NT", "siRNA_PLK1"], "NT"),
    (["non-targeting", "KO"], "non-targeting"),
    (["mock", "infected"], "mock"),
    (["positive_control", "negative_control", "hit"], "negative_control"),
])
def test_reference_is_guessed_from_control_names(classes, expected):
    assert guess_reference(classes) == expected


@pytest.mark.parametrize("classes", [["a", "b"], ["DMSO", "untreated", "x"]])
def test_reference_that_cannot_be_guessed_says_what_to_do(classes):
    with pytest.raises(DcmixError, match="choose the reference class"):
        guess_reference(classes)


def test_each_phenotype_gets_its_own_channel(matrix):
    assert matrix.reference == "negative" and matrix.complete
    assert [r.phenotype for r in matrix.rows] == ["alpha_up", "beta_up", ALL_PHENOTYPES]
    assert matrix.row("alpha_up").top_channel == "ch1"
    assert matrix.row("beta_up").top_channel == "ch2"
    for name in ("alpha_up", "beta_up"):
        row = matrix.row(name)
        assert row.learned and row.verdict.accuracy >= 0.9 and row.repeats == 3
        assert row.verdict.n_wells == 12  # out of fold: every well of the pair judged once
        assert sum(row.importance.values()) == pytest.approx(1.0)
        assert set(row.spread) == {"ch0", "ch1", "ch2"}


def test_json_has_the_documented_shape(matrix):
    payload = matrix.to_dict()
    assert payload["reference"] == "negative" and payload["channels"] == ["ch0", "ch1", "ch2"]
    row = payload["phenotypes"]["alpha_up"]
    assert {"importance", "spread", "val_accuracy", "auc", "learned"} <= set(row)
    assert isinstance(row["learned"], bool)


def test_shuffled_labels_are_flagged_not_learned(two_phenotypes):
    plate, labels = two_phenotypes
    wells = sorted({(k.plate, k.well) for k in labels.site_labels})
    rng = np.random.default_rng(3)
    names = ["negative", "noise"] * (len(wells) // 2)
    shuffled = {w: str(c) for w, c in zip(wells, rng.permutation(names))}
    result = Explainer(plate, shuffled, ExplainConfig(train=TINY, include_all=False)).fit()
    assert not result.row("noise").learned


def test_closing_keeps_the_finished_rows(two_phenotypes, two_fold_threads):
    plate, labels = two_phenotypes
    explainer = Explainer(plate, labels.site_labels, ExplainConfig(train=TINY))
    result = stop_after_first_fold(explainer)
    assert [r.phenotype for r in result.rows] == ["alpha_up", "beta_up", ALL_PHENOTYPES] and not result.complete
    kept = result.rows[0].repeats  # the first fold, and the one beside it if that had finished too
    assert kept in (1, 2) and all(r.partial and r.repeats == kept for r in result.rows)  # marked partial


def test_same_seed_same_alpha(two_phenotypes):
    plate, labels = two_phenotypes
    cfg = ExplainConfig(train=TrainConfig(**{**TINY.__dict__, "steps": 30}), include_all=False, folds=2)
    a = Explainer(plate, labels.site_labels, cfg).fit()
    b = Explainer(plate, labels.site_labels, cfg).fit()
    assert a.row("alpha_up").importance == b.row("alpha_up").importance
