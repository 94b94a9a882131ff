"""Channel importance at one moment, with what says how far to trust it: the one type every view of α
reads (bar chart, composite, verdict line, CSV), whether α comes from a live training round, a
finished or loaded model, or a row of the per-phenotype matrix.

α is read off a model in one place — here (``of_model``, ``live``, ``of_row``) — and turned into bars in
one place, the chart (``widgets/importance/bars.py``). Everything between (the trainer's events, the
jobs, the session, the docks) passes the snapshot on without reading its numbers; the texts, the CSV
rows, the α history and the composite's blend are the snapshot's own methods. It never travels without
the verdict beside it, so no view can show α as an answer on its own (``tests/test_alpha_path.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ImportanceSnapshot:
    channels: list[str]
    alpha: np.ndarray | None  # (K, C): one blend per mixing output; None for models without α
    importance: dict[str, float] | None  # per channel: α (mean over outputs) or SE attention
    stats: Any = None  # ChannelStats the composite is normalised with
    history: list[dict[str, float]] = field(default_factory=list)  # importance per evaluation round
    kind: str = "dcmix"
    epoch: int = 0  # evaluation round (0: before the first, or unknown)
    final: bool = True  # False while training: not judged yet
    token: Any = None  # identifies the model or run (a permutation result belongs to one token)
    verdict: dict | None = None  # the honesty gate on held-out test wells (Verdict.to_dict())
    val_accuracy: float | None = None  # live runs: the latest validation round
    phenotype: str | None = None  # a row of the per-phenotype matrix; None: a whole model
    reference: str | None = None  # the row's negative control

    # --- where snapshots come from ----------------------------------------------------------------
    @classmethod
    def of_model(cls, trained, token=None) -> "ImportanceSnapshot | None":
        """A finished or loaded TrainedModel (None for None)."""
        if trained is None:
            return None
        meta = trained.metadata
        history = [rec.get("importance") for rec in meta.get("history", []) if isinstance(rec, dict)]
        verdict = meta.get("verdict")
        return cls(channels=list(trained.channels), alpha=trained.alpha_matrix(), importance=trained.importance(),
                   stats=trained.stats, history=[h for h in history if h], kind=trained.kind,
                   epoch=best_round(meta), final=True, token=token if token is not None else id(trained),
                   verdict=dict(verdict) if isinstance(verdict, dict) else None,
                   val_accuracy=meta.get("val_accuracy"))

    @classmethod
    def live(cls, model, channels, stats, history, epoch: int, token, val_accuracy=None) -> "ImportanceSnapshot":
        """A ChannelClassifier during training (round ``epoch``): α read off its mixing layer now."""
        mixing = getattr(model, "mixing", None)
        alpha = None if mixing is None else mixing.alpha().detach().float().cpu().numpy()
        values = model.importance()
        importance = None if values is None else {c: float(v) for c, v in zip(channels, values)}
        return cls(channels=list(channels), alpha=alpha, importance=importance,
                   stats=stats, history=[dict(h) for h in history], kind=model.kind, epoch=int(epoch),
                   final=False, token=token, val_accuracy=val_accuracy)

    @classmethod
    def of_row(cls, row, channels, stats, reference: str, token) -> "ImportanceSnapshot":
        """One row of the per-phenotype matrix: its mean α (K, C), importance and verdict."""
        return cls(channels=list(channels), alpha=np.asarray(row.alpha, np.float32), importance=dict(row.importance),
                   stats=stats, kind="dcmix", final=True, token=token, verdict=row.verdict.to_dict(),
                   phenotype=row.phenotype, reference=reference)

    # --- how far to trust it --------------------------------------------------------------------
    @property
    def learned(self) -> bool | None:
        """The honesty gate's answer (None: not judged, e.g. live or a model saved before the gate)."""
        return None if not self.verdict else bool(self.verdict.get("learned"))

    def verdict_text(self) -> str:
        """The line shown beside α: held-out accuracy and LEARNED / NOT LEARNED with the gate's reason."""
        verdict = self.verdict
        if not self.final:
            return (f"validation accuracy {_pct(self.val_accuracy)} so far; "
                    "not judged yet (the test wells judge the model when training ends)")
        if not verdict:
            acc = self.val_accuracy
            return ("not judged: this model was saved before the honesty gate"
                    + (f" (validation accuracy {_pct(acc)})" if acc is not None else "; held-out accuracy unknown"))
        if not verdict.get("n_wells"):
            return f"NOT LEARNED: {verdict.get('reason', '')}"
        head = (f"held-out test accuracy {_pct(verdict['accuracy'])} on {verdict['n_wells']} wells "
                f"(chance {_pct(verdict['chance'])}, AUC {float(verdict['auc']):.2f})")
        if verdict.get("learned"):
            return f"learned: {head}"
        return f"NOT LEARNED: {head}; {verdict.get('reason', '')}"


    def verdict_line(self, with_alpha: bool = False) -> str:
        """:meth:`verdict_text` marked ⚠ when the model learned nothing; ``with_alpha`` adds α, largest first."""
        text = self.verdict_text()
        if with_alpha and self.importance:
            ranked = sorted(self.importance.items(), key=lambda kv: -kv[1])
            text += " · α " + ", ".join(f"{c} {v:.2f}" for c, v in ranked)
        return ("⚠ " if self.learned is False else "") + text

    def describe(self) -> str:
        """What the α shown belongs to: a phenotype's row, a live round, or a model."""
        if self.phenotype:
            return (f"α of {self.phenotype} vs {self.reference or 'the reference'} "
                    "(its own blend, mean over the folds)")
        if not self.final:
            return f"{self.kind}: live α during training, evaluation round {self.epoch}"
        return f"{self.kind} model" + (f" (kept from evaluation round {self.epoch})" if self.epoch else "")

    # --- what the views draw and write ------------------------------------------------------------
    def history_series(self) -> tuple[list[int], dict[str, list[float]]]:
        """(rounds, {channel: importance per evaluation round}) for the α-history lines."""
        if not self.history:
            return [], {}
        epochs = list(range(1, len(self.history) + 1))
        return epochs, {c: [float(h.get(c, math.nan)) for h in self.history] for c in self.channels}

    def csv_rows(self, permutation: dict | None = None) -> list[dict]:
        """One row per channel (``CSV_COLUMNS``): α, permutation drop and its normalised share (blank if
        unknown), and the held-out test accuracy and verdict (α is never exported without them)."""
        verdict = self.verdict or {}
        gate = self.learned
        importance = self.importance or {}
        drop = (permutation or {}).get("drop", {})
        normalized = (permutation or {}).get("normalized", {})

        def fmt(value):
            return "" if value is None else f"{float(value):.6g}"

        return [{"channel": c, "alpha": fmt(importance.get(c)), "permutation_drop": fmt(drop.get(c)),
                 "permutation_normalized": fmt(normalized.get(c)), "test_accuracy": fmt(verdict.get("accuracy")),
                 "learned": "" if gate is None else str(gate).lower()} for c in self.channels]

    @property
    def blends(self) -> int:
        """How many composites α calls for (one per mixing output; 0 without α)."""
        return 0 if self.alpha is None else len(np.atleast_2d(self.alpha))

    def channel_order(self, plate_channels) -> list[int]:
        """Where each of the snapshot's channels is among ``plate_channels`` (DcmixError if one is missing)."""
        from ..model import match_channels

        return match_channels(self.channels, plate_channels)

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """A site (C, Y, X) in the snapshot's channel order, normalised as the model sees it."""
        return self.stats.normalize(raw)

    def normalization_key(self) -> tuple:
        """Identifies the normalisation (a cached normalised site is valid while this is unchanged)."""
        return self.stats.low.tobytes(), self.stats.high.tobytes()

    def blend(self, normalised: np.ndarray) -> np.ndarray:
        """The composite Σ_c α_c x_c of a normalised site, one image per mixing output: (K, Y, X)."""
        from ..model.mixing import composite

        return composite(normalised, np.atleast_2d(self.alpha))


CSV_COLUMNS = ("channel", "alpha", "permutation_drop", "permutation_normalized", "test_accuracy", "learned")


def write_importance_csv(path, rows: list[dict]) -> None:
    """Write :meth:`ImportanceSnapshot.csv_rows` atomically (a crash never leaves half a CSV)."""
    import csv

    from .._io import atomic_write

    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def best_round(metadata: dict) -> int:
    """Evaluation round of the kept checkpoint (0: unknown), from the history and ``best_step``."""
    history = [rec for rec in metadata.get("history", []) if isinstance(rec, dict)]
    step = metadata.get("best_step")
    for rec in history:
        if step and rec.get("step") == step:
            return int(rec.get("epoch") or 0)
    return int(metadata.get("best_epoch") or len(history))  # models saved before the step budget


def _pct(value) -> str:
    return "–" if value is None or not math.isfinite(float(value)) else f"{100 * float(value):.0f}%"
