"""The phenotype panel: the per-phenotype DCMIX models of ``explain`` combined into one classifier.

One multi-class model has to share its blends between phenotypes that live in different channels and
is much weaker than the per-phenotype models (sample plate: 0.71 held-out accuracy against 0.96-1.00).
The panel keeps those models (every fold x seed as an ensemble) and couples them through the
reference: each estimates the log odds r_k = log P(k) / P(reference) of the phenotypes it covers — a
binary member (classes [reference, k]) one phenotype, a coupled member (``model/coupled.py``, all the
panel's classes in its order) every phenotype — so the class logits are [0 for the reference, r_1, ...,
r_K], each r_k the mean over the members covering k, and their softmax is P(class). Its forward takes the same normalised tiles as every model, so prediction, CSVs,
plate maps and the Apply dock use it unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import DcmixError
from .classifier import ChannelClassifier
from .coupled import COUPLED_KIND, CoupledClassifier

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


def _member_from_config(cfg: dict[str, Any]) -> nn.Module:
    if cfg.get("kind") == COUPLED_KIND:
        return CoupledClassifier.from_config(cfg)
    return ChannelClassifier.from_config(cfg)


class PhenotypePanel(nn.Module):
    """Members -> (B, n_classes) logits by reference coupling.

    ``member_class[i]`` is the output class index of binary member i's phenotype (classes [reference,
    phenotype]), or None for a coupled member, which covers every phenotype (its classes are the
    panel's, in the panel's order); ``reference_index`` is the output index of the reference class (its
    logit is 0). The members covering a phenotype are averaged in log odds (an ensemble of logits).
    """

    kind = PANEL_KIND

    def __init__(self, members: list[ChannelClassifier], member_class: list[int], n_classes: int,
                 reference_index: int) -> None:
        super().__init__()
        if not members or len(members) != len(member_class):
            raise DcmixError("a phenotype panel needs at least one member model and one class per member")
        n_channels = {m.n_channels for m in members}
        for m, c in zip(members, member_class):
            binary = c is not None and m.kind == "dcmix" and m.n_classes == 2
            coupled = c is None and m.kind == COUPLED_KIND and m.n_classes == int(n_classes) \
                and m.reference_index == int(reference_index)
            if not (binary or coupled):
                raise DcmixError("a phenotype panel combines binary DCMIX models, or coupled ones over its own "
                                 "classes, all over the same channels")
        if len(n_channels) != 1:
            raise DcmixError("a phenotype panel combines models over the same channels")
        expected = set(range(int(n_classes))) - {int(reference_index)}
        phenotypes = set().union(*[expected if c is None else {c} for c in member_class])
        if phenotypes != expected:
            raise DcmixError(f"a phenotype panel needs members for every class but the reference "
                             f"(classes {sorted(expected)}, members cover {sorted(phenotypes)})")
        self.members = nn.ModuleList(members)
        self.member_class = [None if c is None else int(c) for c in member_class]
        self.n_classes, self.reference_index = int(n_classes), int(reference_index)
        self.n_channels = n_channels.pop()
        self.mixing = PanelAlpha(self)
        self.attention = None

    def phenotype_classes(self) -> list[int]:
        """Output class indices of the phenotypes, in output order (the rows of ``phenotype_alpha``)."""
        return [c for c in range(self.n_classes) if c != self.reference_index]

    def coverage(self) -> np.ndarray:
        """(n_members, n_classes) bool: which phenotypes each member estimates the log odds of."""
        covers = np.zeros((len(self.members), self.n_classes), bool)
        for i, c in enumerate(self.member_class):
            covers[i, self.phenotype_classes() if c is None else [c]] = True
        return covers

    def member_log_odds(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_members, n_classes): log P(class) / P(reference) from each member (0 where a member does
        not cover the class, and for the reference)."""
        out = []
        for m, c in zip(self.members, self.member_class):
            logits = m(x)
            entry = logits.new_zeros((logits.shape[0], self.n_classes))
            if c is None:
                entry = logits - logits[:, self.reference_index:self.reference_index + 1]
            else:
                entry[:, c] = logits[:, 1] - logits[:, 0]
            out.append(entry)
        return torch.stack(out, dim=1)

    def combine(self, log_odds: torch.Tensor) -> torch.Tensor:
        """(B, n_members, n_classes) member log odds -> (B, n_classes) logits: reference 0, each phenotype
        the mean log odds of the members covering it."""
        covers = torch.from_numpy(self.coverage()).to(device=log_odds.device, dtype=log_odds.dtype)
        return (log_odds * covers).sum(dim=1) / covers.sum(dim=0).clamp_(min=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected input (B, {self.n_channels}, H, W), got {tuple(x.shape)}")
        return self.combine(self.member_log_odds(x))

    def phenotype_alpha(self) -> torch.Tensor:
        """(K, C): per phenotype, the mean α of its members' blends."""
        rows = []
        phenotypes = self.phenotype_classes()
        for row, c in enumerate(phenotypes):
            alphas = [m.mixing.alpha()[row] if mc is None else m.mixing.alpha().mean(dim=0)
                      for m, mc in zip(self.members, self.member_class) if mc in (c, None)]
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
        members = [_member_from_config(m) for m in cfg["members"]]
        return cls(members, list(cfg["member_class"]), int(cfg["n_classes"]), int(cfg["reference_index"]))


def build_model(cfg: dict[str, Any]) -> nn.Module:
    """The model a checkpoint's config describes: a panel or a single classifier."""
    if cfg.get("kind") == PANEL_KIND:
        return PhenotypePanel.from_config(cfg)
    return _member_from_config(cfg)
