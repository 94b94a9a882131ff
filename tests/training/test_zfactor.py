import math

import pytest

from napari_dcmix.errors import DcmixError
from napari_dcmix.training.zfactor import z_prime, z_prime_quality


def test_known_numbers():
    # means 0.9 and 0.1, sample sds 0.1 each: 1 - 3 * 0.2 / 0.8 = 0.25
    assert z_prime([0.9, 0.8, 1.0], [0.1, 0.2, 0.0]) == pytest.approx(0.25)
    # order of arguments: |μp − μn| makes the sign of the difference irrelevant
    assert z_prime([0.1, 0.2, 0.0], [0.9, 0.8, 1.0]) == pytest.approx(0.25)


def test_perfect_and_overlapping():
    assert z_prime([1.0, 1.0], [0.0, 0.0]) == 1.0
    assert z_prime([0.5, 0.6], [0.5, 0.6]) == -math.inf
    assert z_prime([0.9, 0.1, 0.5], [0.4, 0.6, 0.2]) < 0


def test_too_few_wells_is_a_clear_error():
    with pytest.raises(DcmixError, match="at least 2 positive control wells .*have 1"):
        z_prime([0.9], [0.1, 0.2])
    with pytest.raises(DcmixError, match="at least 2 negative control wells .*have 0"):
        z_prime([0.9, 0.8], [])
    with pytest.raises(DcmixError, match="not a number"):
        z_prime([0.9, float("nan")], [0.1, 0.2])


def test_quality_words():
    assert z_prime_quality(0.7).startswith("excellent")
    assert z_prime_quality(0.5).startswith("excellent")
    assert z_prime_quality(0.2).startswith("marginal")
    assert z_prime_quality(0.0).startswith("marginal")
    assert z_prime_quality(-0.3).startswith("overlapping")
    assert z_prime_quality(-math.inf).startswith("overlapping")
