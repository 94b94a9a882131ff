"""The synthetic sample plate: deterministic, complete, cached, and its answer is morphological."""

from __future__ import annotations

import csv
import json
import os
import re

import numpy as np
import pytest
import tifffile

from napari_dcmix.errors import PlateError
import napari_dcmix.plate.sample as sample
from napari_dcmix.plate.sample import (
    CHANNELS,
    LABEL_COLUMN,
    is_complete,
    sample_plate_dir,
    write_sample_plate,
)


@pytest.fixture(scope="module")
def small_plate(tmp_path_factory):
    return write_sample_plate(tmp_path_factory.mktemp("plate") / "p", wells=96, sites=1, size=64, seed=3)


def _labels(root):
    with open(root / "labels.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_files_names_and_pixels(small_plate):
    manifest = json.loads((small_plate / "dcmix_plate.json").read_text())
    assert manifest["layout"] == "dcmix-sample" and manifest["channels"] == list(CHANNELS)
    assert (manifest["wells"], manifest["sites"], manifest["size"], manifest["seed"]) == (96, 1, 64, 3)
    names = sorted(p.name for p in (small_plate / "images").iterdir())
    assert len(names) == 96 * 1 * 5
    assert "A01_s1_DNA.tif" in names and "H12_s1_Mito.tif" in names
    pattern = re.compile(manifest["pattern"])
    for name in names:
        m = pattern.search(f"images/{name}")
        assert m and m["channel"] in CHANNELS and m["site"] == "1"
    img = tifffile.imread(small_plate / "images" / "B02_s1_ER.tif")
    assert img.dtype == np.uint16 and img.shape == (64, 64)
    assert 80 < np.percentile(img, 10) < 400 and img.max() < 65535  # camera offset + background, no clipping
    assert is_complete(small_plate)


def test_labels_and_ground_truth(small_plate):
    rows = _labels(small_plate)
    assert len(rows) == 96 and list(rows[0]) == ["well", LABEL_COLUMN, "well_type"]
    labels = [r[LABEL_COLUMN] for r in rows if r[LABEL_COLUMN]]
    classes = set(labels)
    assert len(classes) >= 3 and "negative_control" in classes
    assert 5 <= 96 - len(labels) <= 15  # ~10% unknown wells to predict
    assert all(labels.count(k) >= 0.15 * len(labels) for k in classes)
    assert {r["well_type"] for r in rows} == {"negative_control", "positive_control", "treatment"}
    assert all(r[LABEL_COLUMN] == "negative_control" for r in rows if r["well"].endswith(("01", "12")))
    truth = json.loads((small_plate / "ground_truth.json").read_text())
    imp = truth["importance"]
    assert set(imp) == set(CHANNELS) and abs(sum(imp.values()) - 1) < 1e-4
    assert imp["DNA"] == 0 and imp["AGP"] == 0
    assert min(imp["Mito"], imp["ER"], imp["RNA"]) > 0.2  # each phenotype carries a real share
    assert len({imp["Mito"], imp["ER"], imp["RNA"]}) == 3  # an unambiguous ranking
    assert truth["phenotype_channel"] == {"mito_fragmented": "Mito", "er_stress": "ER", "nucleolar": "RNA"}
    assert set(truth["classes"]) == classes and truth["label_column"] == LABEL_COLUMN
    assert set(truth["unlabeled_truth"]) == {r["well"] for r in rows if not r[LABEL_COLUMN]}


def test_deterministic(tmp_path, small_plate):
    again = write_sample_plate(tmp_path / "a", wells=96, sites=1, size=64, seed=3)
    other = write_sample_plate(tmp_path / "b", wells=96, sites=1, size=64, seed=4)
    for name in ("A01_s1_DNA.tif", "C05_s1_Mito.tif", "H11_s1_RNA.tif"):
        same = (again / "images" / name).read_bytes()
        assert same == (small_plate / "images" / name).read_bytes()
        assert same != (other / "images" / name).read_bytes()
    assert (again / "labels.csv").read_text() == (small_plate / "labels.csv").read_text()
    assert (again / "ground_truth.json").read_text() == (small_plate / "ground_truth.json").read_text()


def test_384_wells(tmp_path):
    root = write_sample_plate(tmp_path / "p384", wells=384, sites=1, size=48, seed=1)
    assert len(list((root / "images").glob("*.tif"))) == 384 * 5
    assert (root / "images" / "P24_s1_AGP.tif").is_file()
    rows = _labels(root)
    assert len(rows) == 384 and 30 <= sum(not r[LABEL_COLUMN] for r in rows) <= 45


@pytest.mark.parametrize(
    "kwargs",
    [{"wells": 48}, {"wells": 1536}, {"wells": "96"}, {"sites": 0}, {"size": 47}, {"size": 64.0}, {"seed": -1}],
)
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(PlateError):
        write_sample_plate(tmp_path / "p", **kwargs)
    assert not (tmp_path / "p").exists()


def test_refuses_foreign_folder_but_overwrites_own(tmp_path):
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    with pytest.raises(PlateError, match="not empty"):
        write_sample_plate(foreign, sites=1, size=48)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    (foreign / "dcmix_plate.json").write_text('{"layout": "someone-else"}')
    with pytest.raises(PlateError):
        write_sample_plate(foreign, sites=1, size=48)
    with pytest.raises(PlateError):
        write_sample_plate(foreign / "notes.txt", sites=1, size=48)

    own = write_sample_plate(tmp_path / "own", wells=384, sites=1, size=48)
    write_sample_plate(own, wells=96, sites=1, size=48, seed=5)  # a previous sample plate: overwritten
    assert is_complete(own) and len(list((own / "images").glob("*.tif"))) == 96 * 5
    assert json.loads((own / "dcmix_plate.json").read_text())["seed"] == 5


def test_half_written_plate_is_incomplete(tmp_path, monkeypatch):
    root = write_sample_plate(tmp_path / "p", sites=1, size=48)
    (root / "images" / "A01_s1_DNA.tif").unlink()
    assert not is_complete(root) and not is_complete(tmp_path / "missing")
    calls, real_imwrite = [], tifffile.imwrite

    def crash(path, data):
        calls.append(path)
        if len(calls) > 7:
            raise OSError(28, "No space left on device")
        real_imwrite(path, data)

    monkeypatch.setattr("napari_dcmix.plate.sample.tifffile.imwrite", crash)
    with pytest.raises(PlateError, match="No space left"):
        write_sample_plate(root, sites=1, size=48, seed=1)
    assert not (root / "dcmix_plate.json").exists() and not is_complete(root)
    monkeypatch.undo()
    write_sample_plate(root, sites=1, size=48, seed=1)  # an unfinished sample plate may be regenerated
    assert is_complete(root)
    (root / "dcmix_plate.json").unlink()  # no manifest, no marker: not recognisably ours any more
    with pytest.raises(PlateError):
        write_sample_plate(root, sites=1, size=48)


def test_sample_plate_dir_caches(tmp_path):
    root = sample_plate_dir(wells=96, sites=1, size=48, seed=2, cache_dir=tmp_path)
    assert root.parent == tmp_path and root.name == f"sample-plate-v{sample.GENERATOR_VERSION}-96w-1s-48px-seed2"
    assert is_complete(root) and not [p for p in tmp_path.iterdir() if p != root]  # no temp folder left
    manifest = root / "dcmix_plate.json"
    stamp = (manifest.stat().st_mtime_ns, (root / "images" / "A01_s1_DNA.tif").stat().st_mtime_ns)
    assert sample_plate_dir(wells=96, sites=1, size=48, seed=2, cache_dir=tmp_path) == root
    assert stamp == (manifest.stat().st_mtime_ns, (root / "images" / "A01_s1_DNA.tif").stat().st_mtime_ns)


def test_sample_plate_dir_uses_xdg_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = sample_plate_dir(sites=1, size=48, seed=1)
    assert root == tmp_path / "xdg" / "napari-dcmix" / f"sample-plate-v{sample.GENERATOR_VERSION}-96w-1s-48px-seed1"
    assert is_complete(root)


def _box(x):
    return (x + np.roll(x, 1, 0) + np.roll(x, -1, 0) + np.roll(x, 1, 1) + np.roll(x, -1, 1)) / 5


def _spot_fraction(img):
    """Share of the signal in small bright spots (a difference of blurs): a texture, not a brightness."""
    x = img.astype(np.float64)
    x = np.maximum(x - np.percentile(x, 20), 0)
    fine = _box(_box(x))
    return np.maximum(fine - _box(_box(_box(fine))), 0).sum() / x.sum()


def _auc(neg, pos):
    neg, pos = np.asarray(neg)[None], np.asarray(pos)[:, None]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def test_phenotype_is_morphological_not_brightness(tmp_path):
    """Mean Mito intensity does not separate fragmented from control wells; a texture statistic does."""
    root = write_sample_plate(tmp_path / "p", wells=96, sites=1, size=96, seed=0)
    mean = {"negative_control": [], "mito_fragmented": []}
    spots = {"negative_control": [], "mito_fragmented": []}
    for row in _labels(root):
        if row[LABEL_COLUMN] in mean:
            img = tifffile.imread(root / "images" / f"{row['well']}_s1_Mito.tif")
            mean[row[LABEL_COLUMN]].append(img.mean())
            spots[row[LABEL_COLUMN]].append(_spot_fraction(img))
    assert min(len(v) for v in mean.values()) >= 15
    assert abs(_auc(mean["negative_control"], mean["mito_fragmented"]) - 0.5) < 0.2  # ~chance
    assert _auc(spots["negative_control"], spots["mito_fragmented"]) > 0.85  # texture separates


def test_no_writes_outside_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(os.listdir(tmp_path))
    write_sample_plate(tmp_path / "p", sites=1, size=48)
    assert set(os.listdir(tmp_path)) - before == {"p"}
