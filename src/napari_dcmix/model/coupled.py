"""The coupled per-phenotype DCMIX: one blend per phenotype, every phenotype trained on every well.

Each phenotype k has its own mixing row α_k (its own blend of the channels) and its own head; a shared,
narrow tower reads each blend separately, and phenotype k's logit against the reference is computed
from its blend alone: r_k = h_k(f(α_k · x)). The class logits are [0 for the reference, r_1, …, r_K],
so P(k) / P(reference) = exp(r_k) — the phenotype panel's reference coupling, trained directly with one
cross-entropy over all classes on all labelled wells. Every row keeps its meaning ("the channels that
tell this phenotype from the control": α_k sees nothing else), and because the softmax is over all
classes, each phenotype is also told from the other phenotypes (r_A must exceed r_B on A's wells).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import DcmixError
from .backbones import SmallCNN
from .mixing import ChannelMixing

COUPLED_KIND = "dcmix-coupled"
#: the tower each blend goes through: a quarter of the small CNN's width per layer, about 1/10 of its
#: arithmetic per image, so K blends cost less than one default model until K ~ 10
TOWER_WIDTHS = (16, 32, 64, 64)
#: BatchNorm in the tower: with GroupNorm (two feature maps a group, close to normalising every image on
#: its own) single-channel features of the sample plate's ER and Mito phenotypes took 700-1000 steps to
#: appear, and some folds learned nothing in 1500; with BatchNorm 300-500. The tower trains on 64-96
#: single-channel images a step, so its batch statistics are well estimated.
TOWER_NORM = "batch"


class CoupledClassifier(nn.Module):
    """(B, C, H, W) -> (B, n_classes) logits; ``mixing.alpha()`` is (K, C), row k = phenotype k's blend,
    phenotypes in class order without the reference."""

    kind = COUPLED_KIND

    def __init__(self, n_channels: int, n_classes: int, reference_index: int, temperature: float = 1.0,
                 widths: tuple[int, ...] = TOWER_WIDTHS, norm: str = TOWER_NORM) -> None:
        super().__init__()
        if int(n_classes) < 2:
            raise DcmixError(f"a classifier needs at least 2 classes, got {n_classes}; label more classes")
        if not 0 <= int(reference_index) < int(n_classes):
            raise DcmixError(f"reference class index {reference_index} is not one of the {n_classes} classes")
        self.n_channels, self.n_classes = int(n_channels), int(n_classes)
        self.reference_index, self.temperature = int(reference_index), float(temperature)
        self.widths, self.norm = tuple(int(w) for w in widths), str(norm)
        self.n_mix_outputs = self.n_classes - 1
        self.backbone_name = "tower"
        self.mixing = ChannelMixing(self.n_channels, self.n_mix_outputs, self.temperature)
        self.attention = None
        # batch norm: one set of statistics per phenotype's blend and one for single channels (probing)
        streams = self.n_mix_outputs + 1 if self.norm == "batch" else 1
        self.backbone = SmallCNN(1, self.widths, self.norm, streams)
        self.head_weight = nn.Parameter(torch.randn(self.n_mix_outputs, self.backbone.out_features) * 0.01)
        self.head_bias = nn.Parameter(torch.zeros(self.n_mix_outputs))

    def phenotype_classes(self) -> list[int]:
        """Output class indices of the phenotypes, in the order of the blends."""
        return [c for c in range(self.n_classes) if c != self.reference_index]

    def log_odds(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K): r_k = log P(phenotype k) / P(reference), each from phenotype k's blend only."""
        if x.ndim != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected input (B, {self.n_channels}, H, W), got {tuple(x.shape)}")
        b, k = x.shape[0], self.n_mix_outputs
        if self.training and self.mixing.probing:  # one pass per tried channel, read by every phenotype's head
            singles = self.mixing.probe_singles(x, min(self.n_channels, max(k, 2)))
            return self._tower(singles, self.n_mix_outputs) @ self.head_weight.t() + self.head_bias
        if self.n_channels == 1:  # every blend of one channel is that channel: one pass of the tower
            features = self._tower(x, 0).view(b, 1, -1).expand(b, k, -1)
        elif self.norm == "batch":
            # one pass per blend, on its own batch statistics: nothing of phenotype k's loss reaches another
            # phenotype's α through the normalisation, and prediction normalises each blend as it trained
            blends = self.mixing(x)  # (B, K, H, W)
            features = torch.stack([self._tower(blends[:, i:i + 1], i) for i in range(k)], dim=1)
        else:
            blends = self.mixing(x)  # (B, K, H, W)
            features = self.backbone(blends.reshape(b * k, 1, *blends.shape[2:])).view(b, k, -1)
        return (features * self.head_weight).sum(-1) + self.head_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.log_odds(x)
        zero = r.new_zeros((r.shape[0], 1))
        return torch.cat([r[:, :self.reference_index], zero, r[:, self.reference_index:]], dim=1)

    def anchor_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each phenotype's own question, added to the cross-entropy over all classes: on the tiles of
        phenotype k and of the reference, r_k = logit_k - logit_ref must tell them apart (a binary
        cross-entropy), so blend k answers "k against the control" and not "k against the others"."""
        terms = []
        for c in self.phenotype_classes():
            mask = (y == c) | (y == self.reference_index)
            if mask.any():
                r = logits[mask, c] - logits[mask, self.reference_index]
                terms.append(nn.functional.binary_cross_entropy_with_logits(r, (y[mask] == c).to(r.dtype)))
        return torch.stack(terms).mean() if terms else logits.new_zeros(())

    def _tower(self, images: torch.Tensor, stream: int) -> torch.Tensor:
        """The tower's features of (N, 1, H, W) images of one stream (blend k, or K: single channels)."""
        if self.norm == "batch":
            self.backbone.use_stream(stream)
        return self.backbone(images)

    @torch.no_grad()
    def channel_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, K, C): each phenotype's question answered from each channel alone (NaN outside it)."""
        out = []
        for c in range(self.n_channels):
            r = self._tower(x[:, c:c + 1], self.n_mix_outputs) @ self.head_weight.t() + self.head_bias
            zero = r.new_zeros((r.shape[0], 1))
            logits = torch.cat([r[:, :self.reference_index], zero, r[:, self.reference_index:]], dim=1)
            out.append(self.question_losses(logits, y))
        return torch.stack(out, dim=2)

    @torch.no_grad()
    def question_losses(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, K): each sample's loss on phenotype k's own question (k against the reference, from blend k
        alone); NaN for samples of neither class."""
        out = logits.new_full((logits.shape[0], self.n_mix_outputs), float("nan"))
        for k, c in enumerate(self.phenotype_classes()):
            mask = (y == c) | (y == self.reference_index)
            r = logits[:, c] - logits[:, self.reference_index]
            loss = nn.functional.binary_cross_entropy_with_logits(r, (y == c).to(r.dtype), reduction="none")
            out[:, k] = torch.where(mask, loss, out[:, k])
        return out

    def importance(self) -> np.ndarray:
        return self.mixing.importance()

    def param_groups(self, lr: float, mixing_lr: float) -> list[dict[str, Any]]:
        """The mixing logits get their own lr and never weight decay (as ChannelClassifier's)."""
        rest = [p for p in self.parameters() if p is not self.mixing.logits and p.requires_grad]
        return [{"params": rest, "lr": float(lr), "name": "network"},
                {"params": [self.mixing.logits], "lr": float(mixing_lr), "weight_decay": 0.0, "name": "mixing"}]

    def config(self) -> dict[str, Any]:
        return {"kind": COUPLED_KIND, "n_channels": self.n_channels, "n_classes": self.n_classes,
                "reference_index": self.reference_index, "temperature": self.temperature,
                "widths": list(self.widths), "norm": self.norm}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "CoupledClassifier":
        return cls(int(cfg["n_channels"]), int(cfg["n_classes"]), int(cfg["reference_index"]),
                   float(cfg.get("temperature", 1.0)), tuple(cfg.get("widths", TOWER_WIDTHS)),
                   str(cfg.get("norm", "group")))  # models saved before the batch-normalised tower
