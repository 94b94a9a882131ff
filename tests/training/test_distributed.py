"""Data-parallel training and prediction under torchrun (2 CPU processes, gloo), end to end."""

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.training import TrainedModel, predict_sites
from napari_dcmix.plate import open_plate

pytestmark = pytest.mark.timeout(600)


def torchrun(*argv, nproc=2):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "napari_dcmix", *map(str, argv)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=500, env=env)


def test_torchrun_trains_one_model_on_two_processes(tmp_path):
    root, labels = write_signal_plate(tmp_path / "plate", signal_channel=1, wells_per_class=16)
    common = ["--pattern", SIGNAL_PATTERN, "--labels", labels, "--label-column", "phenotype", "--tile", 16,
              "--steps", 40, "--device", "cpu", "--json"]
    proc = torchrun("train", root, "--out", tmp_path / "ddp.pt", *common)
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = json.loads(proc.stdout)  # exactly one JSON object: rank 0 alone prints
    assert payload["world_size"] == 2 and payload["steps"] == 40
    single = subprocess.run([sys.executable, "-m", "napari_dcmix", "train", root, "--out", tmp_path / "one.pt",
                             *map(str, common)], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    alone = json.loads(single.stdout)
    assert alone["world_size"] == 1 and payload["images_seen"] == alone["images_seen"] // 2
    model = TrainedModel.load(tmp_path / "ddp.pt")
    assert max(model.importance(), key=model.importance().get) == "ch1"
    assert len(list(predict_sites(model, open_plate(root, SIGNAL_PATTERN)))) == 64

    proc = torchrun("predict", tmp_path / "ddp.pt", root, "--pattern", SIGNAL_PATTERN, "--out", tmp_path / "p.csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 32  # every well once: the shards of both ranks merged
