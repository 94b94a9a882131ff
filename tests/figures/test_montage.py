"""The top-k montage: which sites are picked, how they are drawn (plate colours and contrast),
empty slots for classes with fewer sites, the napari-ready array and the captioned PNG."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_ome_zarr_plate

from napari_dcmix.errors import DcmixError
from napari_dcmix.figures.montage import composite, montage_image, save_montage, top_sites
from napari_dcmix.plate import ChannelStats, SiteKey, open_plate

CLASSES = ["a", "b", "c"]


def key(well, site=1):
    return SiteKey("", well, site)


def test_top_sites_most_confident_first_per_predicted_class():
    probs = {key("B02"): [0.6, 0.3, 0.1], key("B03"): [0.9, 0.05, 0.05], key("B04"): [0.2, 0.7, 0.1],
             key("B05"): [0.8, 0.1, 0.1], key("B06"): [0.8, 0.1, 0.1]}
    picks = top_sites({k: np.array(v) for k, v in probs.items()}, CLASSES, k=3)
    assert [p.key.well for p in picks["a"]] == ["B03", "B05", "B06"]  # ties in plate order; B02 is 4th
    assert [p.key.well for p in picks["b"]] == ["B04"] and picks["c"] == []
    assert picks["b"][0].probability == pytest.approx(0.7)
    with pytest.raises(DcmixError, match="k ≥ 1"):
        top_sites({}, CLASSES, 0)


def test_composite_uses_channel_colours_and_contrast():
    site = np.zeros((2, 8, 8), np.uint16)
    site[0, :4] = 200  # channel 0 at its high limit in the top half
    stats = ChannelStats(["DNA", "ER"], np.array([0.0, 0.0]), np.array([200.0, 200.0]))
    rgb = composite(site, stats, ["#0000ff", "#00ff00"], tile=4)
    assert rgb.shape == (4, 4, 3)
    np.testing.assert_allclose(rgb[0, 0], [0, 0, 1])
    np.testing.assert_allclose(rgb[3, 3], [0, 0, 0])


def test_montage_grid_and_png(tmp_path):
    from PIL import Image

    root = write_ome_zarr_plate(tmp_path / "p.zarr", "0.5", wells=("B02", "B03", "C02"), fields=1, size=32)
    plate = open_plate(root)
    probs = {key("B02"): np.array([0.9, 0.1, 0.0]), key("B03"): np.array([0.7, 0.3, 0.0]),
             key("C02"): np.array([0.1, 0.9, 0.0])}
    picks = top_sites(probs, CLASSES, k=2)
    image, problems = montage_image(plate, picks, 2, tile=32, gap=4)
    assert image.shape == (3 * 36 - 4, 2 * 36 - 4, 3) and image.dtype == np.uint8 and problems == []
    stats = plate.channel_stats()
    expected = composite(plate.read_site(key("B03")), stats, ["#0000ff", "#00ff00", "#ff00ff"], 32)
    np.testing.assert_array_equal(image[0:32, 36:68], (expected * 255 + 0.5).astype(np.uint8))  # a's 2nd best
    assert (image[36:68, 36:68] == 38).all()  # b has one site: its 2nd slot is empty (dark grey)
    assert (image[32:36] == 255).all()  # white gaps between rows

    out = tmp_path / "top.png"
    assert save_montage(out, plate, probs, CLASSES, k=2, model_name="m.pt") == []
    with Image.open(out) as im:
        assert im.format == "PNG"
