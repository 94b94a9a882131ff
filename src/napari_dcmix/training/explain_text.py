"""Per-phenotype explain for the Channel importance dock, without Qt: the worker's generator, the
reference-class choice, row texts and the export guard. Kept apart so the panel stays thin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

from ..errors import DcmixError
from .explain import ALL_PHENOTYPES, ExplainConfig, Explainer, guess_reference
from .panel import trust_line

CHOOSE_REFERENCE = "choose the negative control…"
STEP_EVENTS_EVERY = 10  # step events forwarded to the GUI thread: enough for a smooth bar, cheap


@dataclass
class ExplainJob:
    """What the panel needs after the worker stops: the explainer (its partial ``result``, ``model``)
    and the normalisation statistics the row composites are drawn with."""

    token: object = field(default_factory=object)
    explainer: Explainer | None = None


def explain_updates(job: ExplainJob, plate, labels: dict, config: ExplainConfig,
                    torch_threads: int | None = None) -> Iterator:
    """Worker body: build the Explainer and run it; closing this closes it (finished rows are kept)."""
    import torch

    previous = torch.get_num_threads()
    if torch_threads:
        torch.set_num_threads(torch_threads)
    try:
        job.explainer = Explainer(plate, labels, config)
        run = job.explainer.run()
        try:
            for event in run:
                inner = event.train_event
                if inner is not None and inner.kind == "step" and inner.step % STEP_EVENTS_EVERY:
                    continue
                yield event
        finally:
            run.close()
    finally:
        torch.set_num_threads(previous)


def reference_choices(classes: list[str]) -> tuple[list[str], str | None, str]:
    """(combo items, pre-selected class or None, hint): the guessed negative control, else ask the user."""
    if len(classes) < 2:
        return [], None, "label wells of a negative control and at least one phenotype to explain"
    try:
        guess = guess_reference(classes)
    except DcmixError as err:
        return [CHOOSE_REFERENCE, *classes], None, str(err)
    return list(classes), guess, f"reference guessed from the class names: {guess}"


def chosen_reference(text: str, classes: list[str]) -> str:
    """The reference the user picked; DcmixError (saying what to do) while none is chosen."""
    if text in classes:
        return text
    try:
        return guess_reference(classes)
    except DcmixError:
        raise DcmixError("choose the reference class (the negative control) in the Reference box; "
                         "no class is named like one") from None


def row_text(row) -> str:
    """One line of the row list: phenotype, its top channel and held-out accuracy, or NOT LEARNED."""
    acc = row.verdict.accuracy
    acc_text = "–" if acc is None or not math.isfinite(acc) else f"{acc:.2f}"
    head = "all phenotypes (multi-class summary)" if row.phenotype == ALL_PHENOTYPES else row.phenotype
    if not row.learned:
        return f"{head}: NOT LEARNED (held-out acc {acc_text}); hover for why"
    return f"{head}: top {row.top_channel} α {row.importance[row.top_channel]:.2f}, held-out acc {acc_text}"


def row_tooltip(row) -> str:
    return f"{row.phenotype}: {row.verdict.summary()}" + ("" if row.learned else f"\nwhy: {row.verdict.reason}")


def progress_text(event) -> str:
    """The status line while explaining: which phenotype, which model of how many."""
    if event.kind in ("start", "panel", "done") or event.kind == "row" and event.message:
        return event.message
    what = "the all-phenotypes model" if event.phenotype == ALL_PHENOTYPES else f"{event.phenotype} vs reference"
    text = f"model {min(event.model_index + 1, event.total_models)}/{event.total_models}: {what}"
    inner = event.train_event
    if inner is not None and inner.total_steps:
        text += f", step {inner.step}/{inner.total_steps}"
    return text


def finished_text(matrix, cancelled: bool, failed: bool, new_model=None) -> str:
    """What the status line says when the worker stops; ``new_model``: the model Apply now predicts with."""
    if matrix is None or not matrix.rows:
        return "explain failed; see the notification" if failed else "explain stopped before any phenotype finished"
    kept = f"{len(matrix.rows)} row{'s' if len(matrix.rows) != 1 else ''}"
    if failed:
        return f"explain stopped by an error; kept the {kept} that finished"
    if cancelled or not matrix.complete:
        return f"cancelled: kept the {kept} that finished"
    not_learned = [r.phenotype for r in matrix.rows if not r.learned]
    text = f"explained against {matrix.reference}: {kept}"
    if not_learned:
        text += f"; NOT LEARNED: {', '.join(not_learned)} (greyed; do not read their α)"
    if new_model is not None:
        text += f". Apply now predicts with the {trust_line(new_model)} (the session's model)"
    return text



