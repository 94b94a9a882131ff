"""Channel-importance classifiers: DCMIX and the two baselines it is compared with.

* ``dcmix``: learnable alpha blend (``ChannelMixing``) -> backbone -> linear head; alpha is the importance.
* ``all-channels``: backbone on all channels, no importance (the accuracy reference).
* ``se-attention``: squeeze-and-excitation on the input channels; importance = mean attention weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import DcmixError
from .backbones import BACKBONES, build_backbone
from .mixing import ChannelMixing

__all__ = ["MODEL_KINDS", "ChannelClassifier", "InputSqueezeExcitation", "count_parameters"]

MODEL_KINDS: tuple[str, ...] = ("dcmix", "all-channels", "se-attention")


class InputSqueezeExcitation(nn.Module):
    """Per-sample channel attention on the raw input (Hu et al. 2018), with a running mean of the weights.

    The running mean is a cumulative mean for the first ``1 / min_momentum`` batches, then an exponential
    moving average, so ``importance()`` reflects the network as it is now rather than its early training.
    """

    def __init__(self, n_channels: int, min_momentum: float = 0.01) -> None:
        super().__init__()
        hidden = max(n_channels // 2, 4)
        self.fc1 = nn.Linear(n_channels, hidden)
        self.fc2 = nn.Linear(hidden, n_channels)
        self.min_momentum = float(min_momentum)
        self.register_buffer("attention_mean", torch.full((n_channels,), 0.5))
        self.register_buffer("attention_count", torch.zeros((), dtype=torch.long))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, C) in (0, 1)."""
        squeezed = x.mean(dim=(2, 3))
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights(x)
        if not self.training:  # applying the model must not change the importance it reports
            return x * w[:, :, None, None]
        with torch.no_grad():  # tensor ops only: no host sync per step on a GPU
            self.attention_count.add_(1)
            momentum = self.attention_count.to(self.attention_mean.dtype).reciprocal().clamp_(
                min=self.min_momentum)
            batch_mean = w.detach().mean(dim=0).to(self.attention_mean.dtype)
            self.attention_mean.add_(momentum * (batch_mean - self.attention_mean))
        return x * w[:, :, None, None]


class ChannelClassifier(nn.Module):
    """Image classifier over C channels whose ``importance()`` says which channels it relies on."""

    def __init__(self, kind: str, n_channels: int, n_classes: int, backbone: str = "small",
                 n_mix_outputs: int = 1, temperature: float = 1.0) -> None:
        super().__init__()
        if kind not in MODEL_KINDS:
            raise DcmixError(f"unknown model kind {kind!r}; choose one of: {', '.join(MODEL_KINDS)}")
        if backbone not in BACKBONES:
            raise DcmixError(f"unknown backbone {backbone!r}; choose one of: {', '.join(BACKBONES)}")
        if int(n_channels) < 1:
            raise DcmixError(f"a model needs at least 1 channel, got {n_channels}")
        if int(n_classes) < 2:
            raise DcmixError(f"a classifier needs at least 2 classes, got {n_classes}; label more classes")
        self.kind = kind
        self.n_channels = int(n_channels)
        self.n_classes = int(n_classes)
        self.backbone_name = backbone
        self.n_mix_outputs = int(n_mix_outputs)
        self.temperature = float(temperature)

        self.mixing: ChannelMixing | None = None
        self.attention: InputSqueezeExcitation | None = None
        if kind == "dcmix":
            self.mixing = ChannelMixing(self.n_channels, self.n_mix_outputs, self.temperature)
            in_channels = self.n_mix_outputs
        else:
            in_channels = self.n_channels
            if kind == "se-attention":
                self.attention = InputSqueezeExcitation(self.n_channels)
        self.backbone = build_backbone(backbone, in_channels)
        self.head = nn.Linear(self.backbone.out_features, self.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> class logits (B, n_classes)."""
        if x.ndim != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected input (B, {self.n_channels}, H, W), got {tuple(x.shape)}")
        if self.mixing is not None:
            x = self.mixing(x)
        elif self.attention is not None:
            x = self.attention(x)
        return self.head(self.backbone(x))

    @torch.no_grad()
    def channel_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, K, C): the cross-entropy with every blend set to channel c alone."""
        b, k = x.shape[0], max(1, self.n_mix_outputs)
        out = [nn.functional.cross_entropy(self.head(self.backbone(x[:, c:c + 1].expand(-1, k, -1, -1))), y,
                                           reduction="none") for c in range(self.n_channels)]
        return torch.stack(out, dim=1)[:, None, :].expand(b, k, self.n_channels)

    @torch.no_grad()
    def question_losses(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, K): each sample's cross-entropy, the question every blend of a one-head model answers."""
        loss = nn.functional.cross_entropy(logits, y, reduction="none")
        return loss[:, None].expand(-1, max(1, self.n_mix_outputs))

    def importance(self) -> np.ndarray | None:
        """Channel importance (C,) float64 summing to 1, or None for ``all-channels``."""
        if self.mixing is not None:
            return self.mixing.importance()
        if self.attention is not None:
            mean = self.attention.attention_mean.detach().to(torch.float64).cpu().numpy()
            total = mean.sum()
            return mean / total if total > 0 else np.full(self.n_channels, 1.0 / self.n_channels)
        return None

    def config(self) -> dict[str, Any]:
        """Everything ``from_config`` needs to rebuild this architecture (JSON-serialisable)."""
        return {
            "kind": self.kind,
            "n_channels": self.n_channels,
            "n_classes": self.n_classes,
            "backbone": self.backbone_name,
            "n_mix_outputs": self.n_mix_outputs,
            "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "ChannelClassifier":
        keys = ("kind", "n_channels", "n_classes", "backbone", "n_mix_outputs", "temperature")
        return cls(**{k: cfg[k] for k in keys if k in cfg})

    def param_groups(self, lr: float, mixing_lr: float) -> list[dict[str, Any]]:
        """Optimizer groups: the mixing logits get their own (much higher) lr and never weight decay.

        At the backbone's lr the logits barely move (alpha 0.50 -> 0.64 in 300 steps in a trial), and
        weight decay would pull alpha back towards uniform, i.e. bias the importance it reports.
        """
        groups: list[dict[str, Any]] = []
        mixing_params = [self.mixing.logits] if self.mixing is not None else []
        mixing_ids = {id(p) for p in mixing_params}
        rest = [p for p in self.parameters() if id(p) not in mixing_ids and p.requires_grad]
        if rest:
            groups.append({"params": rest, "lr": float(lr), "name": "network"})
        if mixing_params:
            groups.append({"params": mixing_params, "lr": float(mixing_lr), "weight_decay": 0.0,
                           "name": "mixing"})
        return groups

    def replace_head(self, n_classes: int) -> None:
        """New, freshly initialised linear head for ``n_classes`` (fine-tuning on other classes)."""
        if int(n_classes) < 2:
            raise DcmixError(f"a classifier needs at least 2 classes, got {n_classes}; label more classes")
        old = self.head
        self.head = nn.Linear(self.backbone.out_features, int(n_classes)).to(
            device=old.weight.device, dtype=old.weight.dtype)
        self.n_classes = int(n_classes)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
