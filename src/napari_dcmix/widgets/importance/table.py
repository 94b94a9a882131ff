"""Channel-importance data without Qt for the importance dock: α history lines and the CSV rows.

Everything reads an :class:`~napari_dcmix.training.snapshot.ImportanceSnapshot` (α with its verdict),
the one shape for live training rounds, finished or loaded models and per-phenotype rows.
"""

from __future__ import annotations

import math
import os

CSV_COLUMNS = ("channel", "alpha", "permutation_drop", "permutation_normalized", "test_accuracy", "learned")


def history_series(snapshot) -> tuple[list[int], dict[str, list[float]]]:
    """(rounds, {channel: importance per evaluation round}) for the α-history lines."""
    if snapshot is None or not snapshot.history:
        return [], {}
    epochs = list(range(1, len(snapshot.history) + 1))
    return epochs, {c: [float(h.get(c, math.nan)) for h in snapshot.history] for c in snapshot.channels}


def csv_rows(snapshot, permutation: dict | None = None) -> list[dict]:
    """One row per channel: channel, alpha, permutation_drop, permutation_normalized (blank if unknown),
    and the model's held-out test accuracy and verdict (α is never exported without them)."""
    if snapshot is None:
        return []
    verdict = snapshot.verdict or {}
    gate = snapshot.learned
    importance = snapshot.importance or {}
    drop = (permutation or {}).get("drop", {})
    normalized = (permutation or {}).get("normalized", {})

    def fmt(value):
        return "" if value is None else f"{float(value):.6g}"

    return [{"channel": c, "alpha": fmt(importance.get(c)), "permutation_drop": fmt(drop.get(c)),
             "permutation_normalized": fmt(normalized.get(c)), "test_accuracy": fmt(verdict.get("accuracy")),
             "learned": "" if gate is None else str(gate).lower()} for c in snapshot.channels]


def write_importance_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write the rows atomically (a crash never leaves half a CSV)."""
    import csv

    from ..._io import atomic_write

    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
