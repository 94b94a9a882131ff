"""Shared fixtures: tiny plates written in every supported naming, with deterministic pixels."""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile

WELLS_6 = ["B02", "B03", "C02", "C03", "D02", "D03"]


def site_pixels(well: str, site: int, channel: int, size: int = 16) -> np.ndarray:
    """Deterministic uint16 pixels that differ by well, site and channel (so reads can be checked)."""
    rng = np.random.default_rng(zlib.crc32(f"{well}-{site}-{channel}".encode()))
    base = 100 * (channel + 1) + 10 * site
    return (base + rng.integers(0, 50, size=(size, size))).astype(np.uint16)


def write_imagexpress(root: Path, wells=WELLS_6, sites=2, channels=3, size=16, plate="Plate1") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for well in wells:
        for s in range(1, sites + 1):
            for c in range(channels):
                site_part = f"_s{s}" if sites > 1 else ""
                name = f"{plate}_{well}{site_part}_w{c + 1}9A1E2A7D-1234-ABCD.tif"
                tifffile.imwrite(root / name, site_pixels(well, s, c, size))
                if c == 0 and s == 1:
                    tifffile.imwrite(root / f"{plate}_{well}{site_part}_w{c + 1}_thumb9A1E2A7D-1234.tif", np.zeros((4, 4), np.uint16))
    return root


def write_signal_plate(root: Path, signal_channel: int = 1, channels: int = 3, wells_per_class: int = 8,
                       sites: int = 2, size: int = 32, seed: int = 0) -> tuple[Path, Path]:
    """A tiny plate whose two classes differ only by texture in ``signal_channel``; returns (plate, labels.csv)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = "BCDEFG"
    labels = []
    for i in range(2 * wells_per_class):
        well = f"{rows[i % 6]}{2 + i // 6:02d}"
        cls = "positive" if i % 2 else "negative"
        labels.append((well, cls))
        for s in range(1, sites + 1):
            for c in range(channels):
                img = rng.normal(1000, 60, size=(size, size))
                if c == signal_channel and cls == "positive":
                    yy, xx = np.mgrid[:size, :size]
                    img += 400 * np.sin(xx * 1.3 + rng.uniform(0, 6)) * np.sin(yy * 1.3)
                tifffile.imwrite(root / f"{well}_s{s}_ch{c}.tif", np.clip(img, 0, 65535).astype(np.uint16))
    csv_path = root.parent / f"{root.name}_labels.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["well", "phenotype"])
        writer.writerows(labels)
    return root, csv_path


SIGNAL_PATTERN = r"(?P<well>[A-Z]\d+)_s(?P<site>\d+)_(?P<channel>ch\d)\.tif"


@pytest.fixture
def imagexpress_plate(tmp_path) -> Path:
    return write_imagexpress(tmp_path / "ixm")


@pytest.fixture
def signal_plate(tmp_path) -> tuple[Path, Path]:
    return write_signal_plate(tmp_path / "signal")
