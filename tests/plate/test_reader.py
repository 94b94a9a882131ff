"""Reading sites lazily: (C, Y, X) in channel order, a small cache, statistics, and broken files."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tifffile
from conftest import WELLS_6, site_pixels, write_imagexpress

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import ChannelStats, Plate, SiteKey, build_index, open_plate
from napari_dcmix.plate import reader
from napari_dcmix.plate.stats import HIGH_PERCENTILE, LOW_PERCENTILE, compute_stats

GUID = "9A1E2A7D-1234-ABCD"


def test_read_site_values_and_order(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    for key in plate.sites:
        site = plate.read_site(key)
        assert site.shape == (3, 16, 16) and site.dtype == np.uint16
        for c in range(3):
            np.testing.assert_array_equal(site[c], site_pixels(key.well, key.site, c))


def test_read_site_accepts_plain_tuples_and_rejects_unknown(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    np.testing.assert_array_equal(plate.read_site(("Plate1", "B02", 1)), plate.read_site(SiteKey("Plate1", "B02", 1)))
    with pytest.raises(PlateError, match="H12 s1 is not on this plate"):
        plate.read_site(SiteKey("Plate1", "H12", 1))
    with pytest.raises(PlateError, match="is not a site"):
        plate.read_site(("B02",))


def test_sites_of_accepts_any_spelling(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    assert plate.sites_of("b2") == plate.sites_of("B02") == plate.sites_of("r02c02")
    assert len(plate.sites_of("B02")) == 2
    assert plate.sites_of("not a well") == [] and plate.sites_of("H12") == []


def test_reads_are_lazy_and_cached(imagexpress_plate, monkeypatch):
    plate = Plate(build_index(imagexpress_plate), cache_sites=2)
    calls = []
    read = reader._read_2d
    monkeypatch.setattr(reader, "_read_2d", lambda path, index, notes=None: calls.append(path.name) or read(path, index, notes))
    assert calls == []
    a = plate.read_site(plate.sites[0])
    assert len(calls) == 3
    assert plate.read_site(plate.sites[0]) is a and len(calls) == 3  # from the cache
    plate.read_site(plate.sites[1])
    plate.read_site(plate.sites[2])  # cache holds 2 sites: the first is evicted
    assert len(calls) == 9
    plate.read_site(plate.sites[0])
    assert len(calls) == 12


def test_cached_sites_are_read_only(imagexpress_plate):
    site = open_plate(imagexpress_plate).read_site(SiteKey("Plate1", "B02", 1))
    with pytest.raises(ValueError):
        site[0, 0, 0] = 1


def test_concurrent_reads_agree(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    results, errors = {}, []

    def work(i):
        try:
            for key in plate.sites:
                results[(i, key)] = plate.read_site(key)
        except Exception as err:  # pragma: no cover - shown by the assert below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (i, key), data in results.items():
        np.testing.assert_array_equal(data[1], site_pixels(key.well, key.site, 1))


def test_channels_with_different_shapes(imagexpress_plate):
    tifffile.imwrite(imagexpress_plate / f"Plate1_B03_s1_w2{GUID}.tif", np.zeros((8, 12), np.uint16))
    plate = open_plate(imagexpress_plate)  # names only: opening does not notice
    with pytest.raises(PlateError, match=r"Plate1 B03 s1: channels have different shapes \(w1 16×16, w2 8×12, w3 16×16\)"):
        plate.read_site(SiteKey("Plate1", "B03", 1))
    assert any("different shapes" in p for p in plate.problems)
    assert plate.read_site(SiteKey("Plate1", "B03", 2)).shape == (3, 16, 16)


@pytest.mark.parametrize("content", [b"", b"not a tiff at all", b"II*\x00" + b"\xff" * 40, b"MM\x00*\x00\x00\x00\x08garbage"])
def test_corrupt_tiff_is_reported_when_read(imagexpress_plate, content):
    bad = imagexpress_plate / f"Plate1_C02_s1_w1{GUID}.tif"
    bad.write_bytes(content)
    plate = open_plate(imagexpress_plate)
    assert SiteKey("Plate1", "C02", 1) in plate.sites
    with pytest.raises(PlateError, match=f"{bad.name} could not be read .*may be corrupt"):
        plate.read_site(SiteKey("Plate1", "C02", 1))
    assert sum(bad.name in p for p in plate.problems) == 1
    with pytest.raises(PlateError):  # again: reported once, not once per try
        plate.read_site(SiteKey("Plate1", "C02", 1))
    assert sum(bad.name in p for p in plate.problems) == 1
    np.testing.assert_array_equal(plate.read_site(SiteKey("Plate1", "C02", 2))[0], site_pixels("C02", 2, 0))
    summary = plate.summary()  # still usable as a whole
    assert summary["shape"] == [3, 16, 16] and summary["wells"] == 6
    assert plate.channel_stats().n_sites == 11


def test_truncated_tiff(imagexpress_plate):
    path = imagexpress_plate / f"Plate1_D03_s2_w3{GUID}.tif"
    path.write_bytes(path.read_bytes()[:200])
    plate = open_plate(imagexpress_plate)
    with pytest.raises(PlateError, match="may be corrupt"):
        plate.read_site(SiteKey("Plate1", "D03", 2))


def test_file_removed_after_opening(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    (imagexpress_plate / f"Plate1_B02_s1_w2{GUID}.tif").unlink()
    with pytest.raises(PlateError, match="B02 s1: .*_B02_s1_w2.* has disappeared since the plate was opened"):
        plate.read_site(SiteKey("Plate1", "B02", 1))
    (problem,) = plate.problems  # named once, by file and site, and skipped
    assert problem.site == "Plate1 B02 s1" and problem.action == "skipped" and "open the plate again" in problem.fix


def test_all_sites_unreadable(tmp_path):
    root = write_imagexpress(tmp_path / "ixm", wells=["B02"], sites=1, channels=2, size=4)
    for path in root.glob("*.tif"):
        path.write_bytes(b"junk")
    plate = open_plate(root)
    with pytest.raises(PlateError, match="could be read; the files may be corrupt"):
        plate.first_readable_site()
    with pytest.raises(PlateError, match="no site .* could be read"):
        plate.channel_stats()
    summary = plate.summary()
    assert summary["shape"] is None and summary["problems"]


def test_multi_page_and_rgb_files_per_channel(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    tifffile.imwrite(root / "B02_a.tif", np.stack([np.full((6, 6), 5, np.uint16), np.full((6, 6), 9, np.uint16)]),
                     metadata={"axes": "ZYX"})
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[..., 0] = 7
    tifffile.imwrite(root / "B02_b.tif", rgb, photometric="rgb")
    plate = open_plate(root, r"(?P<well>B\d+)_(?P<channel>[ab])\.tif")
    site = plate.read_site(plate.sites[0])
    assert site.shape == (2, 6, 6) and site.dtype == np.uint16  # mixed dtypes promoted
    assert site[:, 0, 0].tolist() == [5, 7]


def test_multichannel_file_in_a_per_channel_layout(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    tifffile.imwrite(root / "B02_a.tif", np.zeros((2, 6, 6), np.uint16), metadata={"axes": "CYX"}, ome=True)
    tifffile.imwrite(root / "B02_b.tif", np.zeros((6, 6), np.uint16))
    plate = open_plate(root, r"(?P<well>B\d+)_(?P<channel>[ab])\.tif")
    with pytest.raises(PlateError, match="holds 2 channels; use a pattern with one file per channel"):
        plate.read_site(plate.sites[0])


def test_png_grey_alpha_and_rgb(tmp_path):
    import imageio.v3 as iio

    root = tmp_path / "lab"
    root.mkdir()
    la = np.zeros((6, 6, 2), np.uint8)
    la[..., 0], la[..., 1] = 40, 255
    iio.imwrite(root / "B02_a.png", la)
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[..., 0] = 50
    iio.imwrite(root / "B02_b.png", rgb)
    iio.imwrite(root / "B02_c.png", np.full((6, 6), 60, np.uint8))
    plate = open_plate(root, r"(?P<well>B\d+)_(?P<channel>[abc])\.png")
    site = plate.read_site(plate.sites[0])
    assert site.shape == (3, 6, 6) and site[:, 3, 3].tolist() == [40, 50, 60]


def test_corrupt_png(tmp_path):
    from conftest import write_rxrx1

    root = write_rxrx1(tmp_path / "images", plates=(1,), wells=("B02", "B03"), sites=1, channels=2)
    (root / "HUVEC-01" / "Plate1" / "B02_s1_w2.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    plate = open_plate(root)
    with pytest.raises(PlateError, match="B02_s1_w2.png could not be read"):
        plate.read_site(SiteKey("HUVEC-01/Plate1", "B02", 1))
    assert plate.read_site(SiteKey("HUVEC-01/Plate1", "B03", 1)).shape == (2, 12, 12)


# --- statistics ----------------------------------------------------------------------------------------
def test_channel_stats_percentiles(tmp_path):
    root = write_imagexpress(tmp_path / "ixm", wells=["B02", "B03"], sites=1, channels=2, size=16)
    plate = open_plate(root)
    stats = plate.channel_stats()
    assert stats.channels == ["w1", "w2"] and stats.n_sites == 2
    for c in range(2):
        values = np.concatenate([site_pixels(w, 1, c).ravel() for w in ("B02", "B03")]).astype(np.float32)
        assert stats.low[c] == pytest.approx(np.percentile(values, LOW_PERCENTILE))
        assert stats.high[c] == pytest.approx(np.percentile(values, HIGH_PERCENTILE))
        assert stats.contrast_limits(c) == (pytest.approx(stats.low[c]), pytest.approx(stats.high[c]))
    assert stats.low[1] > stats.high[0]  # channel 2 is brighter: the order is the plate's


def test_channel_stats_cached_and_sampled(imagexpress_plate, monkeypatch):
    plate = open_plate(imagexpress_plate)
    stats = plate.channel_stats(n_sites=4)
    assert stats.n_sites == 4
    monkeypatch.setattr(plate, "read_site", lambda key: (_ for _ in ()).throw(AssertionError("read again")))
    assert plate.channel_stats() is stats
    own = ChannelStats(["w1", "w2", "w3"], [0, 0, 0], [1, 1, 1])
    plate.set_channel_stats(own)
    assert plate.channel_stats() is own


def test_channel_stats_seeded_sample_is_deterministic(imagexpress_plate):
    a = open_plate(imagexpress_plate).channel_stats(n_sites=3, seed=5)
    b = open_plate(imagexpress_plate).channel_stats(n_sites=3, seed=5)
    np.testing.assert_array_equal(a.low, b.low)
    np.testing.assert_array_equal(a.high, b.high)


def test_stats_normalize_and_round_trip():
    stats = ChannelStats(["a", "b"], [10, 100], [20, 300])
    site = np.stack([np.full((2, 2), 15.0), np.full((2, 2), 300.0)])
    out = stats.normalize(site)
    assert out.dtype == np.float32 and out[:, 0, 0].tolist() == pytest.approx([0.5, 1.0])
    again = ChannelStats.from_dict(stats.to_dict())
    assert again.channels == ["a", "b"] and again.low.tolist() == [10, 100] and again.high.tolist() == [20, 300]
    sub = stats.subset([1])
    assert sub.channels == ["b"] and sub.low.tolist() == [100]


@pytest.mark.parametrize("level", [0.0, 0.25, 1000.0, 60000.0, 4e9])
def test_flat_channel_never_divides_by_zero(level):
    site = np.full((1, 8, 8), level, np.float32)
    stats = compute_stats(["flat"], [site])
    assert stats.high[0] > stats.low[0]
    assert np.isfinite(stats.normalize(site)).all()


def test_stats_ignore_nan_pixels():
    site = np.stack([np.arange(64, dtype=np.float32).reshape(8, 8), np.full((8, 8), np.nan, np.float32)])
    site[0, 0, :4] = np.nan
    stats = compute_stats(["a", "empty"], [site])
    assert np.isfinite(stats.low).all() and np.isfinite(stats.high).all()
    assert stats.low[0] >= 4


def test_compute_stats_needs_a_site():
    with pytest.raises(ValueError):
        compute_stats(["a"], [])


def test_summary(imagexpress_plate):
    summary = open_plate(imagexpress_plate).summary()
    assert summary == {"layout": "imagexpress", "plates": ["Plate1"], "format": 96, "wells": 6, "sites": 2,
                       "sites_per_well": {f"Plate1 {w}": 2 for w in WELLS_6},
                       "channels": ["w1", "w2", "w3"], "shape": [3, 16, 16], "dtype": "uint16", "problems": []}
