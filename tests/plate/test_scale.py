"""Opening a full 384-well plate (384 wells x 9 sites x 5 channels = 17,280 files) by names alone.

One tiny TIFF is hard-linked under every ImageXpress name, so building the folder is cheap; opening it
must not read a single pixel. How long it takes is measured by ``benchmarks/plate_browser.py`` (96 /
384 / 1536 wells side by side), not asserted here: machines are noisy.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tifffile

from napari_dcmix.plate import SiteKey, open_plate
from napari_dcmix.plate.wells import well_id

GUID = "8D2F3A1B-1C2D-4E5F-8A9B-0C1D2E3F4A5B"
ROWS, COLS, SITES, CHANNELS = 16, 24, 9, 5


def _build(root, rows, cols, sites, channels, thumbs=True):
    """Hard-link one 8x8 TIFF under every ImageXpress name (a fresh source every 50,000 links: ext4
    allows about 65,000 links to one file)."""
    (root / "TimePoint_1").mkdir(parents=True)
    n = 0
    for r in range(rows):
        for c in range(1, cols + 1):
            well = well_id(r, c)
            for s in range(1, sites + 1):
                for ch in range(1, channels + 1):
                    if n % 50_000 == 0:
                        src = root.parent / f"{root.name}_{n}.tif"
                        tifffile.imwrite(src, np.arange(64, dtype=np.uint16).reshape(8, 8))
                    _place(src, root / "TimePoint_1" / f"Screen_2024_{well}_s{s}_w{ch}{GUID}.tif")
                    n += 1
                    if thumbs and s == 1 and ch == 1:
                        _place(src, root / "TimePoint_1" / f"Screen_2024_{well}_s{s}_w{ch}_thumb{GUID}.tif")
    return root


def _place(src, dst):
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links (or at its link limit): a copy is fine too
        shutil.copyfile(src, dst)


@pytest.fixture(scope="module")
def plate_384(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("scale") / "Plate_7", ROWS, COLS, SITES, CHANNELS)


def _forbid_pixel_reads(monkeypatch):
    import imageio.v3 as iio

    from napari_dcmix.plate import index, reader

    def boom(*args, **kwargs):
        raise AssertionError("open_plate read pixels")

    for module, name in ((reader, "_read_2d"), (reader, "_load"), (reader, "multichannel_info"),
                         (index, "multichannel_info"), (tifffile, "imread"), (tifffile, "TiffFile"), (iio, "imread")):
        monkeypatch.setattr(module, name, boom)


def test_open_384_well_plate_without_pixels(plate_384, monkeypatch):
    _forbid_pixel_reads(monkeypatch)
    plate = open_plate(plate_384)
    assert plate.layout == "imagexpress"
    assert len(plate.sites) == ROWS * COLS * SITES
    assert plate.channels == [f"w{c}" for c in range(1, CHANNELS + 1)]
    assert plate.format.wells == 384 and len(plate.wells()) == 384
    assert plate.plates == ["Screen_2024"] and plate.problems == []
    assert plate.sites_of("P24")[-1] == SiteKey("Screen_2024", "P24", 9)
    monkeypatch.undo()
    assert plate.read_site(SiteKey("Screen_2024", "P24", 9)).shape == (CHANNELS, 8, 8)  # reads work afterwards


@pytest.mark.skipif(not os.environ.get("DCMIX_SCALE_1536"), reason="set DCMIX_SCALE_1536=1 to index 82,944 files")
def test_open_1536_well_plate(tmp_path, monkeypatch):
    root = _build(tmp_path / "Plate_1536", 32, 48, 9, 6, thumbs=False)
    _forbid_pixel_reads(monkeypatch)
    plate = open_plate(root)
    assert len(plate.sites) == 32 * 48 * 9 and plate.format.wells == 1536
