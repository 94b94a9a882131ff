"""Compressed TIFFs as vendors write them (LZW, zlib/deflate, zstd): tifffile decodes them through
imagecodecs, a dependency. They open, train and predict like plain files; without imagecodecs each
file is named with the fix (``pip install imagecodecs``), never an unexplained decoder error."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from conftest import SIGNAL_PATTERN, write_signal_plate

from napari_dcmix.cli import main

CODECS = ("lzw", "zlib", "zstd")


def compress_plate(root, codecs=CODECS):
    """Rewrite channel c of every site with ``codecs[c]``: one plate, three compressions."""
    for path in sorted(root.glob("*.tif")):
        codec = codecs[int(path.stem[-1]) % len(codecs)]
        tifffile.imwrite(path, tifffile.imread(path), compression=codec)


@pytest.fixture
def compressed_plate(tmp_path):
    root, labels = write_signal_plate(tmp_path / "plate", wells_per_class=3, sites=1, size=32)
    plain = {p.name: tifffile.imread(p) for p in root.glob("*.tif")}
    compress_plate(root)
    return root, labels, plain


def test_the_plate_really_is_compressed(compressed_plate):
    root, _, plain = compressed_plate
    seen = set()
    for path in root.glob("*.tif"):
        with tifffile.TiffFile(path) as tif:
            seen.add(tif.pages[0].compression.name)
        assert np.array_equal(tifffile.imread(path), plain[path.name])  # lossless, same pixels
    assert seen == {"LZW", "ADOBE_DEFLATE", "ZSTD"}


def test_compressed_plate_opens_trains_and_predicts(compressed_plate, tmp_path, capsys):
    root, labels, _ = compressed_plate
    assert main(["inspect", str(root), "--pattern", SIGNAL_PATTERN, "--check", "--json"]) == 0
    out, err = capsys.readouterr()
    info = json.loads(out)
    assert info["problems"] == [] and info["sites"] == 1 and "warning" not in err
    model = tmp_path / "m.pt"
    assert main(["train", str(root), "--pattern", SIGNAL_PATTERN, "--labels", str(labels), "--label-column",
                 "phenotype", "--out", str(model), "--tile", "16", "--steps", "10", "--device", "cpu",
                 "--json"]) == 0, capsys.readouterr().err
    trained = json.loads(capsys.readouterr().out)
    assert trained["problems"] == [] and trained["steps"] >= 1
    assert main(["predict", str(model), str(root), "--pattern", SIGNAL_PATTERN, "--out", str(tmp_path / "p.csv"),
                 "--device", "cpu"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert len(list(csv.DictReader(open(tmp_path / "p.csv")))) == 6


@pytest.mark.parametrize("codec", ["lzw", "zstd"])
def test_without_imagecodecs_each_file_says_to_install_it(tmp_path, codec):
    """A fresh interpreter where imagecodecs cannot be imported, as on an install that lacks it."""
    root, _ = write_signal_plate(tmp_path / "plate", wells_per_class=3, sites=1, size=32)
    compress_plate(root, (codec,))
    code = ("import sys; sys.modules['imagecodecs'] = None\n"
            "from napari_dcmix.cli import main\n"
            f"sys.exit(main(['inspect', {str(root)!r}, '--pattern', {SIGNAL_PATTERN!r}, '--check']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 7 and all(f"its {codec.upper()} compression needs the imagecodecs package" in w
                          and "pip install imagecodecs" in w for w in warned), warned
