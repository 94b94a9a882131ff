"""Byte-flip fuzz of TIFF and PNG inputs: whatever a damaged file holds, reading its site gives finite
pixels (with any repair named) or a clean PlateError with a named problem; never another exception,
never a bare tifffile log line. Seeded, bounded, about a second per format."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import tifffile

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import SiteKey, open_plate
from napari_dcmix.plate.problems import Problem

KINDS = {"unreadable", "tiff-log", "stack", "non-finite", "mixed-shapes", "mixed-bit-depth"}
N_CASES = 60


def _mutations(raw: bytes, seed: int, n: int):
    """``n`` damaged copies of ``raw``: 1-4 flipped bytes, or a truncation, or a zeroed run."""
    rng = random.Random(seed)
    for _ in range(n):
        data = bytearray(raw)
        what = rng.random()
        if what < 0.7:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif what < 0.85:
            data = data[: rng.randrange(len(data))]
        else:
            start = rng.randrange(len(data))
            data[start:start + rng.randint(1, 16)] = bytes(min(16, len(data) - start))
        yield bytes(data)


def _check(plate, key, caplog):
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tifffile"):
        try:
            site = plate.read_site(key)
        except PlateError as err:
            assert str(err).startswith(key.label())
            assert plate.problems and plate.problems[-1].action == "skipped"
        else:
            if site.dtype.kind == "f":
                assert np.isfinite(site).all()
    assert not [r for r in caplog.records if r.name == "tifffile"]
    assert all(isinstance(p, Problem) and p.kind in KINDS and p.site == key.label() for p in plate.problems)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_tiff_byte_flips(tmp_path, caplog, dtype):
    root = tmp_path / "plate"
    root.mkdir()
    rng = np.random.default_rng(0)
    good = (rng.random((16, 16)) * 1000).astype(dtype)
    tifffile.imwrite(root / "B02_s1_w1.tif", good)
    tifffile.imwrite(root / "B02_s1_w2.tif", good, compression="zlib")  # compressed strips: other decoder paths
    raws = {name: (root / name).read_bytes() for name in ("B02_s1_w1.tif", "B02_s1_w2.tif")}
    pattern = r"(?P<well>[A-Z]\d+)_s(?P<site>\d+)_(?P<channel>w\d)\.tif"
    for i, name in enumerate(raws):
        for j, data in enumerate(_mutations(raws[name], seed=100 + i, n=N_CASES // 2)):
            (root / name).write_bytes(data)
            _check(open_plate(root, pattern), SiteKey("", "B02", 1), caplog)
        (root / name).write_bytes(raws[name])


def test_png_byte_flips(tmp_path, caplog):
    import imageio.v3 as iio

    root = tmp_path / "Plate1"
    root.mkdir()
    rng = np.random.default_rng(1)
    iio.imwrite(root / "B02_s1_w1.png", (rng.random((16, 16)) * 255).astype(np.uint8))
    iio.imwrite(root / "B02_s1_w2.png", (rng.random((16, 16)) * 60000).astype(np.uint16))
    raw = (root / "B02_s1_w2.png").read_bytes()
    for data in _mutations(raw, seed=7, n=N_CASES):
        (root / "B02_s1_w2.png").write_bytes(data)
        plate = open_plate(root)
        _check(plate, plate.sites[0], caplog)
