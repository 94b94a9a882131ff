"""Channel-importance data without Qt: the payload the session publishes, chart bars, α history, CSV rows.

The payload is one dict shape for live training epochs and finished or loaded models, so the chart
and the composite never care where α came from::

    {"channels": [...], "alpha": (K, C) array | None, "importance": {ch: v} | None,
     "stats": ChannelStats, "history": [{ch: v} per round], "kind": "dcmix", "epoch": int,
     "final": bool, "token": object identifying the model/run,
     "verdict": Verdict.to_dict() | None (the honesty gate on held-out wells; None: not judged yet),
     "val_accuracy": float | None (live runs: the latest validation round),
     "phenotype": str | None (a row of the per-phenotype matrix; None: the session's model)}

α never travels without the verdict beside it, so no view can show α as an answer on its own.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..colors import channel_rgb

CSV_COLUMNS = ("channel", "alpha", "permutation_drop", "permutation_normalized", "test_accuracy", "learned")
ALPHA_GROUP, PERMUTATION_GROUP = "α", "permutation"


def best_round(metadata: dict) -> int:
    """Evaluation round of the kept checkpoint (0: unknown), from the history and ``best_step``."""
    history = [rec for rec in metadata.get("history", []) if isinstance(rec, dict)]
    step = metadata.get("best_step")
    for rec in history:
        if step and rec.get("step") == step:
            return int(rec.get("epoch") or 0)
    return int(metadata.get("best_epoch") or len(history))  # models saved before the step budget


def importance_payload(trained, token=None) -> dict | None:
    """The payload for a finished or loaded TrainedModel (None for None)."""
    if trained is None:
        return None
    meta = trained.metadata
    history = [rec.get("importance") for rec in meta.get("history", []) if isinstance(rec, dict)]
    verdict = meta.get("verdict")
    return {
        "channels": list(trained.channels),
        "alpha": trained.alpha_matrix(),
        "importance": trained.importance(),
        "stats": trained.stats,
        "history": [h for h in history if h],
        "kind": trained.kind,
        "epoch": best_round(meta),
        "final": True,
        "token": token if token is not None else id(trained),
        "verdict": dict(verdict) if isinstance(verdict, dict) else None,
        "val_accuracy": meta.get("val_accuracy"),
        "phenotype": None,
    }


def live_payload(channels, alpha, importance, stats, history, kind, epoch, token, val_accuracy=None) -> dict:
    """The payload of a training run at ``epoch`` (0 = before the first step): not judged yet."""
    return {"channels": list(channels), "alpha": None if alpha is None else np.asarray(alpha, np.float32),
            "importance": dict(importance) if importance else None, "stats": stats,
            "history": [dict(h) for h in history], "kind": kind, "epoch": int(epoch), "final": False,
            "token": token, "verdict": None, "val_accuracy": val_accuracy, "phenotype": None}


def row_payload(row, channels, stats, reference: str, token) -> dict:
    """The payload of one row of the per-phenotype matrix: its mean α (K, C), importance and verdict."""
    return {"channels": list(channels), "alpha": np.asarray(row.alpha, np.float32),
            "importance": dict(row.importance), "stats": stats, "history": [], "kind": "dcmix", "epoch": 0,
            "final": True, "token": token, "verdict": row.verdict.to_dict(), "val_accuracy": None,
            "phenotype": row.phenotype, "reference": reference}


def learned(payload: dict | None) -> bool | None:
    """The honesty gate's answer for the payload's model (None: not judged, e.g. live or an old model)."""
    verdict = (payload or {}).get("verdict")
    return None if not verdict else bool(verdict.get("learned"))


def _pct(value) -> str:
    return "–" if value is None or not math.isfinite(float(value)) else f"{100 * float(value):.0f}%"


def verdict_text(payload: dict | None) -> str:
    """The line shown beside α: held-out accuracy and LEARNED / NOT LEARNED with the gate's reason."""
    if payload is None:
        return ""
    verdict = payload.get("verdict")
    if not payload.get("final", True):
        return (f"validation accuracy {_pct(payload.get('val_accuracy'))} so far; "
                "not judged yet (the test wells judge the model when training ends)")
    if not verdict:
        acc = payload.get("val_accuracy")
        return ("not judged: this model was saved before the honesty gate"
                + (f" (validation accuracy {_pct(acc)})" if acc is not None else "; held-out accuracy unknown"))
    if not verdict.get("n_wells"):
        return f"NOT LEARNED: {verdict.get('reason', '')}"
    head = (f"held-out test accuracy {_pct(verdict['accuracy'])} on {verdict['n_wells']} wells "
            f"(chance {_pct(verdict['chance'])}, AUC {float(verdict['auc']):.2f})")
    if verdict.get("learned"):
        return f"learned: {head}"
    return f"NOT LEARNED: {head}; {verdict.get('reason', '')}"


@dataclass
class ChartData:
    """What the importance bar chart draws: one group of bars per measure, one bar per channel."""

    channels: list[str]
    colors: list[str]
    groups: dict[str, list[float]] = field(default_factory=dict)  # group name -> heights in channel order
    note: str = ""  # shown in the chart when there is nothing (or not everything) to draw
    muted: bool = False  # the model learned nothing: α bars are greyed, never drawn like an answer


def chart_data(payload: dict | None, permutation: dict | None = None) -> ChartData:
    """Bars for α (if the model has it) and, beside them, normalised permutation importance."""
    if payload is None:
        return ChartData([], [], note="no model yet: train one or load one")
    channels = list(payload["channels"])
    data = ChartData(channels, channel_rgb(channels))
    importance = payload.get("importance")
    if importance:
        data.groups[ALPHA_GROUP] = [float(importance.get(c, math.nan)) for c in channels]
        if learned(payload) is False:
            data.muted = True
            data.note = "NOT LEARNED: do not read these α"
    else:
        data.note = f"the {payload.get('kind', 'all-channels')} model has no α; use permutation importance"
    if permutation:
        normalized = permutation.get("normalized", {})
        data.groups[PERMUTATION_GROUP] = [float(normalized.get(c, math.nan)) for c in channels]
    return data


def history_series(payload: dict | None) -> tuple[list[int], dict[str, list[float]]]:
    """(epochs, {channel: importance per epoch}) for the α-history lines."""
    if not payload or not payload.get("history"):
        return [], {}
    history = payload["history"]
    channels = list(payload["channels"])
    epochs = list(range(1, len(history) + 1))
    return epochs, {c: [float(h.get(c, math.nan)) for h in history] for c in channels}


def csv_rows(payload: dict | None, permutation: dict | None = None) -> list[dict]:
    """One row per channel: channel, alpha, permutation_drop, permutation_normalized (blank if unknown),
    and the model's held-out test accuracy and verdict (α is never exported without them)."""
    if payload is None:
        return []
    verdict = payload.get("verdict") or {}
    gate = learned(payload)
    importance = payload.get("importance") or {}
    drop = (permutation or {}).get("drop", {})
    normalized = (permutation or {}).get("normalized", {})

    def fmt(value):
        return "" if value is None else f"{float(value):.6g}"

    return [{"channel": c, "alpha": fmt(importance.get(c)), "permutation_drop": fmt(drop.get(c)),
             "permutation_normalized": fmt(normalized.get(c)), "test_accuracy": fmt(verdict.get("accuracy")),
             "learned": "" if gate is None else str(gate).lower()} for c in payload["channels"]]


def write_importance_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write the rows atomically (a crash never leaves half a CSV)."""
    import csv

    from .._io import atomic_write

    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
