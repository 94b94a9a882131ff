"""The phenotype panel: reference coupling gives the right probabilities; its file round-trips and a
damaged one is refused."""

import math

import numpy as np
import pytest
import torch

from napari_dcmix.errors import CheckpointError, DcmixError
from napari_dcmix.model import ChannelClassifier, load_checkpoint, save_checkpoint
from conftest import constant_member
from napari_dcmix.model.panel import PANEL_KIND, PhenotypePanel


def random_member(seed: int, n_channels: int = 3) -> ChannelClassifier:
    torch.manual_seed(seed)
    model = ChannelClassifier("dcmix", n_channels, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.train()
    model(torch.randn(4, n_channels, 32, 32))  # batch-norm running statistics away from their defaults
    return model.eval()


def test_reference_coupling_gives_the_probabilities_by_hand():
    # classes [a, neg, b]: reference at index 1; a's two members say log odds 1 and 3 (mean 2), b's says -1
    panel = PhenotypePanel([constant_member(1.0), constant_member(3.0), constant_member(-1.0)], [0, 0, 2],
                           n_classes=3, reference_index=1).eval()
    probs = torch.softmax(panel(torch.randn(2, 3, 16, 16)), dim=1).detach().numpy()
    odds_a, odds_b = math.exp(2.0), math.exp(-1.0)
    total = 1 + odds_a + odds_b
    np.testing.assert_allclose(probs, [[odds_a / total, 1 / total, odds_b / total]] * 2, rtol=1e-6)
    # P(a) / P(reference) is exactly the odds the a-members' mean log odds says
    assert probs[0, 0] / probs[0, 1] == pytest.approx(odds_a, rel=1e-6)


def test_alpha_is_one_row_per_phenotype_each_its_members_mean():
    members = [constant_member(0.0, seed=s) for s in range(3)]
    panel = PhenotypePanel(members, [1, 1, 0], n_classes=3, reference_index=2)
    alpha = panel.mixing.alpha().detach().numpy()
    expected_a = members[2].mixing.alpha().detach().numpy()[0]
    expected_b = np.mean([m.mixing.alpha().detach().numpy()[0] for m in members[:2]], axis=0)
    np.testing.assert_allclose(alpha, [expected_a, expected_b], rtol=1e-6)
    assert panel.importance().sum() == pytest.approx(1.0) and panel.kind == PANEL_KIND


def test_a_panel_missing_a_phenotype_or_with_a_multiclass_member_is_refused():
    with pytest.raises(DcmixError, match="every class but the reference"):
        PhenotypePanel([constant_member(1.0)], [0], n_classes=3, reference_index=1)
    with pytest.raises(DcmixError, match="binary DCMIX"):
        PhenotypePanel([ChannelClassifier("dcmix", 3, 3)], [0], n_classes=2, reference_index=1)


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    panel = PhenotypePanel([random_member(s) for s in range(4)], [0, 0, 2, 2], n_classes=3, reference_index=1).eval()
    path = tmp_path / "panel.pt"
    save_checkpoint(path, panel, {"classes": ["a", "neg", "b"]})
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, PhenotypePanel) and meta["model"]["kind"] == PANEL_KIND
    assert loaded.member_class == [0, 0, 2] + [2] and loaded.reference_index == 1
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(panel(x), loaded(x))
    np.testing.assert_array_equal(panel.importance(), loaded.importance())


def test_tampered_or_non_finite_panel_file_is_refused(tmp_path):
    panel = PhenotypePanel([random_member(0), random_member(1)], [1, 1], n_classes=2, reference_index=0)
    path = tmp_path / "panel.pt"
    save_checkpoint(path, panel, {})
    payload = torch.load(path, weights_only=True)
    name = next(k for k in payload["state_dict"] if k.endswith("head.weight"))
    payload["state_dict"][name][0, 0] = float("nan")
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(tmp_path / "nan.pt")
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"][name]  # a member's weight missing: the file does not fit its description
    torch.save(payload, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "missing.pt")
    payload = torch.load(path, weights_only=True)
    payload["metadata_json"] = payload["metadata_json"].replace('"member_class": [1, 1]', '"member_class": [1]')
    torch.save(payload, tmp_path / "described.pt")
    with pytest.raises(CheckpointError, match="cannot build"):
        load_checkpoint(tmp_path / "described.pt")
    with pytest.raises(DcmixError, match="non-finite"):  # and a panel holding NaN is never saved
        with torch.no_grad():
            panel.members[0].head.bias[0] = float("inf")
        save_checkpoint(tmp_path / "bad.pt", panel, {})
    assert not (tmp_path / "bad.pt").exists()
