"""ImportanceSnapshot: α always travels with what says how far to trust it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig, Trainer
from napari_dcmix.training.snapshot import ImportanceSnapshot


def test_trainer_events_carry_live_then_judged_snapshots(tmp_path):
    root, csv = write_signal_plate(tmp_path / "p", signal_channel=1)
    plate = open_plate(root, SIGNAL_PATTERN)
    labels = read_labels(csv, plate.sites, "phenotype").well_labels()
    trainer = Trainer(plate, labels, TrainConfig(tile=16, batch_size=16, steps=40, eval_every=20, patience=100,
                                                 device="cpu", seed=0))
    snaps = [(e.kind, e.snapshot) for e in trainer.run() if e.kind in ("start", "epoch", "done")]
    live = [s for kind, s in snaps if kind != "done"]
    assert [s.epoch for s in live] == [0, 1, 2] and len({id(s.token) for s in live}) == 1
    assert all(not s.final and s.verdict is None and s.learned is None for s in live)
    assert [len(s.history) for s in live] == [0, 1, 2]
    for s in live:  # α read off the mixing layer at that moment: rows sum to 1, importance is its mean
        assert s.alpha.shape == (1, 3) and s.alpha.sum() == pytest.approx(1, abs=1e-5)
        assert [s.importance[c] for c in s.channels] == pytest.approx(s.alpha.mean(0), abs=1e-5)
    done = snaps[-1][1]
    assert done.final and done.verdict is not None and done.learned == trainer.result.learned
    assert done.importance == pytest.approx(trainer.result.importance())
    assert "held-out test accuracy" in done.verdict_text()


def test_a_model_saved_before_the_gate_says_it_was_not_judged():
    snap = ImportanceSnapshot(["a"], np.ones((1, 1), np.float32), {"a": 1.0}, val_accuracy=0.8)
    assert snap.learned is None and snap.verdict_text().startswith("not judged") and "80%" in snap.verdict_text()
