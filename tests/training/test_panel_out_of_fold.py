"""The phenotype panel's held-out figures are out of fold: a well is scored only by models that never
trained or validated on it; explain builds the panel, which predicts like any model."""

import numpy as np
import pytest

from conftest import SIGNAL_PATTERN, constant_member, write_phenotype_plate
from napari_dcmix.errors import DcmixError
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig, TrainedModel, predict_sites, well_probabilities
from napari_dcmix.training.explain import ExplainConfig, Explainer
from napari_dcmix.training.panel import PanelMember, build_panel, held_out_members, phenotype_z_primes
from napari_dcmix.training.trainer import reference_stats

TINY = TrainConfig(steps=80, eval_every=20, patience=100, tile=16, batch_size=16, coverage=2, device="cpu", seed=0)


@pytest.fixture(scope="module")
def two_phenotypes(tmp_path_factory):
    root, csv_path = write_phenotype_plate(tmp_path_factory.mktemp("panel") / "plate", {"alpha_up": 1, "beta_up": 2},
                                           wells_per_class=4, size=16)
    plate = open_plate(root, SIGNAL_PATTERN)
    return plate, read_labels(csv_path, plate.sites, "phenotype").site_labels


def member(plate, phenotype: str, log_odds: float, seen: set) -> PanelMember:
    trained = TrainedModel(constant_member(log_odds), list(plate.channels), ["negative", phenotype],
                           reference_stats(plate), 16, {"normalization": "plate"})
    return PanelMember(phenotype, trained, frozenset(seen))


def test_held_out_members_are_the_ones_that_never_saw_the_well():
    members = [PanelMember("a", None, frozenset({("", "B02")})), PanelMember("a", None, frozenset({("", "C02")})),
               PanelMember("b", None, frozenset({("", "B02"), ("", "C02")}))]
    assert held_out_members(("", "B02"), members, "a") == [1]
    assert held_out_members(("", "D02"), members, "a") == [0, 1]
    assert held_out_members(("", "B02"), members, "b") == []


def test_out_of_fold_scores_use_only_models_that_never_saw_the_well(two_phenotypes):
    plate, site_labels = two_phenotypes
    wells = sorted({(k.plate, k.well) for k in site_labels})
    first, second = set(wells[::2]), set(wells[1::2])
    # a model that saw a well calls it sure alpha_up (+20); the one that held it out calls it reference (-20)
    members = [member(plate, "alpha_up", 20.0, first), member(plate, "alpha_up", -20.0, second),
               member(plate, "beta_up", -20.0, first), member(plate, "beta_up", -20.0, second)]
    classes = ["alpha_up", "beta_up", "negative"]
    panel, oof = build_panel(members, classes, "negative", plate, site_labels)
    for well in first:  # held out only by the second alpha_up model: P(alpha_up) ~ 0, never the ~1 of the first
        assert oof[well][1][0] < 1e-6
    for well in second:
        assert oof[well][1][0] > 1 - 1e-6
    # the deployed panel averages every member: log odds 0 for alpha_up against the reference
    probs = well_probabilities(list(predict_sites(panel, plate)))
    np.testing.assert_allclose(probs[wells[0]][[0, 2]], [0.5, 0.5], atol=1e-6)
    assert panel.metadata["verdict"]["n_wells"] == len(wells) and set(panel.metadata["z_prime"]) == {"alpha_up",
                                                                                                       "beta_up"}

    summary = panel.summary()  # what Apply shows before predicting
    assert summary.startswith("dcmix-panel model") and "held-out test accuracy" in summary
    assert "held-out Z′: alpha_up" in summary and "NOT LEARNED" in summary  # half the wells called wrong


def test_a_well_no_model_held_out_is_an_error_not_an_in_sample_score(two_phenotypes):
    plate, site_labels = two_phenotypes
    wells = {(k.plate, k.well) for k in site_labels}
    members = [member(plate, "alpha_up", 1.0, wells), member(plate, "beta_up", 1.0, set())]
    with pytest.raises(DcmixError, match="no held-out alpha_up model"):
        build_panel(members, ["alpha_up", "beta_up", "negative"], "negative", plate, site_labels)


def test_z_prime_per_phenotype_against_the_reference():
    oof = {("", f"W{i}"): (label, np.array(p)) for i, (label, p) in enumerate(
        [(0, [0.9, 0.1]), (0, [0.8, 0.2]), (1, [0.1, 0.9]), (1, [0.2, 0.8])])}
    z = phenotype_z_primes(oof, ["hit", "neg"], "neg")
    assert z["hit"] == pytest.approx(1 - 3 * (2 * np.std([0.9, 0.8], ddof=1)) / 0.7)
    assert phenotype_z_primes({("", "A"): (0, np.array([1.0, 0.0]))}, ["hit", "neg"], "neg") == {"hit": None}


def test_explain_yields_a_panel_that_predicts_its_out_of_fold_figures(two_phenotypes):
    plate, site_labels = two_phenotypes
    explainer = Explainer(plate, site_labels, ExplainConfig(folds=2, include_all=False, train=TINY))
    kinds = [event.kind for event in explainer.run()]
    assert "panel" in kinds and kinds[-1] == "done"
    panel = explainer.panel
    assert panel.kind == "dcmix-panel" and panel.classes == ["alpha_up", "beta_up", "negative"]
    assert panel.metadata["members"] == 2 and len(explainer.panel_oof) == len({(k.plate, k.well) for k in site_labels})
    assert panel.metadata["test_accuracy"] == pytest.approx(np.mean(
        [p.argmax() == label for label, p in explainer.panel_oof.values()]))
    assert panel.alpha_matrix().shape == (2, 3)  # one blend per phenotype, for composites
    assert np.argmax(panel.alpha_matrix()[0]) == 1 and np.argmax(panel.alpha_matrix()[1]) == 2


def test_a_panel_cannot_be_fine_tuned(two_phenotypes):
    from napari_dcmix.training import Trainer

    plate, site_labels = two_phenotypes
    wells = sorted({(k.plate, k.well) for k in site_labels})
    members = [member(plate, "alpha_up", 1.0, set(wells[::2])), member(plate, "alpha_up", 1.0, set(wells[1::2])),
               member(plate, "beta_up", 1.0, set())]
    panel, _ = build_panel(members, ["alpha_up", "beta_up", "negative"], "negative", plate, site_labels)
    with pytest.raises(DcmixError, match="cannot fine-tune a dcmix-panel model"):
        Trainer(plate, site_labels, TINY, init=panel)
