"""The streaming loader: every tile of a pass exactly once, the pixels the model would have seen."""

import numpy as np
import torch

from napari_dcmix.plate import ChannelStats, SiteKey
from napari_dcmix.training.data import grid_tiles, normalize_tiles, tiles_for_site
from napari_dcmix.training.pipeline import RawTiles, TileStream, _ShuffleBuffer


class FakeSource:
    """Sites of random 16-bit pixels (one unreadable), one statistics: what TileStream needs."""

    def __init__(self, n_sites: int, size: int = 20, channels: int = 2, unreadable: int | None = None):
        rng = np.random.default_rng(0)
        self.sites = {SiteKey("", f"B{i + 2:02d}", 1): rng.integers(0, 4000, (channels, size, size)).astype(np.uint16)
                      for i in range(n_sites)}
        self.unreadable = None if unreadable is None else list(self.sites)[unreadable]
        self.stats = ChannelStats([f"c{i}" for i in range(channels)], [100.0] * channels, [3000.0] * channels)

    def raw(self, key):
        return None if key == self.unreadable else self.sites[key]

    def stats_for(self, plate_id):
        return self.stats


def _variants(tile: np.ndarray) -> list[np.ndarray]:
    return [np.rot90(t, k, axes=(1, 2)) for t in (tile, tile[:, :, ::-1]) for k in range(4)]


def _windows(site: np.ndarray, t: int) -> list[np.ndarray]:
    return [site[:, y:y + t, x:x + t] for y in range(site.shape[1] - t + 1) for x in range(site.shape[2] - t + 1)]


def test_each_pass_gives_each_site_its_tiles_with_its_label_and_pixels():
    source = FakeSource(6, unreadable=4)
    keys = list(source.sites)
    stream = TileStream(source, keys, list(range(6)), tile=8, batch_size=7, rng=np.random.default_rng(1),
                        buffer_bytes=8 * 2 * 8 * 8 * 2, workers=2)  # a buffer of 8 tiles: it must cycle
    expected = tiles_for_site((20, 20), 8)
    abandoned = iter(stream)
    next(abandoned)  # a pass left early (the step budget ran out) leaves nothing in the reused buffer
    abandoned.close()
    for _ in range(2):
        per_site = {k: 0 for k in keys}
        for x, y, batch_keys in stream:
            assert isinstance(x, RawTiles) and len(x) == len(y) == len(batch_keys) <= 7
            pixels = x.numpy()
            assert pixels.dtype == np.float32 and pixels.shape[1:] == (2, 8, 8)
            for tile, label, key in zip(pixels, y, batch_keys):
                assert label == keys.index(key)
                per_site[key] += 1
                normalised = source.stats.normalize(source.sites[key])
                assert any(np.array_equal(tile, v) for w in _windows(normalised, 8) for v in _variants(w))
        assert per_site == {k: 0 if k == source.unreadable else expected for k in keys}
        assert stream.tiles_per_pass == 5 * expected


def test_without_augmentation_tiles_are_plain_windows_and_a_seed_repeats_the_pass():
    source = FakeSource(3)
    keys = list(source.sites)

    def one_pass(seed):
        stream = TileStream(source, keys, [0, 1, 2], 8, 4, np.random.default_rng(seed), augment=False)
        return [(x.numpy(), y, k) for x, y, k in stream]

    first = one_pass(3)
    for x, _, batch_keys in first:
        for tile, key in zip(x, batch_keys):
            normalised = source.stats.normalize(source.sites[key])
            assert any(np.array_equal(tile, w) for w in _windows(normalised, 8))
    again, other = one_pass(3), one_pass(4)
    assert sum(len(b[1]) for b in first) == 3 * tiles_for_site((20, 20), 8)
    assert all(np.array_equal(a[0], b[0]) and a[2] == b[2] for a, b in zip(first, again))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_tiles_of_two_plates_keep_their_own_statistics():
    one = ChannelStats(["a"], [0.0], [10.0])
    two = ChannelStats(["a"], [100.0], [300.0])
    buffer = _ShuffleBuffer((1, 2, 2), np.uint16, 1 << 20, 4, 4)
    corners = np.zeros(3, dtype=np.int64)
    buffer.add(np.full((1, 4, 4), 5, np.uint16), corners, corners, 0, 0, one)
    buffer.add(np.full((1, 4, 4), 200, np.uint16), corners, corners, 1, 1, two)
    x, y, sites = buffer.take(6, np.random.default_rng(0), augment=True)
    values = x.numpy()[:, 0, 0, 0]
    assert sorted(values.tolist()) == [0.5] * 6 and buffer.size == 0 and sorted(sites) == [0, 0, 0, 1, 1, 1]


def test_device_copy_equals_the_numpy_batch():
    rng = np.random.default_rng(0)
    tiles = RawTiles(rng.integers(0, 4000, (16, 2, 8, 8)).astype(np.uint16), np.sort(rng.integers(0, 8, 16)),
                     np.array([[100.0, 50.0]], np.float32), np.array([[2900.0, 1000.0]], np.float32))
    assert np.array_equal(tiles.to(torch.device("cpu")).numpy(), tiles.numpy())


def test_cut_tiles_normalised_equal_tiles_of_the_normalised_site():
    rng = np.random.default_rng(2)
    site = rng.integers(0, 4000, (3, 37, 29)).astype(np.uint16)
    stats = ChannelStats(["a", "b", "c"], [10.0, 20.0, 30.0], [3000.0, 2000.0, 1000.0])
    assert np.array_equal(normalize_tiles(stats, grid_tiles(site, 16)), grid_tiles(stats.normalize(site), 16))
    small = site[:, :10, :12]  # smaller than a tile: padded, then one tile
    assert np.array_equal(normalize_tiles(stats, grid_tiles(small, 16)), grid_tiles(stats.normalize(small), 16))
