"""The forest's features measure what their names say, on images whose answer is known."""

import numpy as np
import pytest

from napari_dcmix.classical.features import FEATURE_NAMES, GRANULARITY_RADII, channel_features, site_features


def feature(image, name):
    return channel_features(image)[FEATURE_NAMES.index(name)]


def spots(radius: int, size: int = 96, step: int = 16) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size), np.float32)
    for cy in range(step // 2, size, step):
        for cx in range(step // 2, size, step):
            image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = 1.0
    return image


def test_there_are_36_per_channel_and_a_site_gives_one_row_per_channel():
    assert len(FEATURE_NAMES) == 36 and len(set(FEATURE_NAMES)) == 36
    site = np.random.default_rng(0).random((3, 40, 50)).astype(np.float32)
    out = site_features(site)
    assert out.shape == (3, 36) and np.isfinite(out).all()


def test_intensity_features_follow_the_pixels():
    flat = np.full((32, 32), 0.25, np.float32)
    assert feature(flat, "mean") == pytest.approx(0.25) and feature(flat, "std") == pytest.approx(0.0)
    assert feature(flat, "p50") == pytest.approx(0.25) and feature(flat, "coverage") == 0.0
    assert feature(flat + 0.5, "coverage") == 1.0


def test_texture_tells_a_fine_pattern_from_a_smooth_one():
    yy, xx = np.mgrid[:64, :64]
    fine = (0.5 + 0.5 * np.sin(xx * 2.5) * np.sin(yy * 2.5)).astype(np.float32)
    smooth = (0.5 + 0.5 * np.sin(xx * 0.1)).astype(np.float32)
    assert feature(fine, "contrast_d1") > 10 * feature(smooth, "contrast_d1")
    assert feature(smooth, "homogeneity_d1") > feature(fine, "homogeneity_d1")
    assert feature(smooth, "correlation_d1") > 0.9


def test_granularity_peaks_where_the_spots_no_longer_fit():
    peaks = []
    for radius in (2, 5):
        spectrum = [feature(spots(radius), f"granularity_{r}") for r in GRANULARITY_RADII]
        assert sum(spectrum) == pytest.approx(1.0, abs=1e-6)  # every spot is removed by some opening
        peaks.append(GRANULARITY_RADII[int(np.argmax(spectrum))])
    # square openings of side 2r+1: a disc of radius 2 goes at r = 2, one of radius 5 at r = 4 (the
    # largest square inside it has a side of 7)
    assert peaks == [2, 4]


def test_large_sites_are_measured_at_a_bounded_scale():
    big = np.random.default_rng(1).random((2, 1024, 1024)).astype(np.float32)
    assert site_features(big).shape == (2, 36)
