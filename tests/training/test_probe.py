"""α starts from what each channel alone answered (training/probe.py): the probing phase feeds single
channels, its evidence is per blend and channel, and α starts on the channel that carries the phenotype."""

import numpy as np
import pytest
import torch

from conftest import SIGNAL_PATTERN, write_phenotype_plate
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.model.coupled import CoupledClassifier
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig, Trainer
from napari_dcmix.training.trainer import tower_norm
from napari_dcmix.training.probe import FLOOR, AlphaSchedule, ChannelProbe


def test_evidence_is_the_share_of_the_chance_loss_a_channel_removed():
    probe = ChannelProbe(n_outputs=1, n_channels=3, n_classes=2)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    choice = torch.tensor([[0], [0], [1], [1], [2], [2]])
    losses = torch.tensor([[np.log(2)], [np.log(2)], [0.0], [0.0], [2.0], [2.0]], dtype=torch.float32)
    probe.add(choice, losses, y)
    np.testing.assert_allclose(probe.mean_losses(), [[np.log(2), 0.0, 2.0]], atol=1e-6)
    # guessing: no evidence; perfect: full evidence; worse than guessing: none (never negative)
    np.testing.assert_allclose(probe.weights(), [[FLOOR, FLOOR + 1.0, FLOOR]], atol=1e-6)


def test_samples_outside_a_blend_s_question_do_not_count():
    probe = ChannelProbe(n_outputs=2, n_channels=2, n_classes=3)
    losses = torch.tensor([[0.1, float("nan")], [0.1, 5.0]])
    probe.add(torch.tensor([[0, 1], [0, 1]]), losses, torch.tensor([1, 0]))
    assert probe.counts[1].sum() == 1 and probe.counts[0].sum() == 2


def test_classes_weigh_the_same_whatever_their_share():
    probe = ChannelProbe(1, 1, 2)
    probe.add(torch.zeros((4, 1), dtype=torch.long), torch.tensor([[1.0], [1.0], [1.0], [0.0]]),
              torch.tensor([0, 0, 0, 1]))
    assert probe.mean_losses()[0, 0] == pytest.approx(0.5)  # (1 + 0) / 2, not 3 / 4


def test_start_from_sets_alpha_and_keeps_every_channel_reachable():
    model = CoupledClassifier(3, 3, 0)
    model.mixing.start_from(np.array([[0.05, 1.0, 0.05], [0.0, 0.0, 0.0]]))
    alpha = model.mixing.alpha().detach().numpy()
    np.testing.assert_allclose(alpha[0], np.array([0.05, 1.0, 0.05]) / 1.1, atol=1e-6)
    np.testing.assert_allclose(alpha[1], [1 / 3] * 3, atol=1e-6)  # no evidence at all: uniform


def test_probing_feeds_single_channels_to_every_head():
    torch.manual_seed(0)
    model = CoupledClassifier(4, 4, 0).train()  # three phenotypes
    model.mixing.probing = True
    x = torch.rand(5, 4, 32, 32)
    logits = model(x)
    assert logits.shape == (5 * 3, 4)  # three channels per tile (one per blend), each read by every head
    choice = model.mixing.last_choice
    assert choice.shape == (15, 3) and torch.equal(choice[:, 0], choice[:, 2])
    per_tile = choice[:, 0].view(5, 3)
    assert all(len(set(row.tolist())) == 3 for row in per_tile)  # distinct channels per tile
    logits.sum().backward()
    assert torch.all(model.mixing.logits.grad == 0)  # α waits while the channels are probed (in the graph for DDP)
    model.mixing.probing = False
    assert model(x).shape == (5, 4)


def test_a_one_blend_model_probes_one_channel_per_sample():
    model = ChannelClassifier("dcmix", 3, 2).train()
    model.mixing.probing = True
    x = torch.stack([torch.full((3, 16, 16), float(c)) for c in range(4)])  # tile i: every channel = i
    blends = model.mixing(x)
    picked = model.mixing.last_choice
    assert blends.shape == (4, 1, 16, 16) and picked.shape == (4, 1)
    losses = model.question_losses(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    assert losses.shape == (4, 1) and torch.allclose(losses, torch.full((4, 1), float(np.log(2))))


def test_no_probing_when_fine_tuning_or_for_one_channel():
    assert AlphaSchedule(CoupledClassifier(1, 2, 0), 0.3, 1000, 2).until == 0
    assert AlphaSchedule(CoupledClassifier(3, 2, 0), 0.0, 1000, 2).until == 0  # plain DCMIX
    schedule = AlphaSchedule(CoupledClassifier(3, 2, 0), 0.3, 1000, 2)
    assert schedule.until == 300 and schedule.probe is not None


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """ch2 alone carries the phenotype among 4 channels."""
    root, csv_path = write_phenotype_plate(tmp_path_factory.mktemp("probe") / "plate", {"positive": 2}, channels=4,
                                           wells_per_class=6)
    plate = open_plate(root, SIGNAL_PATTERN)
    labels = read_labels(csv_path, plate.sites, "phenotype").site_labels
    config = TrainConfig(steps=160, eval_every=20, patience=100, tile=32, batch_size=16, coverage=2, device="cpu",
                         seed=0, model="dcmix-coupled", reference="negative", probe_fraction=0.5)
    trainer = Trainer(plate, labels, config)
    trainer.fit()
    return trainer


def test_the_tower_is_batch_normalised_where_its_statistics_are_sound(probed):
    assert probed.model.norm == "batch"  # 16 tiles of 32 px: 64 values per statistic
    assert tower_norm(32, 64) == "batch" and tower_norm(16, 16) == "group" and tower_norm(4, 32) == "group"


def test_the_evidence_is_judged_on_the_validation_wells(probed):
    evidence = probed.alpha_schedule.result
    assert evidence.counts.sum() == len(probed.val_keys) * 4  # one 32 px tile per site, each of 4 channels alone


def test_alpha_starts_on_the_channel_that_answered_alone(probed):
    evidence = probed.alpha_schedule.result
    weights = evidence.weights()[0]
    assert int(np.argmax(weights)) == 2 and weights[2] > 3 * max(np.delete(weights, 2)), weights
    assert probed.result.importance()["ch2"] > 0.5  # and the end-to-end training kept it there


def test_no_checkpoint_is_chosen_while_probing(probed):
    assert probed.result.metadata["best_step"] >= probed.alpha_schedule.until


def test_progress_says_why_alpha_waits():
    from napari_dcmix.training.events import TrainEvent
    from napari_dcmix.training.explain_text import progress_text
    from napari_dcmix.training.explain_matrix import ExplainEvent
    from napari_dcmix.training.progress import status_text

    early = TrainEvent("step", 1, 10, step=120, total_steps=1000, loss=0.7, train_accuracy=0.5, eta=30.0,
                       probe_until=300)
    assert "each channel alone first (α starts at step 300)" in status_text(early)
    late = TrainEvent("step", 8, 10, step=400, total_steps=1000, loss=0.3, train_accuracy=0.9, eta=10.0,
                      probe_until=300)
    assert "alone" not in status_text(late)
    text = progress_text(ExplainEvent("train", "fold 2/3", 1, 3, train_event=early))
    assert text == "model 2/3: coupled model, fold 2/3, step 120/1000, each channel alone first (α starts at step 300)"
    side = progress_text(ExplainEvent("train", "fold 1/3", 0, 3, train_event=late, side_by_side=2, in_flight=0.8))
    assert side == "models 1–2/3 side by side: coupled model, fold 1/3, step 400/1000"
    assert ExplainEvent("train", "fold 1/3", 0, 3, train_event=late, side_by_side=2, in_flight=0.8).fraction == (
        pytest.approx(0.8 / 3))  # both models' progress, not this one's alone
