"""ChannelMixing / composite: alpha is a valid convex blend, forward is that blend, gradients reach it."""

import numpy as np
import pytest
import torch

from napari_dcmix.model import ChannelMixing, composite


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_initial_alpha_is_uniform():
    mix = ChannelMixing(5, n_outputs=2)
    assert torch.all(mix.logits == 0)
    assert mix.alpha().shape == (2, 5)
    torch.testing.assert_close(mix.alpha(), torch.full((2, 5), 0.2))
    np.testing.assert_allclose(mix.importance(), np.full(5, 0.2))


@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
def test_alpha_nonnegative_and_sums_to_one(temperature):
    mix = ChannelMixing(6, n_outputs=3, temperature=temperature)
    with torch.no_grad():
        mix.logits.normal_(0, 5)
    alpha = mix.alpha()
    assert torch.all(alpha >= 0)
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(3))
    imp = mix.importance()
    assert imp.dtype == np.float64 and imp.shape == (6,)
    assert imp.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(imp, alpha.detach().double().mean(0).numpy(), rtol=1e-6)


def test_temperature_sharpens():
    cold, hot = ChannelMixing(3, temperature=0.5), ChannelMixing(3, temperature=2.0)
    with torch.no_grad():
        cold.logits.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
        hot.logits.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
    assert cold.alpha()[0, 0] > hot.alpha()[0, 0]


def test_forward_is_weighted_sum():
    mix = ChannelMixing(4, n_outputs=2)
    with torch.no_grad():
        mix.logits.normal_()
    x = torch.randn(3, 4, 7, 9)
    expected = torch.einsum("kc,bchw->bkhw", mix.alpha(), x)
    out = mix(x)
    assert out.shape == (3, 2, 7, 9)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_forward_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="expected input"):
        ChannelMixing(4)(torch.zeros(1, 3, 8, 8))


def test_gradients_reach_logits():
    mix = ChannelMixing(4)
    x = torch.randn(2, 4, 5, 5)
    target = x[:, 2:3]  # pulling the blend towards channel 2 must move the logits
    loss = ((mix(x) - target) ** 2).mean()
    loss.backward()
    assert mix.logits.grad is not None
    assert mix.logits.grad.abs().sum() > 0
    assert mix.logits.grad[0, 2] < 0  # descent raises channel 2's logit


def test_composite_matches_weighted_sum():
    rng = np.random.default_rng(0)
    site = rng.normal(size=(4, 6, 5))
    alpha = rng.dirichlet(np.ones(4))
    out = composite(site, alpha)
    assert out.dtype == np.float32 and out.shape == (6, 5)
    np.testing.assert_allclose(out, np.einsum("c,cyx->yx", alpha, site), rtol=1e-5, atol=1e-5)
    alpha_k = rng.dirichlet(np.ones(4), size=3)
    out_k = composite(site, alpha_k)
    assert out_k.shape == (3, 6, 5)
    np.testing.assert_allclose(out_k, np.einsum("kc,cyx->kyx", alpha_k, site), rtol=1e-5, atol=1e-5)


def test_composite_matches_mixing_layer():
    mix = ChannelMixing(3)
    with torch.no_grad():
        mix.logits.normal_()
    site = torch.rand(3, 8, 8)
    layer = mix(site[None])[0, 0].detach().numpy()
    np.testing.assert_allclose(composite(site.numpy(), mix.importance()), layer, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "site_shape, alpha_shape, match",
    [((4, 5), (4,), "site must be"), ((4, 5, 5), (3,), "3 channel weights"),
     ((4, 5, 5), (2, 2, 4), "alpha must be")],
)
def test_composite_validates_shapes(site_shape, alpha_shape, match):
    with pytest.raises(ValueError, match=match):
        composite(np.zeros(site_shape), np.ones(alpha_shape))


def test_a_copy_leaves_the_probe_generator_behind():
    """The trainer's own generator is not copied or pickled with the model (a best checkpoint, a model
    saved or handed to Apply): torch before 2.4 cannot copy one; the copy keeps its weights."""
    import copy
    import pickle

    mixing = ChannelMixing(3)
    with torch.no_grad():
        mixing.logits += torch.tensor([[0.5, -0.2, 0.1]])
    mixing.generator = torch.Generator().manual_seed(1)
    for twin in (copy.deepcopy(mixing), pickle.loads(pickle.dumps(mixing))):
        assert twin.generator is None and torch.equal(twin.alpha(), mixing.alpha())
    assert mixing.generator is not None  # the trained model keeps its own
