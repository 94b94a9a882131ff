"""What explain says in words: a matrix row's line and tooltip, the progress and the finished line.
One wording for the Explain dock and the demo's printout."""

from __future__ import annotations

import math

from .explain_matrix import ALL_PHENOTYPES
from .panel import trust_line
from .progress import probing_text


def row_text(row) -> str:
    """One line of the row list: phenotype, its top channel and held-out accuracy, or NOT LEARNED."""
    acc = row.verdict.accuracy
    acc_text = "–" if acc is None or not math.isfinite(acc) else f"{acc:.2f}"
    head = "all phenotypes (every class at once)" if row.phenotype == ALL_PHENOTYPES else row.phenotype
    if row.partial:
        head += f" (partial: {row.repeats} model{'s' if row.repeats != 1 else ''})"
    if not row.learned:
        return f"{head}: NOT LEARNED (held-out acc {acc_text}); hover for why"
    return f"{head}: top {row.top_channel} α {row.importance[row.top_channel]:.2f}, held-out acc {acc_text}"


def row_tooltip(row) -> str:
    return f"{row.phenotype}: {row.verdict.summary()}" + ("" if row.learned else f"\nwhy: {row.verdict.reason}")


def progress_text(event) -> str:
    """The status line while explaining: which phenotype, which model of how many."""
    if event.kind in ("start", "panel", "done") or event.kind == "row" and event.message:
        return event.message
    what = ("the all-phenotypes model" if event.phenotype == ALL_PHENOTYPES else
            f"coupled model, {event.phenotype}" if event.phenotype.startswith("fold ") else
            f"{event.phenotype} vs reference")
    first = min(event.model_index + 1, event.total_models)
    last = min(event.model_index + event.side_by_side, event.total_models)
    models = f"model {first}" if last <= first else f"models {first}–{last}"
    text = f"{models}/{event.total_models}{' side by side' if last > first else ''}: {what}"
    inner = event.train_event
    if inner is not None and inner.total_steps:
        text += f", step {inner.step}/{inner.total_steps}" + probing_text(inner).replace(" · ", ", ")
    return text


def finished_text(matrix, cancelled: bool, failed: bool, new_model=None) -> str:
    """What the status line says when the worker stops; ``new_model``: the model Apply now predicts with."""
    if matrix is None or not matrix.rows:
        return "explain failed; see the notification" if failed else "explain stopped before any phenotype finished"
    kept = f"{len(matrix.rows)} row{'s' if len(matrix.rows) != 1 else ''}"
    if failed:
        return f"explain stopped by an error; kept the {kept} that finished"
    partial = [r for r in matrix.rows if r.partial]
    if partial:
        n = partial[0].repeats
        return (f"stopped: kept the {n} finished fold model{'s' if n != 1 else ''} in {kept} marked partial; "
                "their figures are over the wells those models judged (no phenotype panel: run explain to the end)")
    if cancelled or not matrix.complete:
        return f"cancelled: kept the {kept} that finished"
    not_learned = [r.phenotype for r in matrix.rows if not r.learned]
    text = f"explained against {matrix.reference}: {kept}"
    if not_learned:
        text += f"; NOT LEARNED: {', '.join(not_learned)} (greyed; do not read their α)"
    if new_model is not None:
        text += f". Apply now predicts with the {trust_line(new_model)} (the session's model)"
    return text



