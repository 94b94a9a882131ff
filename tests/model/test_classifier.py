"""ChannelClassifier: every kind x backbone runs, importance is sane, DCMIX finds the informative channel."""

import numpy as np
import pytest
import torch

from napari_dcmix.errors import DcmixError
from napari_dcmix.model import (BACKBONES, MODEL_KINDS, ChannelClassifier, ChannelMixing, build_backbone,
                                count_parameters)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_forward_shape_every_kind_and_backbone(kind, backbone):
    model = ChannelClassifier(kind, n_channels=5, n_classes=3, backbone=backbone)
    assert (model.kind, model.n_channels, model.n_classes) == (kind, 5, 3)
    out = model(torch.randn(2, 5, 32, 32))
    assert out.shape == (2, 3)
    imp = model.importance()
    if kind == "all-channels":
        assert imp is None and model.mixing is None
    else:
        assert imp.shape == (5,) and imp.sum() == pytest.approx(1.0) and np.all(imp >= 0)
    assert isinstance(model.mixing, ChannelMixing) == (kind == "dcmix")


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("size", [32, 45, 96])
def test_backbone_any_size(backbone, size):
    net = build_backbone(backbone, in_channels=2).eval()
    assert net(torch.randn(1, 2, size, size)).shape == (1, net.out_features)


def test_unknown_names_raise_dcmix_error():
    with pytest.raises(DcmixError, match="small, resnet18"):
        build_backbone("vgg", 3)
    with pytest.raises(DcmixError, match="dcmix"):
        ChannelClassifier("nope", 3, 2)


def test_multiple_mix_outputs():
    model = ChannelClassifier("dcmix", 4, 2, n_mix_outputs=3, temperature=0.5)
    assert model.mixing.alpha().shape == (3, 4)
    assert model(torch.randn(2, 4, 32, 32)).shape == (2, 2)


def test_se_importance_is_running_mean_of_training_passes():
    model = ChannelClassifier("se-attention", 4, 2)
    x = torch.randn(3, 4, 32, 32)
    model.train()
    model(x)
    with torch.no_grad():
        weights = model.attention.weights(x).mean(0).double().numpy()
    np.testing.assert_allclose(model.importance(), weights / weights.sum(), rtol=1e-5)
    before = model.importance()
    model.eval()
    with torch.no_grad():
        model(torch.randn(3, 4, 32, 32) * 3)  # applying the model leaves its importance alone
    np.testing.assert_array_equal(model.importance(), before)
    model.train()
    model(torch.randn(3, 4, 32, 32) * 3)
    assert model.importance().sum() == pytest.approx(1.0)
    assert int(model.attention.attention_count) == 2


def test_config_round_trip():
    model = ChannelClassifier("dcmix", 6, 4, backbone="small", n_mix_outputs=2, temperature=0.7)
    cfg = model.config()
    assert cfg == {"kind": "dcmix", "n_channels": 6, "n_classes": 4, "backbone": "small",
                   "n_mix_outputs": 2, "temperature": 0.7}
    clone = ChannelClassifier.from_config(cfg)
    clone.load_state_dict(model.state_dict())
    assert clone.config() == cfg


def test_param_groups_give_mixing_its_own_lr():
    model = ChannelClassifier("dcmix", 4, 2)
    groups = model.param_groups(lr=1e-3, mixing_lr=0.05)
    mixing = [g for g in groups if any(p is model.mixing.logits for p in g["params"])]
    assert len(mixing) == 1 and mixing[0]["params"] == [model.mixing.logits]
    assert mixing[0]["lr"] == 0.05 and mixing[0]["weight_decay"] == 0.0
    others = [g for g in groups if g is not mixing[0]]
    assert all(g["lr"] == 1e-3 for g in others)
    n_grouped = sum(p.numel() for g in groups for p in g["params"])
    assert n_grouped == count_parameters(model)
    opt = torch.optim.AdamW(groups, weight_decay=0.01)  # the optimizer accepts them as is
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in groups]
    # models without mixing: one group at the backbone's lr
    assert [g["lr"] for g in ChannelClassifier("se-attention", 4, 2).param_groups(1e-3, 0.05)] == [1e-3]


def test_replace_head():
    model = ChannelClassifier("dcmix", 3, 2)
    mixing_before = model.mixing.logits.detach().clone()
    model.replace_head(5)
    assert model.n_classes == 5 and model.config()["n_classes"] == 5
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    torch.testing.assert_close(model.mixing.logits.detach(), mixing_before)


def test_count_parameters():
    model = ChannelClassifier("all-channels", 3, 2)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    model.head.weight.requires_grad_(False)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) - model.head.weight.numel()


def _synthetic_batch(gen: torch.Generator, n: int = 16, size: int = 32):
    """4 noise channels; only channel 2 carries the class (a bright square for class 1)."""
    y = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(n, 4, size, size, generator=gen)
    x[:, 2] *= 0.5
    x[y == 1, 2, 8:24, 8:24] += 1.0
    return x, y


def test_tiny_training_puts_informative_channel_first():
    gen = torch.Generator().manual_seed(0)
    model = ChannelClassifier("dcmix", 4, 2)
    opt = torch.optim.Adam(model.param_groups(lr=3e-3, mixing_lr=0.1))
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(150):
        x, y = _synthetic_batch(gen)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    imp = model.importance()
    assert int(np.argmax(imp)) == 2, imp
    assert imp[2] > 0.5, imp
