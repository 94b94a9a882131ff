import math

import numpy as np
import pytest

from napari_dcmix.training.gate import assess, auc_binary, binomial_tail, macro_auc


def test_binomial_tail_matches_known_values():
    assert binomial_tail(0, 10, 0.5) == 1.0
    assert binomial_tail(10, 10, 0.5) == pytest.approx(1 / 1024)
    assert binomial_tail(9, 10, 0.5) == pytest.approx(11 / 1024)
    assert binomial_tail(27, 42, 0.5) == pytest.approx(0.0442, abs=5e-4)


def test_auc_counts_ties_half():
    assert auc_binary([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc_binary([0.1], [0.9]) == 0.0
    assert auc_binary([0.5], [0.5]) == 0.5
    assert math.isnan(auc_binary([], [0.5]))


def test_perfect_held_out_wells_are_learned():
    y = [0] * 6 + [1] * 6
    probs = np.array([[0.9, 0.1]] * 6 + [[0.2, 0.8]] * 6)
    verdict = assess(y, probs)
    assert verdict.learned and verdict.accuracy == 1.0 and verdict.auc == 1.0
    assert verdict.p_value == pytest.approx(0.5 ** 12)


def test_chance_is_the_majority_share_so_a_constant_guess_is_not_learned():
    y = [0] * 10 + [1] * 2  # always calling class 0 is 83 % right and means nothing
    probs = np.array([[0.7, 0.3]] * 12)
    verdict = assess(y, probs)
    assert verdict.accuracy == pytest.approx(10 / 12) and verdict.chance == pytest.approx(10 / 12)
    assert not verdict.learned and "label more wells" in verdict.reason


def test_too_few_wells_are_never_learned_and_say_so():
    verdict = assess([0, 1, 0, 1], np.array([[1, 0], [0, 1], [1, 0], [0, 1]], float))
    assert not verdict.learned and "too few" in verdict.reason
    assert not assess([], np.zeros((0, 2))).learned


def test_shuffled_predictions_are_flagged_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    flagged = 0
    for _ in range(400):
        y = rng.integers(0, 2, 40)
        probs = rng.dirichlet([1, 1], 40)
        flagged += not assess(y, probs).learned
    assert flagged / 400 >= 0.95


def test_macro_auc_multiclass():
    y = np.array([0, 1, 2, 0, 1, 2])
    probs = np.eye(3)[y] * 0.8 + 0.2 / 3
    assert macro_auc(y, probs) == 1.0
