"""Which stains can be dropped: each channel alone, without it, the smallest panel per phenotype and for
the plate, α's agreement with the retraining and the forest's second opinion - on a plate whose answer
is known (a_up lives in ch1, b_up in ch2, ch0 carries nothing)."""

import json
import math

import numpy as np
import pytest
import torch

from conftest import SIGNAL_PATTERN, write_phenotype_plate
from napari_dcmix.errors import DcmixError
from napari_dcmix.model.coupled import CoupledClassifier
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig, Trainer
from napari_dcmix.training.explain import ExplainConfig, Explainer
from napari_dcmix.training.stain_figures import SubsetFigures, compare, paired_worse_p, spearman
from napari_dcmix.training.stains import StainsConfig, StainSearch
from napari_dcmix.training.stains_figure import stains_png, stains_rows

TINY = TrainConfig(steps=200, eval_every=25, patience=100, tile=16, batch_size=16, coverage=2, device="cpu", seed=0)


@pytest.fixture(scope="module")
def two_phenotypes(tmp_path_factory):
    root, csv_path = write_phenotype_plate(tmp_path_factory.mktemp("stains") / "plate", {"a_up": 1, "b_up": 2},
                                           channels=3, wells_per_class=6)
    plate = open_plate(root, SIGNAL_PATTERN)
    return plate, read_labels(csv_path, plate.sites, "phenotype").site_labels


def _config(**kw) -> StainsConfig:
    return StainsConfig(explain=ExplainConfig(reference="negative", train=TINY), **kw)


@pytest.fixture(scope="module")
def searched(two_phenotypes):
    plate, labels = two_phenotypes
    search = StainSearch(plate, labels, _config())
    events = list(search.run())
    return search, events


def test_each_stain_alone_learns_only_where_its_phenotype_lives(searched):
    answer = searched[0].result
    a, b = answer.phenotypes["a_up"], answer.phenotypes["b_up"]
    assert a.alone["ch1"].learned and a.alone["ch1"].accuracy >= 0.9
    assert not a.alone["ch0"].learned and not a.alone["ch2"].learned  # greyed: no number is an answer
    assert b.alone["ch2"].learned and not b.alone["ch1"].learned and not b.alone["ch0"].learned


def test_without_its_stain_a_phenotype_is_lost_and_only_that_stain_is_needed(searched):
    a = searched[0].result.phenotypes["a_up"]
    assert not a.without["ch1"].learned  # that stain cannot be dropped: the answer itself
    assert a.without["ch0"].learned and a.without["ch2"].learned
    assert a.needed() == {"ch0": False, "ch1": True, "ch2": False}


def test_the_smallest_panel_is_the_true_stain_and_the_plate_needs_both(searched):
    answer = searched[0].result
    assert answer.complete
    assert answer.phenotypes["a_up"].smallest_panel == ["ch1"]
    assert answer.phenotypes["b_up"].smallest_panel == ["ch2"]
    assert answer.plate_panel == ["ch1", "ch2"]
    curve = answer.phenotypes["a_up"].curve  # size 1 (ch1), then all channels for reference
    assert [len(step.channels) for step in curve] == [1, 3]
    assert curve[0].comparison.not_worse and curve[0].figures.accuracy >= curve[1].figures.accuracy - 0.02


def test_alpha_agrees_with_the_retraining_and_the_forest_gives_a_second_opinion(searched):
    a = searched[0].result.phenotypes["a_up"]
    assert a.agreement.alone is not None and a.agreement.alone > 0.4
    assert a.agreement.warning is None  # α's top channel (ch1) is the best alone and nothing α drops is needed
    second = a.second_opinion
    assert second.learned and max(second.shares, key=second.shares.get) == "ch1" and second.warning is None


def test_runs_are_reused_and_empty_channels_stop_at_chance(searched):
    search, events = searched
    answer = search.result
    # all channels, 3 alone, 3 without; the panels reuse the alone runs (each run probes its own stains first)
    assert answer.runs == 7 and events[-1].runs_total == 7
    assert answer.chance_stops >= 3  # ch0 alone (3 folds) never leaves chance: stopped at half the budget
    assert [e.kind for e in events].count("figures") == 3 + 3 + 2


def test_the_json_and_the_csv_hold_every_figure(searched, tmp_path):
    answer = searched[0].result
    payload = json.loads(json.dumps(answer.to_dict()))
    row = payload["stains"]["a_up"]
    assert set(row) >= {"alone", "without", "smallest_panel", "curve", "agreement", "second_opinion"}
    assert set(row["alone"]["ch1"]) >= {"accuracy", "auc", "spread", "learned"}
    assert row["curve"][0][0] == 1 and len(row["curve"][0]) == 4
    assert set(row["agreement"]) == {"alone", "without", "warning"}
    assert set(row["second_opinion"]) >= {"accuracy", "auc", "shares", "warning"}
    assert payload["plate_panel"] == ["ch1", "ch2"]
    rows = stains_rows(answer)
    assert len(rows) == 2 * 3 and {r["needed"] for r in rows if r["phenotype"] == "a_up" and r["channel"] == "ch1"} == {True}
    assert stains_png(answer)[:8] == b"\x89PNG\r\n\x1a\n"


def test_kept_stains_are_in_every_panel(two_phenotypes):
    plate, labels = two_phenotypes
    search = StainSearch(plate, labels, _config(keep=["ch0"], second_opinion=False))
    for _ in search.run():
        pass
    answer = search.result
    assert answer.phenotypes["a_up"].smallest_panel == ["ch0", "ch1"]  # ch0 alone learns nothing: + ch1
    assert answer.plate_panel == ["ch0", "ch1", "ch2"]


def test_a_finished_explain_is_reused_as_the_all_channels_run(two_phenotypes):
    plate, labels = two_phenotypes
    config = _config(second_opinion=False)
    explainer = Explainer(plate, labels, config.explain)
    explainer.fit()
    search = StainSearch(plate, labels, config, full=explainer)
    assert search.full is explainer
    other = Explainer(plate, labels, ExplainConfig(reference="negative", folds=2, train=TINY))
    assert not search.reuse(other)  # other folds: its figures would not pair fold by fold


def test_stop_keeps_the_runs_that_finished(two_phenotypes):
    plate, labels = two_phenotypes
    search = StainSearch(plate, labels, _config(second_opinion=False))
    run = search.run()
    for event in run:
        if event.kind == "figures":  # the first alone run is done
            break
    run.close()
    answer = search.result
    assert not answer.complete and answer.plate_panel is None
    assert set(answer.phenotypes["a_up"].alone) == {"ch0"} and not answer.phenotypes["a_up"].without


def test_bad_requests_are_refused_before_any_training(two_phenotypes, tmp_path):
    plate, labels = two_phenotypes
    with pytest.raises(DcmixError, match="--keep names DNA, not a channel"):
        StainSearch(plate, labels, _config(keep=["DNA"]))
    root, csv_path = write_phenotype_plate(tmp_path / "one", {"up": 0}, channels=1, wells_per_class=4)
    single = open_plate(root, SIGNAL_PATTERN)
    with pytest.raises(DcmixError, match="one channel: there is no stain to drop"):
        StainSearch(single, read_labels(csv_path, single.sites, "phenotype").site_labels, _config())


def test_a_model_trained_without_a_stain_never_sees_it(two_phenotypes):
    """The dropped channel is absent from the input (not zeroed): the model has two input channels
    and the pixels it is given are the other two channels' own."""
    plate, labels = two_phenotypes
    trainer = Trainer(plate, labels, TrainConfig(steps=5, eval_every=5, tile=16, batch_size=8, device="cpu",
                                                 input_channels=["ch0", "ch2"]))
    trainer.fit()
    assert trainer.result.channels == ["ch0", "ch2"] and trainer.model.mixing.n_channels == 2
    key = plate.sites[0]
    np.testing.assert_array_equal(trainer.source.raw(key), plate.read_site(key)[[0, 2]])
    with pytest.raises(DcmixError, match="channel\\(s\\) DNA not on the plate"):
        Trainer(plate, labels, TrainConfig(steps=5, device="cpu", input_channels=["DNA"]))


def test_a_run_that_never_leaves_chance_stops_at_half_its_budget(two_phenotypes):
    plate, labels = two_phenotypes
    cfg = TrainConfig(steps=200, eval_every=25, patience=100, tile=16, batch_size=16, coverage=2, device="cpu",
                      input_channels=["ch0"], chance_stop=0.5, classes=["a_up", "negative"])
    trainer = Trainer(plate, labels, cfg)
    trainer.fit()
    assert trainer.stopped_at_chance and trainer.result.metadata["steps"] == 100
    assert not trainer.verdict.learned


def test_one_channel_coupled_model_runs_its_tower_once_with_the_same_answer():
    torch.manual_seed(0)
    model = CoupledClassifier(1, 3, 0).eval()
    x = torch.randn(4, 1, 16, 16)
    shared = model.log_odds(x)
    features = model.backbone(model.mixing(x).reshape(8, 1, 16, 16)).view(4, 2, -1)  # the general path
    general = (features * model.head_weight).sum(-1) + model.head_bias
    torch.testing.assert_close(shared, general)


def _figures(fold_accuracy, accuracy=None, learned=True, auc=1.0):
    accuracy = float(np.mean(fold_accuracy)) if accuracy is None else accuracy
    return SubsetFigures(("c",), accuracy, auc, learned, 0.001, 60, list(fold_accuracy), [auc] * len(fold_accuracy))


def test_not_worse_is_a_paired_test_and_the_margins():
    full = _figures([1.0, 1.0, 0.9])
    assert compare(_figures([1.0, 1.0, 0.9]), full).not_worse
    assert compare(_figures([1.0, 0.99, 0.9], accuracy=0.985), full).not_worse  # 0.015 lost: within 0.02
    assert not compare(_figures([0.9, 0.9, 0.8]), full).not_worse  # lower on every fold by 0.1: p = 0
    assert not compare(_figures([1.0, 1.0, 0.9], learned=False), full).not_worse  # the gate says no
    assert not compare(_figures([1.0, 1.0, 0.9], auc=0.98), full).not_worse  # AUC 0.02 lower: over 0.01
    # "needed" (a stain that cannot be dropped) asks for evidence: one bad fold of a noisy run is none
    noisy = compare(_figures([1.0, 1.0, 0.55]), _figures([1.0, 1.0, 1.0]))
    assert not noisy.not_worse and not noisy.worse
    assert compare(_figures([0.8, 0.75, 0.85]), _figures([1.0, 1.0, 1.0])).worse
    assert compare(_figures([1.0, 1.0, 1.0], learned=False), _figures([1.0, 1.0, 1.0])).worse
    # one well of 46 is 0.022: within the margin, which is never finer than one well
    one_well = SubsetFigures(("c",), 45 / 46, 1.0, True, 0.001, 46, [1.0, 0.93, 1.0], [1.0] * 3)
    everything = SubsetFigures(("c",), 1.0, 1.0, True, 0.001, 46, [1.0, 1.0, 1.0], [1.0] * 3)
    assert compare(one_well, everything).not_worse
    assert paired_worse_p([0.7, 0.8, 0.75], [0.9, 0.95, 1.0]) < 0.05
    assert paired_worse_p([1.0, 1.0], [0.8, 0.9]) > 0.5


def test_a_stain_is_not_needed_when_a_run_without_it_is_as_good():
    """A "without Actin" run that failed is an optimisation miss when Mito alone is as good as all stains."""
    from napari_dcmix.training.stain_figures import PhenotypeStains

    def figures(channels, accuracy, learned=True):
        folds = [accuracy] * 3
        return SubsetFigures(tuple(channels), accuracy, accuracy, learned, 0.001, 60, folds, folds)

    full = figures(("Actin", "Mito"), 1.0)
    stains = PhenotypeStains("treated", {"Actin": 0.5, "Mito": 0.5}, full)
    stains.alone = {"Mito": figures(("Mito",), 1.0), "Actin": figures(("Actin",), 0.5, learned=False)}
    stains.without = {"Actin": figures(("Mito",), 0.5, learned=False), "Mito": figures(("Actin",), 0.5, learned=False)}
    stains.without_comparison = {c: compare(f, full) for c, f in stains.without.items()}
    assert stains.needed() == {"Actin": False, "Mito": True}


def test_rank_correlation_is_none_without_spread():
    assert spearman([0.1, 0.2, 0.7], [0.5, 0.6, 0.9]) == pytest.approx(1.0)
    assert spearman([0.1, 0.2, 0.7], [0.5, 0.5, 0.5]) is None
    assert spearman([0.1, math.nan], [0.5, 0.6]) is None
