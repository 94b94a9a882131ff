"""The coupled per-phenotype DCMIX: each phenotype's log odds against the reference come from its own
blend only, the reference's logit is 0, and it saves, loads and joins a phenotype panel."""

import numpy as np
import torch

from napari_dcmix.model.coupled import COUPLED_KIND, CoupledClassifier
from napari_dcmix.model.panel import PhenotypePanel, build_model


def model(n_classes=3, reference=1, channels=4):
    torch.manual_seed(0)
    return CoupledClassifier(channels, n_classes, reference).eval()


def test_logits_put_the_reference_at_zero_and_one_blend_per_phenotype():
    m = model()
    x = torch.rand(5, 4, 32, 32)
    logits = m(x)
    assert logits.shape == (5, 3) and torch.all(logits[:, 1] == 0)
    assert m.mixing.alpha().shape == (2, 4) and m.phenotype_classes() == [0, 2]
    torch.testing.assert_close(logits[:, [0, 2]], m.log_odds(x))


def test_each_phenotype_s_log_odds_depend_on_its_own_blend_only():
    m = model().train()
    r = m.log_odds(torch.rand(3, 4, 32, 32))
    r[:, 0].sum().backward()
    grad = m.mixing.logits.grad
    assert grad[0].abs().sum() > 0 and torch.all(grad[1] == 0)  # row 1 (the other phenotype) untouched


def test_a_model_saved_before_the_batch_normalised_tower_still_builds():
    old = {k: v for k, v in model().config().items() if k != "norm"}
    assert build_model(old).norm == "group"


def test_config_round_trip_and_panel_membership():
    m = model().eval()  # a saved model predicts in eval mode (its tower's batch norm on running statistics)
    again = build_model(m.config()).eval()
    assert isinstance(again, CoupledClassifier) and again.kind == COUPLED_KIND and again.norm == "batch"
    again.load_state_dict(m.state_dict())
    x = torch.rand(2, 4, 32, 32)
    torch.testing.assert_close(again(x), m(x))
    panel = PhenotypePanel([m, again], [None, None], 3, 1).eval()  # coupled members cover every phenotype
    torch.testing.assert_close(panel(x), m(x))  # the mean of two identical members' log odds
    assert panel.coverage().tolist() == [[True, False, True]] * 2
    torch.testing.assert_close(panel.phenotype_alpha(), m.mixing.alpha())
    rebuilt = build_model(panel.config())
    assert rebuilt.member_class == [None, None]


def test_a_panel_of_pair_members_is_read_as_before():
    from napari_dcmix.model import ChannelClassifier

    torch.manual_seed(1)
    pair = ChannelClassifier("dcmix", 4, 2).eval()
    panel = PhenotypePanel([pair], [0], 2, 1).eval()
    x = torch.rand(2, 4, 32, 32)
    logits = pair(x)
    expected = torch.stack([logits[:, 1] - logits[:, 0], torch.zeros(2)], dim=1)
    torch.testing.assert_close(panel(x), expected)
    assert np.isclose(panel.importance().sum(), 1.0)


def test_the_anchor_loss_asks_each_phenotype_its_own_question():
    m = model()  # classes 0 and 2 are phenotypes, 1 the reference
    y = torch.tensor([0, 1, 2, 1])
    sure = torch.tensor([[9.0, 0, -9], [-9, 0, -9], [-9, 0, 9], [-9, 0, -9]])  # every r_k right, confidently
    assert m.anchor_loss(sure, y) < 1e-3
    wrong = torch.tensor([[-9.0, 0, 0], [9, 0, 0], [0, 0, 0], [0, 0, 0]])  # phenotype 0's question answered wrong
    assert m.anchor_loss(wrong, y) > 1.0
    # a tile of phenotype 2 does not enter phenotype 0's question (only k's and the reference's tiles do)
    only_other = torch.tensor([[0.0, 0, 0], [-9, 0, 0], [9, 0, 9], [-9, 0, 0]])
    ref_and_2 = torch.tensor([[0.0, 0, 0], [-9, 0, 0], [-9, 0, 9], [-9, 0, 0]])
    torch.testing.assert_close(m.anchor_loss(only_other, y), m.anchor_loss(ref_and_2, y))
