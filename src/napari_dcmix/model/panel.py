"""The phenotype panel: the per-phenotype DCMIX models of ``explain`` combined into one classifier.

One multi-class model has to share its blends between phenotypes that live in different channels and
is much weaker than the per-phenotype models (sample plate: 0.71 held-out accuracy against 0.96-1.00).
The panel keeps those binary models (phenotype k against the reference, every fold x seed as an
ensemble) and couples them through the reference: model k estimates the log odds
r_k = log P(k) / P(reference), so the class logits are [0 for the reference, r_1, ..., r_K] and their
softmax is P(class). Its forward takes the same normalised tiles as every model, so prediction, CSVs,
plate maps and the Apply dock use it unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import DcmixError
from .classifier import ChannelClassifier

PANEL_KIND = "dcmix-panel"


class PanelAlpha:
    """What composites and importance read off a model's ``mixing``: one blend per phenotype (K, C),
    each the mean α of that phenotype's models."""

    def __init__(self, panel: "PhenotypePanel"):
        self._panel = panel

    def alpha(self) -> torch.Tensor:
        return self._panel.phenotype_alpha()

    def importance(self) -> np.ndarray:
        imp = self.alpha().detach().to(torch.float64).mean(dim=0).cpu().numpy()
        return imp / imp.sum()


class PhenotypePanel(nn.Module):
    """Binary members (classes [reference, phenotype]) -> (B, n_classes) logits by reference coupling.

    ``member_class[i]`` is the output class index of member i's phenotype; ``reference_index`` the
    output index of the reference class (its logit is 0). Members of one phenotype are averaged in
    log-odds (an ensemble of logits).
    """

    kind = PANEL_KIND

    def __init__(self, members: list[ChannelClassifier], member_class: list[int], n_classes: int,
                 reference_index: int) -> None:
        super().__init__()
        if not members or len(members) != len(member_class):
            raise DcmixError("a phenotype panel needs at least one member model and one class per member")
        n_channels = {m.n_channels for m in members}
        if len(n_channels) != 1 or any(m.n_classes != 2 or m.kind != "dcmix" for m in members):
            raise DcmixError("a phenotype panel combines binary DCMIX models over the same channels")
        phenotypes = set(member_class)
        expected = set(range(int(n_classes))) - {int(reference_index)}
        if phenotypes != expected:
            raise DcmixError(f"a phenotype panel needs members for every class but the reference "
                             f"(classes {sorted(expected)}, members cover {sorted(phenotypes)})")
        self.members = nn.ModuleList(members)
        self.member_class = [int(c) for c in member_class]
        self.n_classes, self.reference_index = int(n_classes), int(reference_index)
        self.n_channels = n_channels.pop()
        self.mixing = PanelAlpha(self)
        self.attention = None

    def phenotype_classes(self) -> list[int]:
        """Output class indices of the phenotypes, in output order (the rows of ``phenotype_alpha``)."""
        return [c for c in range(self.n_classes) if c != self.reference_index]

    def member_log_odds(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_members): each member's log P(phenotype) / P(reference)."""
        return torch.stack([logits[:, 1] - logits[:, 0] for logits in (m(x) for m in self.members)], dim=1)

    def combine(self, log_odds: torch.Tensor) -> torch.Tensor:
        """(B, n_members) member log odds -> (B, n_classes) logits: reference 0, each phenotype the
        mean log odds of its members."""
        out = log_odds.new_zeros((log_odds.shape[0], self.n_classes))
        index = torch.tensor(self.member_class, device=log_odds.device)
        sums = out.index_add(1, index, log_odds)
        counts = torch.bincount(index, minlength=self.n_classes).clamp_(min=1).to(log_odds.dtype)
        return sums / counts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected input (B, {self.n_channels}, H, W), got {tuple(x.shape)}")
        return self.combine(self.member_log_odds(x))

    def phenotype_alpha(self) -> torch.Tensor:
        """(K, C): per phenotype, the mean α of its members' blends."""
        rows = []
        for c in self.phenotype_classes():
            alphas = [m.mixing.alpha().mean(dim=0) for m, mc in zip(self.members, self.member_class) if mc == c]
            rows.append(torch.stack(alphas).mean(dim=0))
        return torch.stack(rows)

    def importance(self) -> np.ndarray:
        return self.mixing.importance()

    def config(self) -> dict[str, Any]:
        return {"kind": PANEL_KIND, "n_channels": self.n_channels, "n_classes": self.n_classes,
                "reference_index": self.reference_index, "member_class": list(self.member_class),
                "members": [m.config() for m in self.members]}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "PhenotypePanel":
        members = [ChannelClassifier.from_config(m) for m in cfg["members"]]
        return cls(members, list(cfg["member_class"]), int(cfg["n_classes"]), int(cfg["reference_index"]))


def build_model(cfg: dict[str, Any]) -> nn.Module:
    """The model a checkpoint's config describes: a panel or a single classifier."""
    if cfg.get("kind") == PANEL_KIND:
        return PhenotypePanel.from_config(cfg)
    return ChannelClassifier.from_config(cfg)
