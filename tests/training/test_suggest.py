"""Which wells to label next: the rule's parts on numbers a person can check, the diversity that keeps
the top N from being copies of one well, and the run on real plates (only unlabelled wells, unreadable
ones named, the panel's members read in the same forward pass as its probabilities)."""

import csv

import numpy as np
import pytest
import torch

from conftest import SIGNAL_PATTERN, constant_member, write_phenotype_plate
from napari_dcmix.errors import DcmixError
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.model.panel import PhenotypePanel
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainedModel, predict_sites, well_probabilities
from napari_dcmix.training.suggest import (disagreement, pick_diverse, rank_wells, suggest_wells, uncertainty,
                                           write_suggestions)
from napari_dcmix.training.trainer import reference_stats


@pytest.fixture(scope="module")
def plate_and_labels(tmp_path_factory):
    root, csv_path = write_phenotype_plate(tmp_path_factory.mktemp("suggest") / "plate", {"pos": 1},
                                           wells_per_class=5, size=16)
    (root / "G02_s1_ch0.tif").write_bytes(b"")  # G02: both sites unreadable -> skipped, named
    (root / "G02_s2_ch1.tif").write_bytes(b"")
    plate = open_plate(root, SIGNAL_PATTERN)
    return plate, read_labels(csv_path, plate.sites, "phenotype").well_labels()


def single(plate, classes=("negative", "pos"), seed=0):
    torch.manual_seed(seed)
    return TrainedModel(ChannelClassifier("dcmix", 3, len(classes)).eval(), list(plate.channels), list(classes),
                        reference_stats(plate), 16, {"normalization": "plate"})


def panel_of(plate, log_odds):
    """A panel of binary members, each with constant log odds of 'pos' against 'negative'."""
    members = [constant_member(v, seed=i) for i, v in enumerate(log_odds)]
    model = PhenotypePanel(members, [1] * len(members), 2, 0).eval()
    return TrainedModel(model, list(plate.channels), ["negative", "pos"], reference_stats(plate), 16,
                        {"normalization": "plate"})


def run(*args, **kwargs):
    events = list(suggest_wells(*args, **kwargs))
    assert [e.kind for e in events[:-1]] == ["site"] * (len(events) - 1) and events[-1].kind == "done"
    return events, events[-1].result


# --- the rule's parts ----------------------------------------------------------------------------------
def test_uncertainty_is_one_minus_the_margin_of_the_top_two():
    probs = np.array([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05], [0.6, 0.1, 0.3], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(uncertainty(probs), [1.0, 0.15, 0.7, 0.0])


def test_disagreement_is_zero_when_members_agree_and_grows_when_they_are_sure_of_different_classes():
    same = np.array([[[0.7, 0.3], [0.7, 0.3], [0.7, 0.3]]])
    split = np.array([[[0.99, 0.01], [0.01, 0.99], [0.5, 0.5]]])
    opposite = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    assert disagreement(same)[0] == pytest.approx(0.0, abs=1e-9)
    assert 0.3 < disagreement(split)[0] < disagreement(opposite)[0] == pytest.approx(1.0, abs=1e-6)


def test_diversity_keeps_the_top_picks_from_being_copies_of_one_well():
    # wells 0-3 are near copies (same features), all very uncertain; wells 4, 5 lie elsewhere, a bit less so
    rng = np.random.default_rng(0)
    features = np.vstack([np.tile([5.0, 5.0, 0.0], (4, 1)) + rng.normal(0, 0.01, (4, 3)),
                          [[-5.0, 0.0, 5.0], [0.0, -5.0, -5.0]]])
    scores = np.array([0.99, 0.98, 0.97, 0.96, 0.8, 0.7])
    picks = [i for i, *_ in pick_diverse(scores, features, 3)]
    assert picks[0] == 0 and set(picks[1:]) == {4, 5}  # pure uncertainty would have picked 0, 1, 2
    first, second = pick_diverse(scores, features, 2)
    assert first[2] == 1.0 and first[3] is None and second[3] == 0  # its nearest earlier pick is well 0
    np.testing.assert_array_equal([i for i, *_ in pick_diverse(scores, np.zeros((6, 3)), 6)], np.arange(6))


def test_a_near_copy_says_so_in_its_reason():
    rows = {("", w): np.r_[p, p, f] for w, p, f in [("B02", [0.5, 0.5], [1.0, 0.0]), ("B03", [0.5, 0.5], [1.0, 0.0]),
                                                    ("C02", [0.9, 0.1], [-5.0, 3.0]), ("C03", [0.95, 0.05], [-5.0, -3.0])]}
    result = rank_wells(rows, ["negative", "pos"], 1, 2, "m")
    assert [s.well for s in result.items] == ["B02", "C02"]
    assert result.items[1].reason.endswith("unlike the wells picked before it")
    result = rank_wells(rows, ["negative", "pos"], 1, 4, "m")
    copy = result.get(("", "B03"))
    assert copy.rank == 4 and copy.score < 0.05
    assert copy.reason.endswith("; close to B02 (picked before it) in what the model sees: score × 0.00")


# --- runs on a plate -----------------------------------------------------------------------------------
def test_only_unlabelled_readable_wells_are_ranked_and_the_unreadable_are_named(plate_and_labels):
    plate, labels = plate_and_labels
    known = dict(list(labels.items())[:4])
    events, result = run(single(plate), plate, known, n=3)
    unlabelled = [pw for pw in plate.well_keys() if pw not in known]
    assert result.candidates == len(unlabelled) - 1 and result.skipped == (("", "G02"),)
    assert len(result) == 3 and not set(result.wells()) & set(known) and ("", "G02") not in result.wells()
    assert [s.rank for s in result.items] == [1, 2, 3] and result.members == 1
    assert all(a.score >= b.score for a, b in zip(result.items, result.items[1:]))
    assert all("one model: no members to disagree" in s.reason and s.disagreement is None for s in result.items)
    readable = sum(len(plate.sites_of(w, p)) for p, w in unlabelled if w != "G02")
    assert [e.done for e in events[:-1]] == list(range(1, readable + 1))
    _, fewer = run(single(plate), plate, known, n=2, within=[("", "B03"), ("", "C03"), ("", "B02")])
    assert set(fewer.wells()) <= {("", "B03"), ("", "C03")}  # B02 is labelled: never offered


def test_the_probabilities_are_those_predict_gives(plate_and_labels):
    plate, _ = plate_and_labels
    model = panel_of(plate, [2.0, -1.0, 0.5])
    _, result = run(model, plate, {}, n=len(plate.well_keys()))
    expected = well_probabilities(list(predict_sites(model, plate)))
    for s in result.items:
        np.testing.assert_allclose([s.probabilities[c] for c in model.classes], expected[s.key], atol=1e-6)


def test_panel_members_that_disagree_raise_the_score_and_are_named(plate_and_labels):
    plate, _ = plate_and_labels
    _, agree = run(panel_of(plate, [0.3, 0.3, 0.3]), plate, {}, n=1)
    _, split = run(panel_of(plate, [3.0, -3.0, 0.6]), plate, {}, n=1)  # mean log odds 0.2: P(pos) 0.55
    top = split.items[0]
    assert split.members == 3 and top.disagreement > 0.3 and agree.items[0].disagreement == pytest.approx(0, abs=1e-6)
    assert top.score > agree.items[0].score
    assert top.reason.startswith("members disagree: 2 say pos, 1 says negative; uncertain: pos 0.55 vs negative 0.45")
    assert agree.items[0].reason.startswith("members agree: 3 say pos;")


def test_bad_requests_are_refused_before_any_work(plate_and_labels):
    plate, labels = plate_and_labels
    with pytest.raises(DcmixError, match="between 1 and"):
        next(suggest_wells(single(plate), plate, {}, n=0))
    with pytest.raises(DcmixError, match="nothing to suggest"):
        next(suggest_wells(single(plate), plate, {pw: "negative" for pw in plate.well_keys()}))
    other = single(plate)
    other.channels = ["DNA", "ER", "Mito"]
    with pytest.raises(DcmixError, match="DNA"):
        next(suggest_wells(other, plate, labels))


def test_closing_the_run_stops_it(plate_and_labels):
    plate, _ = plate_and_labels
    events = suggest_wells(single(plate), plate, {}, batch_size=4)
    first = next(events)
    events.close()
    assert first.kind == "site" and first.done == 1 and list(events) == []


def test_the_csv_is_written_atomically_and_never_inside_the_plate(plate_and_labels, tmp_path):
    plate, labels = plate_and_labels
    _, result = run(single(plate), plate, dict(list(labels.items())[:4]), n=3)
    write_suggestions(tmp_path / "s.csv", result)
    rows = list(csv.DictReader(open(tmp_path / "s.csv", newline="")))
    assert list(rows[0]) == ["rank", "well", "score", "uncertainty", "disagreement", "prediction", "reason"]
    assert [r["well"] for r in rows] == [s.well for s in result.items] and rows[0]["reason"] == result.items[0].reason
    with pytest.raises(DcmixError, match="inside the plate folder"):
        write_suggestions(plate.root / "s.csv", result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]
