"""Channel-importance data without Qt: the payload the session publishes, chart bars, α history, CSV rows.

The payload is one dict shape for live training epochs and finished or loaded models, so the chart
and the composite never care where α came from::

    {"channels": [...], "alpha": (K, C) array | None, "importance": {ch: v} | None,
     "stats": ChannelStats, "history": [{ch: v} per epoch], "kind": "dcmix", "epoch": int,
     "final": bool, "token": object identifying the model/run}
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..colors import channel_rgb

CSV_COLUMNS = ("channel", "alpha", "permutation_drop", "permutation_normalized")
ALPHA_GROUP, PERMUTATION_GROUP = "α", "permutation"


def importance_payload(trained, token=None) -> dict | None:
    """The payload for a finished or loaded TrainedModel (None for None)."""
    if trained is None:
        return None
    history = [rec.get("importance") for rec in trained.metadata.get("history", []) if isinstance(rec, dict)]
    return {
        "channels": list(trained.channels),
        "alpha": trained.alpha_matrix(),
        "importance": trained.importance(),
        "stats": trained.stats,
        "history": [h for h in history if h],
        "kind": trained.kind,
        "epoch": int(trained.metadata.get("best_epoch") or len(history)),
        "final": True,
        "token": token if token is not None else id(trained),
    }


def live_payload(channels, alpha, importance, stats, history, kind, epoch, token) -> dict:
    """The payload of a training run at ``epoch`` (0 = before the first step)."""
    return {"channels": list(channels), "alpha": None if alpha is None else np.asarray(alpha, np.float32),
            "importance": dict(importance) if importance else None, "stats": stats,
            "history": [dict(h) for h in history], "kind": kind, "epoch": int(epoch), "final": False,
            "token": token}


@dataclass
class ChartData:
    """What the importance bar chart draws: one group of bars per measure, one bar per channel."""

    channels: list[str]
    colors: list[str]
    groups: dict[str, list[float]] = field(default_factory=dict)  # group name -> heights in channel order
    note: str = ""  # shown in the chart when there is nothing (or not everything) to draw


def chart_data(payload: dict | None, permutation: dict | None = None) -> ChartData:
    """Bars for α (if the model has it) and, beside them, normalised permutation importance."""
    if payload is None:
        return ChartData([], [], note="no model yet: train one or load one")
    channels = list(payload["channels"])
    data = ChartData(channels, channel_rgb(channels))
    importance = payload.get("importance")
    if importance:
        data.groups[ALPHA_GROUP] = [float(importance.get(c, math.nan)) for c in channels]
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
    """One row per channel: channel, alpha, permutation_drop, permutation_normalized (blank if unknown)."""
    if payload is None:
        return []
    importance = payload.get("importance") or {}
    drop = (permutation or {}).get("drop", {})
    normalized = (permutation or {}).get("normalized", {})

    def fmt(value):
        return "" if value is None else f"{float(value):.6g}"

    return [{"channel": c, "alpha": fmt(importance.get(c)), "permutation_drop": fmt(drop.get(c)),
             "permutation_normalized": fmt(normalized.get(c))} for c in payload["channels"]]


def write_importance_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write the rows atomically (a crash never leaves half a CSV)."""
    import csv

    from .._io import atomic_write

    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
