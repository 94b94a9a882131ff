"""What explain answers, whichever engine trained it: the phenotype x channel matrix, its rows (mean α,
its spread, the held-out verdict) and the events of a run. Plain data, shared by the engines
(``explain_coupled``), the docks, the CLI and the exports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .events import TrainEvent
from .gate import Verdict

ALL_PHENOTYPES = "all phenotypes"


def fold_member(trainer, phenotype: str | None, oof: dict):
    """The finished fold model as a panel member (with every well it trained or validated on), its
    held-out wells' predictions added to ``oof`` (well -> [true class index, [probabilities…]])."""
    from .panel import PanelMember

    seen = frozenset((k.plate, k.well) for k in trainer.train_keys + trainer.val_keys)
    for well, (label, probs) in trainer.test_predictions.items():
        oof.setdefault(well, [label, []])[1].append(probs)
    return PanelMember(phenotype, trainer.result, seen)


@dataclass
class PhenotypeRow:
    phenotype: str
    importance: dict[str, float]  # mean α over the repeats
    spread: dict[str, float]  # standard deviation of α over the repeats
    verdict: Verdict
    alpha: list[list[float]]  # (K, C) mean α, for this phenotype's composite
    repeats: int
    partial: bool = False  # explain was stopped: the figures are over the folds that finished

    @property
    def learned(self) -> bool:
        return self.verdict.learned

    @property
    def top_channel(self) -> str:
        return max(self.importance, key=self.importance.get)

    def to_dict(self) -> dict:
        return {"importance": self.importance, "spread": self.spread, "val_accuracy": self.verdict.accuracy,
                "auc": self.verdict.auc, "p_value": self.verdict.p_value, "chance": self.verdict.chance,
                "n_wells": self.verdict.n_wells, "repeats": self.repeats, "learned": self.verdict.learned,
                "reason": self.verdict.reason, "partial": self.partial}


@dataclass
class PhenotypeMatrix:
    reference: str
    channels: list[str]
    rows: list[PhenotypeRow]  # one per phenotype, then the "all phenotypes" row when trained
    complete: bool = True
    stats: object = None  # the ChannelStats its models store: what the rows' composites are shown in

    def row(self, phenotype: str) -> PhenotypeRow:
        return next(r for r in self.rows if r.phenotype == phenotype)

    def values(self) -> np.ndarray:
        return np.array([[r.importance[c] for c in self.channels] for r in self.rows])

    def to_dict(self) -> dict:
        """The ``explain --json`` object."""
        return {"reference": self.reference, "channels": list(self.channels), "complete": self.complete,
                "phenotypes": {r.phenotype: r.to_dict() for r in self.rows}}

    def csv_rows(self) -> list[dict]:
        rows = []
        for r in self.rows:
            row = {"phenotype": r.phenotype, "reference": self.reference}
            row.update({f"alpha_{c}": f"{r.importance[c]:.4f}" for c in self.channels})
            row.update({f"sd_{c}": f"{r.spread[c]:.4f}" for c in self.channels})
            row.update(val_accuracy=f"{r.verdict.accuracy:.4f}", auc=f"{r.verdict.auc:.4f}",
                       p_value=f"{r.verdict.p_value:.3g}", n_wells=r.verdict.n_wells, repeats=r.repeats,
                       learned=str(r.learned).lower(), reason=r.verdict.reason)
            rows.append(row)
        return rows


@dataclass
class ExplainEvent:
    kind: str  # "start", "train" (a TrainEvent of the current model), "row", "panel", "done"
    phenotype: str
    model_index: int  # models finished so far
    total_models: int
    train_event: TrainEvent | None = None
    row: PhenotypeRow | None = None
    message: str = ""
    elapsed: float = 0.0
    side_by_side: int = 1  # models training at once (fold models train side by side on the CPU)
    in_flight: float | None = None  # the share done of the models training now, summed (None: this one's)

    @property
    def fraction(self) -> float:
        """Share of the whole explain run done (for one progress bar)."""
        inner = 0.0
        if self.in_flight is not None:
            inner = self.in_flight
        elif self.train_event is not None and self.train_event.total_steps:
            inner = self.train_event.step / self.train_event.total_steps
        return min(1.0, (self.model_index + inner) / max(1, self.total_models))


def make_row(phenotype: str, channels: list[str], alphas: list[np.ndarray], verdict: Verdict,
         partial: bool = False) -> PhenotypeRow:
    stacked = np.stack(alphas)  # (repeats, K, C)
    importance = stacked.mean(axis=1)  # per repeat, α averaged over the K blends
    mean, sd = importance.mean(0), importance.std(0, ddof=1) if len(importance) > 1 else np.zeros(len(channels))
    return PhenotypeRow(phenotype, {c: float(v) for c, v in zip(channels, mean)},
                        {c: float(v) for c, v in zip(channels, sd)}, verdict, stacked.mean(0).tolist(), len(alphas),
                        partial)
