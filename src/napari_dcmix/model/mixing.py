"""Learnable alpha compositing of input channels (the DCMIX layer).

The C input channels are blended into K images with weights ``alpha >= 0, sum_c alpha = 1`` (a softmax of
learnable logits). Because the blend is a convex combination, the learned ``alpha`` reads directly as
channel importance: the network can only improve by moving weight onto channels that carry the signal.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ChannelMixing", "composite"]


class ChannelMixing(nn.Module):
    """Blend ``n_channels`` inputs into ``n_outputs`` images with softmax weights.

    ``logits`` start at zero so every channel starts equally important (uniform alpha): the ranking the
    user sees is then learned, not an artefact of the initialisation. ``temperature`` < 1 makes alpha move
    faster for the same logit step (sharper softmax); > 1 slower.
    """

    def __init__(self, n_channels: int, n_outputs: int = 1, temperature: float = 1.0) -> None:
        super().__init__()
        if int(n_channels) < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        if int(n_outputs) < 1:
            raise ValueError(f"n_outputs must be >= 1, got {n_outputs}")
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.n_channels = int(n_channels)
        self.n_outputs = int(n_outputs)
        self.temperature = float(temperature)
        self.logits = nn.Parameter(torch.zeros(self.n_outputs, self.n_channels))
        #: Scale of the Gumbel noise added to the logits per sample while training (0 = plain DCMIX).
        #: Set by the trainer and annealed to 0: early on the backbone sees blends dominated by one
        #: channel or another, so it learns every channel's features before α commits. Without it a
        #: phenotype in a channel that is one of many is diluted in the uniform blend, the backbone
        #: never learns its features and α never moves to it.
        self.exploration = 0.0

    def alpha(self) -> torch.Tensor:
        """Blend weights (K, C): non-negative, each row sums to 1; differentiable."""
        return torch.softmax(self.logits / self.temperature, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, K, H, W); a 1x1 convolution, so it is one fused kernel on any device."""
        if x.ndim != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected input (B, {self.n_channels}, H, W), got {tuple(x.shape)}")
        if self.training and self.exploration > 0:
            uniform = torch.rand((x.shape[0],) + tuple(self.logits.shape), device=x.device).clamp_(1e-6, 1 - 1e-6)
            gumbel = -torch.log(-torch.log(uniform))
            per_sample = torch.softmax(self.logits / self.temperature + self.exploration * gumbel, dim=-1)
            return torch.einsum("bkc,bchw->bkhw", per_sample.to(dtype=x.dtype), x)
        weight = self.alpha().to(dtype=x.dtype)[:, :, None, None]
        if x.device.type == "cpu" and self.n_outputs == 1:
            # oneDNN's NCHW path for a 1-output 1x1 conv is ~4x slower (forward + weight grad, batch 32,
            # 5 x 96 x 96) than its channels-last path, even counting the layout copy. With K = 1 the
            # output memory is identical either way, so the backbone sees a normal contiguous tensor.
            x = x.contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, weight)

    @torch.no_grad()
    def importance(self) -> np.ndarray:
        """Channel importance (C,) float64: alpha averaged over the K outputs, sums to 1."""
        imp = self.alpha().detach().to(torch.float64).mean(dim=0).cpu().numpy()
        return imp / imp.sum()

    def extra_repr(self) -> str:
        return f"n_channels={self.n_channels}, n_outputs={self.n_outputs}, temperature={self.temperature}"


def composite(site: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend a normalised (C, Y, X) site with alpha (C,) -> (Y, X), or alpha (K, C) -> (K, Y, X); float32.

    This is what the network sees after the mixing layer, so showing it to the user explains the model.
    """
    site = np.asarray(site)
    alpha = np.asarray(alpha)
    if site.ndim != 3:
        raise ValueError(f"site must be a (C, Y, X) array, got shape {site.shape}")
    if alpha.ndim not in (1, 2):
        raise ValueError(f"alpha must be (C,) or (K, C), got shape {alpha.shape}")
    if alpha.shape[-1] != site.shape[0]:
        raise ValueError(
            f"alpha has {alpha.shape[-1]} channel weights but the site has {site.shape[0]} channels"
        )
    site32 = site.astype(np.float32, copy=False)
    alpha32 = alpha.astype(np.float32, copy=False)
    out = np.tensordot(alpha32, site32, axes=([-1], [0]))
    return np.ascontiguousarray(out, dtype=np.float32)
