import math

import numpy as np
import pytest

from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.errors import CheckpointError, DcmixError
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig, TrainedModel, Trainer, predict_sites, run_permutation_importance
from napari_dcmix.training.data import grid_tiles, split_by_well, tiles_for_site

FAST = dict(tile=16, batch_size=16, coverage=2, seed=0)


@pytest.fixture(scope="module")
def signal(tmp_path_factory):
    root, csv_path = write_signal_plate(tmp_path_factory.mktemp("sig") / "plate", signal_channel=1)
    plate = open_plate(root, SIGNAL_PATTERN)
    labels = read_labels(csv_path, plate.sites, "phenotype")
    return plate, labels


@pytest.fixture(scope="module")
def trained(signal):
    plate, labels = signal
    return Trainer(plate, labels.site_labels, TrainConfig(epochs=5, **FAST)).fit()


def test_signal_channel_ranks_first(trained):
    importance = trained.importance()
    assert max(importance, key=importance.get) == "ch1"
    assert importance["ch1"] > 0.6
    assert trained.metadata["val_accuracy"] == 1.0


def test_split_keeps_wells_together(signal):
    _, labels = signal
    train, val = split_by_well(labels.site_labels, 0.25, seed=0)
    assert {(k.plate, k.well) for k in train}.isdisjoint({(k.plate, k.well) for k in val})
    assert {labels.site_labels[k] for k in val} == {"negative", "positive"}
    assert len(train) + len(val) == len(labels.site_labels)


def test_tiles_cover_site_area():
    assert tiles_for_site((96, 96), 96) == 1
    assert tiles_for_site((2160, 2160), 96) == 507
    site = np.arange(3 * 40 * 40, dtype=np.float32).reshape(3, 40, 40)
    tiles = grid_tiles(site, 16)
    assert tiles.shape == (9, 3, 16, 16)
    np.testing.assert_array_equal(tiles[-1], site[:, 24:, 24:])


def test_events_are_a_generator_with_progress(signal):
    plate, labels = signal
    events = list(Trainer(plate, labels.site_labels, TrainConfig(epochs=1, **FAST)).run())
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "epoch" in kinds and "step" in kinds
    steps = [e for e in events if e.kind == "step"]
    assert steps[-1].step == steps[-1].total_steps and steps[-1].eta == pytest.approx(0, abs=1e-6)
    assert math.isclose(sum(steps[0].importance.values()), 1.0)


def test_cancel_mid_training_keeps_a_valid_model(signal, tmp_path):
    plate, labels = signal
    trainer = Trainer(plate, labels.site_labels, TrainConfig(epochs=50, **FAST))
    events = trainer.run()
    for event in events:
        if event.kind == "step" and event.step == 3:
            break
    events.close()
    result = trainer.result
    assert result is not None and result.metadata["cancelled"] is True
    result.save(tmp_path / "best.pt")
    loaded = TrainedModel.load(tmp_path / "best.pt")
    assert loaded.channels == ["ch0", "ch1", "ch2"]
    assert len(list(predict_sites(loaded, plate))) == len(plate.sites)


def test_reproducible_on_cpu(signal):
    plate, labels = signal
    a = Trainer(plate, labels.site_labels, TrainConfig(epochs=1, **FAST)).fit().importance()
    b = Trainer(plate, labels.site_labels, TrainConfig(epochs=1, **FAST)).fit().importance()
    assert a == b


@pytest.mark.parametrize("kind", ["all-channels", "se-attention"])
def test_baselines_train_with_the_same_engine(signal, kind, tmp_path):
    plate, labels = signal
    result = Trainer(plate, labels.site_labels, TrainConfig(model=kind, epochs=1, **FAST)).fit()
    result.save(tmp_path / "m.pt")
    loaded = TrainedModel.load(tmp_path / "m.pt")
    assert loaded.kind == kind
    assert (loaded.importance() is None) == (kind == "all-channels")


def test_bad_training_input(signal):
    plate, labels = signal
    one_class = {k: v for k, v in labels.site_labels.items() if v == "negative"}
    with pytest.raises(DcmixError, match="only one class"):
        Trainer(plate, one_class, TrainConfig(**FAST))
    with pytest.raises(DcmixError, match="no labeled sites"):
        Trainer(plate, {}, TrainConfig(**FAST))
    with pytest.raises(DcmixError, match="unknown"):
        Trainer(plate, labels.site_labels, TrainConfig(model="vit", **FAST))


def test_predictions_and_permutation_match_the_signal(trained, signal):
    plate, labels = signal
    preds = {p.key: p.probabilities for p in predict_sites(trained, plate)}
    correct = [trained.classes[int(np.argmax(preds[k]))] == v for k, v in labels.site_labels.items()]
    assert np.mean(correct) >= 0.9
    perm = run_permutation_importance(trained, plate, labels.site_labels)
    assert max(perm["drop"], key=perm["drop"].get) == "ch1"
    assert perm["drop"]["ch1"] > 0.2


def test_fine_tune_matches_channels_by_name(trained, tmp_path):
    # same channels in another order on disk: still fine; a missing channel: a clear error
    root, csv_path = write_signal_plate(tmp_path / "other", signal_channel=1, channels=2)
    plate = open_plate(root, SIGNAL_PATTERN)
    labels = read_labels(csv_path, plate.sites, "phenotype")
    with pytest.raises(CheckpointError, match="ch2"):
        Trainer(plate, labels.site_labels, TrainConfig(epochs=1, **FAST), init=trained)


def test_fine_tune_new_classes_get_a_new_head(trained, signal):
    plate, labels = signal
    renamed = {k: ("ctrl" if v == "negative" else "hit") for k, v in labels.site_labels.items()}
    result = Trainer(plate, renamed, TrainConfig(epochs=1, **FAST), init=trained).fit()
    assert result.classes == ["ctrl", "hit"]
    assert result.model.n_classes == 2
