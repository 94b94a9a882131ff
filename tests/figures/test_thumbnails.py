"""Well thumbnails look like napari's additive channel layers (one tinting helper with the montage)."""

import numpy as np

from napari_dcmix.figures.thumbnails import downsample, make_thumbnail, thumbnail_size
from napari_dcmix.figures.tint import hex_rgb, tint


def test_thumbnail_composites_channel_colours():
    site = np.zeros((2, 64, 64), np.uint16)
    site[0, :32] = 1000  # channel 0 (blue) bright in the top half
    site[1, :, 32:] = 500  # channel 1 (green) at half intensity in the right half
    thumb = make_thumbnail(site, [0, 0], [1000, 1000], ["#0000ff", "#00ff00"], size=16)
    assert thumb.shape == (16, 16, 3) and thumb.dtype == np.uint8
    np.testing.assert_array_equal(thumb[0, 0], [0, 0, 255])
    np.testing.assert_array_equal(thumb[-1, -1], [0, 128, 0])
    np.testing.assert_array_equal(thumb[0, -1], [0, 128, 255])
    np.testing.assert_array_equal(thumb[-1, 0], [0, 0, 0])
    assert downsample(np.ones((3, 1080, 1080)), 48).shape == (3, 46, 46)
    assert thumbnail_size(1536) < thumbnail_size(96)


def test_tint_is_additive_and_clipped():
    channels = np.array([[[2000.0]], [[500.0]]])  # channel 0 over its high limit, channel 1 at half
    rgb = tint(channels, [0, 0], [1000, 1000], ["#ff0000", "#ff0000"])
    np.testing.assert_allclose(rgb[0, 0], [1.0, 0.0, 0.0])  # 1.0 + 0.5 red, clipped at full colour
    assert hex_rgb("#0080ff") == (0.0, 128 / 255, 1.0) and hex_rgb((0.1, 0.2, 0.3)) == (0.1, 0.2, 0.3)
