"""The docks' one negative-control picker, the Z′ boxes' choices and the Z′ line (training/controls):
the Apply and Explain docks show these, ``predict --labels`` prints the same line."""

import pytest

from napari_dcmix.errors import DcmixError
from napari_dcmix.training.controls import (CHOOSE_REFERENCE, EVERY_PHENOTYPE, chosen_reference, positive_choices,
                                            reference_choices, z_prime_text)


def test_control_boxes_follow_the_core_guess_or_ask():
    assert reference_choices(["negative", "positive"])[:2] == (["negative", "positive"], "negative")
    assert reference_choices(["hit", "DMSO", "other"])[:2] == (["hit", "DMSO", "other"], "DMSO")
    assert reference_choices(["treated", "Control"])[:2] == (["treated", "Control"], "Control")
    items, choice, hint = reference_choices(["a", "b"])  # the user chooses, and the hint says why
    assert (items, choice) == ([CHOOSE_REFERENCE, "a", "b"], CHOOSE_REFERENCE) and "none of them is named" in hint
    assert reference_choices(["DMSO", "untreated"])[:2] == ([CHOOSE_REFERENCE, "DMSO", "untreated"], CHOOSE_REFERENCE)
    assert "guessed from the class names: DMSO" in reference_choices(["DMSO", "hit"])[2]
    assert positive_choices(["a", "b"], "a") == (["a", "b"], "b")
    assert positive_choices(["a", "b"], CHOOSE_REFERENCE) == ([EVERY_PHENOTYPE, "a", "b"], EVERY_PHENOTYPE)
    assert positive_choices([], CHOOSE_REFERENCE) == ([], "")
    text = z_prime_text({}, {}, CHOOSE_REFERENCE, EVERY_PHENOTYPE, ["a", "b"])
    assert text.startswith("Z′: cannot tell which class is the negative control among a, b")


def test_z_prime_text_uses_labeled_wells_and_p_positive():
    rec = lambda p: {"prediction": "x", "confidence": 0.0, "probabilities": {"pos": p, "neg": 1 - p}}  # noqa: E731
    preds = {("", "A01"): rec(0.9), ("", "A02"): rec(0.8), ("", "A03"): rec(1.0),
             ("", "B01"): rec(0.1), ("", "B02"): rec(0.2), ("", "B03"): rec(0.0), ("", "C01"): rec(0.5)}
    labels = {("", "A01"): "pos", ("", "A02"): "pos", ("", "A03"): "pos",
              ("", "B01"): "neg", ("", "B02"): "neg", ("", "B03"): "neg", ("", "D01"): "neg"}  # D01 not predicted
    text = z_prime_text(preds, labels, "neg", "pos", ["neg", "pos"])
    assert text.startswith("Z′ = 0.25 on P(pos vs neg), 3 pos vs 3 neg wells: marginal")
    assert "two different" in z_prime_text(preds, labels, "neg", "neg", ["neg", "pos"])
    assert "has no class 'hit'" in z_prime_text(preds, labels, "neg", "hit", ["neg", "pos"])
    assert "at least 2" in z_prime_text({}, labels, "neg", "pos", [])


def test_z_prime_of_every_phenotype_against_the_negative_control():
    from napari_dcmix.training.controls import z_primes, z_primes_text

    def rec(er, mito):
        return {"prediction": "x", "confidence": 0.0, "probabilities": {"er": er, "mito": mito, "neg": 1 - er - mito}}

    preds = {("", "A01"): rec(0.9, 0.0), ("", "A02"): rec(0.8, 0.1), ("", "A03"): rec(0.95, 0.0),
             ("", "B01"): rec(0.1, 0.5), ("", "B02"): rec(0.0, 0.6),
             ("", "C01"): rec(0.1, 0.1), ("", "C02"): rec(0.0, 0.0), ("", "C03"): rec(0.05, 0.0)}
    labels = {("", "A01"): "er", ("", "A02"): "er", ("", "A03"): "er", ("", "B01"): "mito", ("", "B02"): "mito",
              ("", "C01"): "neg", ("", "C02"): "neg", ("", "C03"): "neg"}
    values = z_primes({w: r["probabilities"] for w, r in preds.items()}, labels, "neg", ["er", "mito", "neg"])
    text = z_prime_text(preds, labels, "neg", EVERY_PHENOTYPE, ["er", "mito", "neg"])
    assert text == z_primes_text(values, "neg")  # the dock shows the core's line, the one predict --labels prints
    assert text.startswith(f"Z′ vs neg on P(phenotype vs neg): er {values['er']:.2f} · mito {values['mito']:.2f}")
    assert positive_choices(["er", "mito", "neg"], "neg") == ([EVERY_PHENOTYPE, "er", "mito", "neg"], EVERY_PHENOTYPE)
    assert positive_choices(["negative", "positive"], "negative") == (["negative", "positive"], "positive")
    assert "predict more wells" in z_prime_text({}, labels, "neg", EVERY_PHENOTYPE, ["er", "mito", "neg"])



def test_chosen_reference_is_the_pick_else_the_guess_else_says_what_to_do():
    assert chosen_reference("hit", ["DMSO", "hit"]) == "hit"  # the user's pick wins over the name rule
    assert chosen_reference(CHOOSE_REFERENCE, ["DMSO", "hit"]) == "DMSO"
    with pytest.raises(DcmixError, match="choose the reference class"):
        chosen_reference(CHOOSE_REFERENCE, ["a", "b"])
