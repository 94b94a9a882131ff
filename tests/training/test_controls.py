"""One rule for the negative control and Z′ of every phenotype (explain, the Apply dock, predict --labels)."""

import math

import pytest

from napari_dcmix.errors import DcmixError
from napari_dcmix.training.controls import (guess_reference, json_z_primes, looks_like_reference, reference_guess,
                                            resolve_reference, z_prime_pair_text, z_primes, z_primes_text)
from napari_dcmix.training.zfactor import z_prime


@pytest.mark.parametrize("classes, expected", [
    (["DMSO", "compound_A"], "DMSO"),
    (["negative", "positive"], "negative"),
    (["positive_control", "negative_control", "hit"], "negative_control"),
    (["NT", "siRNA_PLK1"], "NT"),
    (["siPLK1", "NTC"], "NTC"),
    (["untreated", "treated"], "untreated"),
    (["ctrl", "er_stress", "nucleolar"], "ctrl"),
    (["NegCtrl", "PosCtrl", "hit"], "NegCtrl"),
    (["mock", "infected"], "mock"),
    (["vehicle", "drug"], "vehicle"),
    (["wild-type", "KO"], "wild-type"),
    (["non-targeting", "KO"], "non-targeting"),
    (["hit", "DMSO", "other"], "DMSO"),
])
def test_the_negative_control_is_guessed_by_name(classes, expected):
    assert guess_reference(classes) == expected
    assert reference_guess(classes)[0] == expected


@pytest.mark.parametrize("name", ["positive_control", "pos ctrl", "PosCtrl", "mutant", "antibody", "content",
                                  "negotiable"])
def test_names_that_are_not_a_negative_control(name):
    assert not looks_like_reference(name)


@pytest.mark.parametrize("classes, why", [
    (["a", "b"], "none of them is named like one"),
    (["DMSO", "untreated", "x"], "DMSO, untreated all look like one"),
    (["positive_control", "hit"], "none of them is named like one"),
    ([], "none of them is named like one"),
])
def test_an_absent_or_ambiguous_guess_says_so_and_what_to_do(classes, why):
    guess, text = reference_guess(classes)
    assert guess is None and why in text and "--reference" in text
    with pytest.raises(DcmixError, match="choose the reference class"):
        guess_reference(classes)


def test_a_given_reference_must_be_a_labeled_class():
    assert resolve_reference(["a", "b"], "b") == "b"
    assert resolve_reference(["DMSO", "hit"]) == "DMSO"
    with pytest.raises(DcmixError, match="'dmso' is not among the labeled classes \\(DMSO, hit\\)"):
        resolve_reference(["DMSO", "hit"], "dmso")
    with pytest.raises(DcmixError, match="--reference"):
        resolve_reference(["a", "b"])


def _probs(er, mito):
    return {"er": er, "mito": mito, "DMSO": 1 - er - mito}


PROBS = {("", "A01"): _probs(0.9, 0.0), ("", "A02"): _probs(0.8, 0.1), ("", "A03"): _probs(0.95, 0.0),
         ("", "B01"): _probs(0.1, 0.5), ("", "B02"): _probs(0.0, 0.6), ("", "B03"): _probs(0.0, 0.9),
         ("", "C01"): _probs(0.1, 0.1), ("", "C02"): _probs(0.0, 0.0), ("", "C03"): _probs(0.05, 0.0)}
LABELS = {("", "A01"): "er", ("", "A02"): "er", ("", "A03"): "er", ("", "B01"): "mito", ("", "B02"): "mito",
          ("", "C01"): "DMSO", ("", "C02"): "DMSO", ("", "C03"): "DMSO",
          ("", "D01"): "DMSO"}  # D01 labeled, not predicted: not counted; B03 predicted, unlabeled: not counted


ER_VS_DMSO = ([0.9 / 1.0, 0.8 / 0.9, 0.95 / 1.0], [0.1 / 0.9, 0.0, 0.05 / 1.0])  # P(er) / (P(er) + P(DMSO))


def test_z_prime_of_every_phenotype_is_on_its_share_against_the_reference():
    values = z_primes(PROBS, LABELS, "DMSO", ["DMSO", "er", "mito", "golgi"])
    assert list(values) == ["er", "mito", "golgi"]
    assert values["er"] == pytest.approx(z_prime(*ER_VS_DMSO))
    assert values["mito"] == pytest.approx(z_prime([0.5 / 0.9, 0.6 / 1.0], [0.1 / 0.9, 0.0, 0.0]))
    assert values["golgi"] is None  # no labeled golgi wells
    text = z_primes_text(values, "DMSO")
    assert text.startswith(f"Z′ vs DMSO on P(phenotype vs DMSO): er {values['er']:.2f} · mito {values['mito']:.2f} "
                           "· golgi –")
    assert f"{sum(v is not None and v >= 0.5 for v in values.values())} of 3 excellent" in text
    assert "label and predict more wells" in z_primes_text(z_primes({}, LABELS, "DMSO", ["DMSO", "er"]), "DMSO")


def test_json_has_no_infinity():
    same = {("", "A01"): {"x": 0.5}, ("", "A02"): {"x": 0.5}, ("", "B01"): {"x": 0.5}, ("", "B02"): {"x": 0.5}}
    labels = {("", "A01"): "x", ("", "A02"): "x", ("", "B01"): "neg", ("", "B02"): "neg"}
    values = z_primes(same, labels, "neg", ["neg", "x"])
    assert values == {"x": -math.inf} and json_z_primes(values) == {"x": None}
    assert json_z_primes({"a": 0.25, "b": None}) == {"a": 0.25, "b": None}


def test_one_pair_text():
    text = z_prime_pair_text(PROBS, LABELS, "DMSO", "er")
    assert text.startswith(f"Z′ = {z_prime(*ER_VS_DMSO):.2f} on P(er vs DMSO), 3 er vs 3 DMSO wells")
    assert "two different" in z_prime_pair_text(PROBS, LABELS, "DMSO", "DMSO")
    assert "at least 2" in z_prime_pair_text({}, LABELS, "DMSO", "er")


def test_another_phenotype_rising_does_not_change_a_phenotypes_z_prime():
    """Z′ of er vs DMSO reads er's share of P(er) + P(DMSO): mito's score taking probability from both
    alike (a well called a bit mito too) leaves it unchanged; with two classes it is P(er) itself."""
    base = z_primes(PROBS, LABELS, "DMSO", ["DMSO", "er", "mito"])["er"]
    mixed = {w: {"er": p["er"] / 2, "DMSO": p["DMSO"] / 2, "mito": 0.5 + p["mito"] / 2} for w, p in PROBS.items()}
    assert z_primes(mixed, LABELS, "DMSO", ["DMSO", "er", "mito"])["er"] == pytest.approx(base)
    two = {w: {"er": p["er"], "DMSO": 1 - p["er"]} for w, p in PROBS.items()}
    labels = {w: c for w, c in LABELS.items() if c != "mito"}
    er = [two[w]["er"] for w, c in labels.items() if c == "er" and w in two]
    ref = [two[w]["er"] for w, c in labels.items() if c == "DMSO" and w in two]
    assert z_primes(two, labels, "DMSO", ["DMSO", "er"])["er"] == pytest.approx(z_prime(er, ref))
