"""The figures of the stain search: one channel subset's out-of-fold answer for one phenotype, the
paired "not worse than all channels" rule, and α's agreement with the retraining.

Numpy and scipy only (no torch, no Qt), so the CLI, the dock and the benchmark read the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .explain_coupled import pair_verdict

#: "not worse than all channels": a paired one-sided test over the folds x seeds at this level, and
#: the mean within these margins of the full panel
SIGNIFICANCE, ACCURACY_MARGIN, AUC_MARGIN = 0.05, 0.02, 0.01
#: below this share of α a channel reads as "not used"; a needed channel below it is a warning
UNUSED_ALPHA = 0.05


@dataclass
class SubsetFigures:
    """A model that sees only ``channels``, judged on phenotype vs the reference, out of fold."""

    channels: tuple[str, ...]
    accuracy: float  # over every held-out well of the two classes (what the matrix row shows)
    auc: float
    learned: bool  # the honesty gate on those wells
    p_value: float
    n_wells: int
    fold_accuracy: list[float]  # per fold model, in fold x seed order: the pairs of the paired test
    fold_auc: list[float]
    stopped_at_chance: int = 0  # fold models stopped early because they never left the chance level
    partial: bool = False
    chance: float = float("nan")
    reason: str = ""

    def verdict_dict(self) -> dict:
        """As ``Verdict.to_dict()``: what an importance snapshot of this subset shows as its trust line."""
        return {"learned": bool(self.learned), "accuracy": self.accuracy, "chance": self.chance,
                "p_value": self.p_value, "auc": self.auc, "n_wells": self.n_wells, "reason": self.reason}

    @property
    def spread(self) -> float:
        """Standard deviation of the per-fold accuracy (0 with one fold)."""
        values = [v for v in self.fold_accuracy if math.isfinite(v)]
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def to_dict(self) -> dict:
        return {"accuracy": _num(self.accuracy), "auc": _num(self.auc), "spread": _num(self.spread),
                "learned": bool(self.learned), "p_value": _num(self.p_value), "n_wells": self.n_wells,
                "fold_accuracy": [_num(v) for v in self.fold_accuracy],
                "stopped_at_chance": self.stopped_at_chance, "partial": self.partial}


def subset_figures(channels, oof: dict, fold_predictions: list[dict], classes: list[str], reference: str,
                   phenotype: str, stopped_at_chance: int = 0, partial: bool = False) -> SubsetFigures:
    """The figures of one run of explain on ``channels`` for one of its phenotypes."""
    pooled = pair_verdict(oof, classes, reference, phenotype)
    folds = [pair_verdict(preds, classes, reference, phenotype) for preds in fold_predictions]
    return SubsetFigures(tuple(channels), pooled.accuracy, pooled.auc, pooled.learned, pooled.p_value,
                         pooled.n_wells, [f.accuracy for f in folds], [f.auc for f in folds], stopped_at_chance,
                         partial, pooled.chance, pooled.reason)


def paired_worse_p(subset: list[float], full: list[float]) -> float:
    """One-sided paired t-test p of "the subset is worse than the full panel", fold by fold. Identical
    folds (no variance of the differences) give 0 when the subset is lower everywhere, else 1."""
    pairs = [(a, b) for a, b in zip(subset, full) if math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 2:
        return 1.0
    diff = np.array([a - b for a, b in pairs])
    if np.allclose(diff, diff[0]):
        return 0.0 if diff[0] < 0 else 1.0
    from scipy.stats import ttest_1samp

    return float(ttest_1samp(diff, 0.0, alternative="less").pvalue)


@dataclass
class Comparison:
    """A subset against the full panel: the test and the margins, and what they say."""

    not_worse: bool
    p_accuracy: float
    p_auc: float
    accuracy_loss: float  # full - subset (positive: the subset is worse)
    auc_loss: float
    #: the evidence a stain cannot be dropped: the subset learned nothing, or a paired test finds it
    #: worse by more than the margin (one bad fold of a noisy run is not evidence)
    worse: bool = False


def compare(subset: SubsetFigures, full: SubsetFigures, significance: float = SIGNIFICANCE,
            accuracy_margin: float = ACCURACY_MARGIN, auc_margin: float = AUC_MARGIN) -> Comparison:
    """Is ``subset`` not worse than ``full``? Learned, neither paired test significant, and the pooled
    accuracy / AUC within the margins. The accuracy margin is at least one well: on 46 held-out wells
    accuracy moves in steps of 0.022, so "within 0.02" would otherwise mean "not one well less"."""
    accuracy_margin = max(accuracy_margin, 1.0 / max(1, min(subset.n_wells, full.n_wells)))
    p_acc = paired_worse_p(subset.fold_accuracy, full.fold_accuracy)
    p_auc = paired_worse_p(subset.fold_auc, full.fold_auc)
    acc_loss = full.accuracy - subset.accuracy
    auc_loss = (full.auc - subset.auc) if math.isfinite(full.auc) and math.isfinite(subset.auc) else 0.0
    ok = (subset.learned and p_acc >= significance and p_auc >= significance
          and acc_loss <= accuracy_margin + 1e-9 and auc_loss <= auc_margin + 1e-9)
    worse = (not subset.learned or (p_acc < significance and acc_loss > accuracy_margin + 1e-9)
             or (p_auc < significance and auc_loss > auc_margin + 1e-9))
    return Comparison(bool(ok), p_acc, p_auc, float(acc_loss), float(auc_loss), bool(worse))


def spearman(a: list[float], b: list[float]) -> float | None:
    """Rank correlation, or None when either side has no spread (every channel tied)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None
    from scipy.stats import spearmanr

    value = spearmanr(x[ok], y[ok]).statistic
    return float(value) if math.isfinite(value) else None


@dataclass
class Agreement:
    alone: float | None  # ρ(α, accuracy alone)
    without: float | None  # ρ(α, accuracy lost without the channel)
    warning: str | None = None

    def to_dict(self) -> dict:
        return {"alone": self.alone, "without": self.without, "warning": self.warning}


def agreement(alpha: dict[str, float], alone: dict[str, SubsetFigures], without: dict[str, SubsetFigures],
              needed: dict[str, bool], full: SubsetFigures, explained: SubsetFigures | None = None) -> Agreement:
    """α against the retraining: ρ with "alone" accuracy and with "without" loss, and a warning where
    they disagree on what matters (α's top channel no better alone than noise allows, or a channel α
    leaves unused that cannot be dropped)."""
    channels = list(alpha)
    rho_alone = spearman([alpha[c] for c in channels], [alone[c].accuracy for c in channels if c in alone]) \
        if all(c in alone for c in channels) else None
    rho_without = spearman([alpha[c] for c in channels],
                           [full.accuracy - without[c].accuracy for c in channels if c in without]) \
        if all(c in without for c in channels) else None
    warnings = []
    if not (explained or full).learned:  # the α shown comes from a model that learned nothing
        better = [c for c, f in alone.items() if f.learned]
        if better:
            warnings.append(f"with every stain DCMIX did not learn it, but {' / '.join(better)} alone "
                            f"{'does' if len(better) == 1 else 'do'}: the all-stain model missed it - trust the "
                            "smaller panel, not this α")
        return Agreement(rho_alone, rho_without, "; ".join(warnings) or None)
    top = max(channels, key=alpha.get)
    learned_alone = {c: f for c, f in alone.items() if f.learned}
    if learned_alone and top in alone:
        best = max(learned_alone.values(), key=lambda f: (f.accuracy, f.auc))
        if not compare(alone[top], best).not_worse:
            leaders = [c for c, f in learned_alone.items() if compare(f, best).not_worse]
            warnings.append(f"α puts {top} on top, but alone it reaches {alone[top].accuracy:.2f} against "
                            f"{best.accuracy:.2f} for {' / '.join(leaders)}")
    hidden = [c for c in channels if alpha[c] < UNUSED_ALPHA and needed.get(c)]
    if hidden:
        warnings.append(f"α gives {', '.join(hidden)} under {UNUSED_ALPHA:.2f}, but dropping "
                        f"{'it' if len(hidden) == 1 else 'them'} loses accuracy: α is one sufficient blend, "
                        "not the only one")
    return Agreement(rho_alone, rho_without, "; ".join(warnings) or None)


@dataclass
class SecondOpinion:
    """The classical feature forest on the same question, beside α."""

    accuracy: float
    auc: float | None
    shares: dict[str, float]
    learned: bool
    warning: str | None = None

    def to_dict(self) -> dict:
        return {"accuracy": _num(self.accuracy), "auc": _num(self.auc), "shares": self.shares,
                "learned": self.learned, "warning": self.warning}


def second_opinion_warning(forest_top: str, forest_learned: bool, forest_accuracy: float, alpha: dict[str, float],
                           dcmix: SubsetFigures) -> str | None:
    """Where the forest and DCMIX disagree: the top channel, or a phenotype only the forest separates."""
    if forest_learned and not dcmix.learned:
        return (f"the forest separates it ({forest_accuracy:.2f} out of fold, {forest_top} on top) where DCMIX did "
                "not learn it: trust the forest's channels here")
    top = max(alpha, key=alpha.get)
    if forest_learned and dcmix.learned and forest_top != top:
        return f"the forest puts {forest_top} on top, α {top}: check both stains"
    return None


@dataclass
class PanelStep:
    """One size of the smallest-panel search: the channels, their figures and the verdict."""

    channels: tuple[str, ...]
    figures: SubsetFigures
    comparison: Comparison | None  # None for the full panel itself

    def to_row(self) -> list:
        f = self.figures
        return [len(self.channels), _num(f.accuracy), _num(f.auc), _num(f.spread)]


@dataclass
class PhenotypeStains:
    """Everything the stain search says about one phenotype."""

    phenotype: str
    alpha: dict[str, float]
    full: SubsetFigures  # the all-stains level every subset is compared with (the better all-stains run)
    explained: SubsetFigures | None = None  # explain's own all-stains run (its α is the matrix row)
    alone: dict[str, SubsetFigures] = field(default_factory=dict)
    without: dict[str, SubsetFigures] = field(default_factory=dict)
    without_comparison: dict[str, Comparison] = field(default_factory=dict)
    curve: list[PanelStep] = field(default_factory=list)
    smallest_panel: list[str] | None = None
    panel_reason: str = ""
    agreement: Agreement | None = None
    second_opinion: SecondOpinion | None = None

    def needed(self) -> dict[str, bool]:
        """Channels whose removal loses accuracy: the "without" model learns nothing at all (that stain
        cannot be dropped), or is significantly worse than all channels by more than the margin. None
        is needed by that rule when all channels learned nothing themselves (nothing to lose), nor when a
        run without it (a stain alone, a smaller panel) is not worse than all stains."""
        # a run that lacks the stain and is as good as all stains proves it can go: a "without" run
        # that failed then missed (an optimisation miss), it did not measure a need
        enough = [f for f in (*self.alone.values(), *self.without.values(), *(s.figures for s in self.curve))
                  if f is not self.full and f.channels != self.full.channels and compare(f, self.full).not_worse]
        return {c: comp.worse and self.full.learned and not any(c not in f.channels for f in enough)
                for c, comp in self.without_comparison.items()}

    def to_dict(self) -> dict:
        needed = self.needed()
        without = {c: {**f.to_dict(), "loss": _num(self.full.accuracy - f.accuracy), "needed": needed.get(c)}
                   for c, f in self.without.items()}
        return {"alpha": self.alpha, "full": self.full.to_dict(),
                "explained": self.explained.to_dict() if self.explained else None,
                "alone": {c: f.to_dict() for c, f in self.alone.items()}, "without": without,
                "smallest_panel": self.smallest_panel, "panel_reason": self.panel_reason,
                "curve": [step.to_row() for step in self.curve],
                "curve_channels": [list(step.channels) for step in self.curve],
                "agreement": self.agreement.to_dict() if self.agreement else None,
                "second_opinion": self.second_opinion.to_dict() if self.second_opinion else None}


def _num(value):
    """JSON-safe float: NaN becomes None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
