"""Learnable alpha compositing of input channels (the DCMIX layer).

The C input channels are blended into K images with weights ``alpha >= 0, sum_c alpha = 1`` (a softmax of
learnable logits). Because the blend is a convex combination, the learned ``alpha`` reads directly as
channel importance: the network can only improve by moving weight onto channels that carry the signal.
"""

from __future__ import annotations

import numpy as np
import torch
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
        #: Probe mode (set by the trainer for the first part of a run): every sample's blend k is one
        #: channel drawn at random, α untouched; ``last_choice`` (B, K) says which, so the trainer can
        #: measure how well each channel alone answers each output's question.
        self.probing = False
        self.last_choice: torch.Tensor | None = None
        #: where the probe's random channels come from (None: torch's global generator). The trainer
        #: gives each CPU model its own, so fold models trained side by side in threads stay reproducible.
        self.generator: torch.Generator | None = None

    def __getstate__(self) -> dict:
        """Copies and pickles leave the generator behind: a ``torch.Generator`` cannot be copied before
        torch 2.4, and a copy (the best checkpoint, a model handed to Apply) is not trained on; the
        trainer gives the model it trains a generator of its own."""
        state = self.__dict__.copy()
        state["generator"] = None
        return state

    def alpha(self) -> torch.Tensor:
        """Blend weights (K, C): non-negative, each row sums to 1; differentiable."""
        return torch.softmax(self.logits / self.temperature, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, K, H, W): blend k = Σ_c α_kc x_c."""
        if x.ndim != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected input (B, {self.n_channels}, H, W), got {tuple(x.shape)}")
        if self.training and self.probing:
            b, c, h, w = x.shape
            choice = torch.randint(0, c, (b, self.n_outputs), device=x.device, generator=self._generator_for(x))
            self.last_choice = choice
            return torch.gather(x, 1, choice[:, :, None, None].expand(b, self.n_outputs, h, w)) + self._waiting()
        # an einsum (a batched matmul), not a 1x1 convolution: on the CPU oneDNN's 1x1 convolution with a few
        # input and output channels costs 10-17 ms forward + backward for a batch of 32 × 5 × 64², the
        # einsum 0.6-1.4 ms (measured here for 4→2, 5→3 and 8→1 channels)
        return torch.einsum("kc,bchw->bkhw", self.alpha().to(dtype=x.dtype), x)

    def probe_singles(self, x: torch.Tensor, m: int) -> torch.Tensor:
        """Probing a model whose outputs are read apart (the coupled one): ``m`` distinct channels of each
        sample, (B, C, H, W) -> (B * m, 1, H, W), one row per (sample, channel); ``last_choice`` (B * m, K)
        says which channel every output of each row saw."""
        b, c, h, w = x.shape
        choice = torch.rand(b, c, device=x.device, generator=self._generator_for(x)).argsort(dim=1)[:, :m]
        self.last_choice = choice.reshape(-1, 1).expand(-1, self.n_outputs)
        return torch.gather(x, 1, choice[:, :, None, None].expand(b, m, h, w)).reshape(b * m, 1, h, w) + self._waiting()

    def _generator_for(self, x: torch.Tensor) -> torch.Generator | None:
        g = self.generator
        return g if g is not None and g.device == x.device else None

    def _waiting(self) -> torch.Tensor:
        """A zero that keeps α in the graph while probing: its gradient is zero, so α does not move, and
        data-parallel training (which wants a gradient for every parameter each step) works unchanged."""
        return self.logits.sum() * 0.0

    @torch.no_grad()
    def start_from(self, weights: np.ndarray, floor: float = 1e-3) -> None:
        """Set α_k ∝ ``weights[k]`` (K, C); a row of zeros stays uniform, a floor keeps every channel reachable."""
        weights = np.asarray(weights, np.float64)
        for k, row in enumerate(weights):
            if row.sum() > 0:
                row = np.maximum(row / row.sum(), floor)
                self.logits[k] = torch.as_tensor(np.log(row / row.sum()) * self.temperature, dtype=self.logits.dtype)

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
