"""Sites lost while a run trains (issue 22): a site file deleted or truncated mid-run is named once and
skipped, and the run goes on; beyond 5 % of the run's sites, or 20 % of one class's wells, the run stops
with its best model kept and a message saying how many, which and what to do; a storage that stops
answering stops the run at once (its best model kept) and is never retried site by site."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.errors import PlateError, SourceUnavailable
from napari_dcmix.plate import SiteKey, open_plate, read_labels
from napari_dcmix.training import TrainConfig, TrainedModel, Trainer
from napari_dcmix.training.site_losses import MAX_SITE_SHARE, SiteLosses, SitesLost

FAST = dict(tile=16, batch_size=16, coverage=2, seed=0, eval_every=10, patience=1000, probe_fraction=0.0)  # checkpoints from the start


def keys(wells, sites=2):
    return [SiteKey("", w, s) for w in wells for s in range(1, sites + 1)]


# --- the rule ---------------------------------------------------------------------------------------------
def test_only_a_site_read_before_or_gone_from_disk_is_a_loss():
    labels = {k: "a" if k.well < "C" else "b" for k in keys(["B02", "B03", "C02", "C03"])}
    losses = SiteLosses(labels)
    damaged = PlateError("B02 s1: B02_s1_ch0.tif could not be read (truncated)")
    losses.failed(SiteKey("", "B02", 1), damaged)  # unreadable from the start: never part of the run
    assert losses.lost == {} and losses.too_many() is None
    losses.read(SiteKey("", "B03", 1))
    losses.failed(SiteKey("", "B03", 1), damaged)  # read earlier in the run: lost
    vanished = PlateError("C02_s2_ch1.tif has disappeared since the plate was opened")
    vanished.problem = type("P", (), {"kind": "vanished"})()
    losses.failed(SiteKey("", "C02", 2), vanished)  # its file was there when the plate was opened: lost
    assert sorted(k.label() for k in losses.lost) == ["B03 s1", "C02 s2"]
    assert [k.label() for k, _ in losses.take_fresh()] == ["B03 s1", "C02 s2"] and losses.take_fresh() == []


def test_more_than_five_percent_of_the_sites_stops_the_run():
    labels = {k: "a" if i % 2 else "b" for i, k in enumerate(keys([f"B{c:02d}" for c in range(2, 22)]))}  # 40 sites
    losses = SiteLosses(labels)
    for key in list(labels)[:2]:  # 2 of 40 = 5 %: still goes on
        losses.read(key)
        losses.failed(key, PlateError("gone"))
    assert 2 <= MAX_SITE_SHARE * 40 and losses.too_many() is None
    losses.check("at step 7")
    lost = list(labels)[2]
    losses.read(lost)
    losses.failed(lost, PlateError("gone"))
    with pytest.raises(SitesLost) as err:
        losses.check("at step 9")
    message = str(err.value)
    assert message.startswith("training stopped at step 9: 3 of its 40 labelled sites (8 %) could not be read any more")
    assert "B02 s1, B02 s2, B03 s1" in message and "more than the 5 % a run may lose" in message
    assert "check the plate folder" in message


def test_more_than_twenty_percent_of_one_class_wells_stops_the_run():
    many = [f"{r}{c:02d}" for r in "BCDE" for c in range(2, 12)]  # 40 wells of 'negative'
    labels = {k: "negative" for k in keys(many)} | {k: "rare" for k in keys(["G02", "G03", "G04", "G05"])}
    losses = SiteLosses(labels)
    losses.failed(SiteKey("", "G02", 1), PlateError("damaged from the start"))  # never part of the run
    losses.read(SiteKey("", "G02", 2))
    losses.failed(SiteKey("", "G02", 2), PlateError("deleted"))  # 1 of 88 sites; its well is gone: 1 of 4 rare wells
    with pytest.raises(SitesLost, match=r"1 of the 4 wells of class 'rare' \(25 %\) could not be read any more \(G02\)"):
        losses.check()


# --- training on a plate whose files go away mid-run -----------------------------------------------------
@pytest.fixture
def signal(tmp_path):
    root, csv_path = write_signal_plate(tmp_path / "plate", signal_channel=1, wells_per_class=8, sites=2)
    plate = open_plate(root, SIGNAL_PATTERN)
    return root, plate, read_labels(csv_path, plate.sites, "phenotype").site_labels


def forget_pixels(trainer):
    """A plate larger than memory: every site is read from disk again at each pass (no cache holds it)."""
    trainer.source.cache_bytes = 0
    trainer.source._cache.clear()
    trainer.plate._cache.max_sites = 0
    trainer.plate._cache._items.clear()


def run_until_first_evaluation_then(trainer, damage):
    """Run; at the first held-out evaluation, ``damage()`` the plate; return the events after it."""
    events, after = trainer.run(), []
    for event in events:
        if after or event.kind == "epoch":
            if not after:
                forget_pixels(trainer)
                damage()
            after.append(event)
    return after


@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_a_site_lost_mid_run_is_named_once_and_training_goes_on(signal, how):
    root, plate, labels = signal
    trainer = Trainer(plate, labels, TrainConfig(steps=50, **FAST))
    key = trainer.train_keys[0]
    path = root / f"{key.well}_s{key.site}_ch1.tif"
    damage = path.unlink if how == "deleted" else (lambda: path.write_bytes(path.read_bytes()[:300]))
    after = run_until_first_evaluation_then(trainer, damage)
    assert after[-1].kind == "done" and after[-1].step == 50  # 1 of 32 sites lost: trained to the end
    named = [p for p in plate.problems if p.site == key.label()]
    assert len(named) == 1 and named[0].action == "skipped" and path.name in named[0].message
    assert list(trainer.losses.lost) == [key] and "1 of the 32 labelled sites" in trainer.losses.summary()
    assert np.isfinite(trainer.result.model.mixing.logits.detach().numpy()).all()


def test_too_many_sites_lost_stops_with_the_best_model_kept(signal, tmp_path):
    root, plate, labels = signal
    trainer = Trainer(plate, labels, TrainConfig(steps=200, **FAST))
    gone = trainer.train_keys[:4]  # 4 of 32 sites: more than 5 %

    def delete():
        for key in gone:
            (root / f"{key.well}_s{key.site}_ch0.tif").unlink()

    with pytest.raises(SitesLost) as err:
        run_until_first_evaluation_then(trainer, delete)
    message = str(err.value)
    assert message.startswith("training stopped at step ") and "4 of its 32 labelled sites (12 %)" in message
    assert all(key.label() in message for key in gone)
    assert trainer.has_best_model and trainer.result.metadata["steps"] < 20  # stopped in the next pass
    trainer.result.save(tmp_path / "best.pt")
    assert TrainedModel.load(tmp_path / "best.pt").channels == ["ch0", "ch1", "ch2"]


def test_every_training_site_gone_stops_instead_of_looping(signal):
    root, plate, labels = signal
    trainer = Trainer(plate, labels, TrainConfig(steps=200, **FAST))

    def delete_all():
        for path in root.glob("*_ch2.tif"):
            path.unlink()

    with pytest.raises(SitesLost, match=r"training stopped in a pass over the training sites: \d+ of its 32 labelled"):
        run_until_first_evaluation_then(trainer, delete_all)


def test_a_storage_that_stops_answering_stops_at_once_and_is_not_asked_again(signal, monkeypatch):
    _, plate, labels = signal
    trainer = Trainer(plate, labels, TrainConfig(steps=200, **FAST))
    asked = []

    def dropped():
        def read_site(key):
            asked.append(key)
            raise SourceUnavailable("the plate server stopped answering (timeout after 5 tries)")
        monkeypatch.setattr(plate, "read_site", read_site)

    with pytest.raises(SourceUnavailable) as err:
        run_until_first_evaluation_then(trainer, dropped)
    message = str(err.value)
    assert message.startswith("training stopped ") and "the plate's storage stopped answering at " in message
    assert "timeout after 5 tries" in message and "re-run when the server answers" in message
    assert len(asked) <= 16  # the first failures (reads already on their way); then no site is asked for again
    assert trainer.has_best_model and trainer.result is not None and list(trainer.losses.lost) == []
    assert not [p for p in plate.problems if "timeout" in p.message]
