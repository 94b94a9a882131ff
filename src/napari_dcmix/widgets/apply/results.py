"""Pure logic behind the Apply dock (no Qt): the worker's generator, model summary, table sort keys and
the Z′ boxes' choices. The negative-control guess and the Z′ values and text are the core's
(``training/controls``), the same as ``predict --labels``.
"""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import closing

from ...errors import DcmixError
from ...plate.wells import well_position
from ...training.predictor import predict_sites
from ...training.controls import reference_guess, z_prime_pair_text, z_primes, z_primes_text

log = logging.getLogger(__name__)

EVERY_PHENOTYPE = "every phenotype"  # the Z′ "positive control" choice: each class against the negative one
CHOOSE_REFERENCE = "choose…"  # the negative-control box while the class names do not tell which it is


def stream_predictions(run_id, trained, plate, keys, device):
    """Job body: yields (run_id, SitePrediction), returns (run_id, error message or None).

    It never raises (an error becomes one notification, not a traceback); cancelling the job closes
    it, which closes the site generator (and torch's per-thread no_grad state) in the worker thread.
    """
    try:
        with closing(predict_sites(trained, plate, keys, device=device)) as predictions:
            for pred in predictions:
                yield run_id, pred
    except DcmixError as err:
        return run_id, str(err)
    except Exception as err:  # noqa: BLE001 - an unexpected failure must not take napari down
        log.exception("prediction failed")
        return run_id, (f"prediction stopped by an unexpected error ({type(err).__name__}: {err}); "
                        "the results so far are kept; please report this with the napari log")
    return run_id, None


def model_summary(model) -> str:
    """What a biologist checks before predicting: kind, channels, classes, validation accuracy."""
    acc = model.metadata.get("val_accuracy")
    acc_text = f"{acc:.0%}" if isinstance(acc, (int, float)) and acc == acc else "not measured"
    verdict = model.metadata.get("verdict")
    gate = ""
    if isinstance(verdict, dict) and verdict.get("n_wells"):
        gate = (f" · held-out test accuracy: {verdict['accuracy']:.0%}"
                + ("" if verdict.get("learned") else " (NOT LEARNED: do not trust its calls)"))
        z = model.metadata.get("z_prime")  # the phenotype panel's out-of-fold Z′ per phenotype
        if isinstance(z, dict) and z:
            gate += " · held-out Z′: " + ", ".join(
                f"{k} {v:.2f}" if isinstance(v, (int, float)) else f"{k} n/a" for k, v in z.items())
    return (f"{model.kind} model · channels: {', '.join(model.channels)} · classes: {', '.join(model.classes)}"
            f" · validation accuracy: {acc_text}{gate}")


def sort_key(column: str, text: str):
    """Table cells sort as what they are: wells in plate order, sites and numbers numerically."""
    if column == "well":
        return well_position(text)
    if column == "site":
        return int(text)
    if column == "confidence" or column.startswith("p_"):
        return float(text)
    return text


def reference_choices(classes: list[str]) -> tuple[list[str], str]:
    """(negative-control items, default): the core's guess by name, else a 'choose' item first."""
    guess, _why = reference_guess(classes)
    if guess is None:
        return [CHOOSE_REFERENCE, *classes], CHOOSE_REFERENCE
    return list(classes), guess


def positive_choices(classes: list[str], reference: str) -> tuple[list[str], str]:
    """(Z′ positive-control items, default): with several phenotypes, every one of them by default."""
    others = [c for c in classes if c != reference]
    if len(others) > 1:
        return [EVERY_PHENOTYPE, *classes], EVERY_PHENOTYPE
    return list(classes), (others or [""])[0]


def z_prime_text(predictions: dict, labels: dict, negative: str, positive: str, classes: list[str]) -> str:
    """The dock's Z′ line (the core's text) for the chosen controls, on the session's per-well records."""
    classes = classes or sorted({c for c in labels.values() if c})
    if not negative or negative == CHOOSE_REFERENCE:
        return f"Z′: {reference_guess(classes)[1]}"
    well_probs = {w: rec["probabilities"] for w, rec in predictions.items()}
    if positive == EVERY_PHENOTYPE:
        return z_primes_text(z_primes(well_probs, labels, negative, classes), negative)
    if classes and positive not in classes:
        return f"Z′: the model has no class '{positive}'; choose one of {', '.join(classes)}"
    return z_prime_pair_text(well_probs, labels, negative, positive)


def counts_text(rows: list[dict], classes: list[str], unit: str) -> str:
    """Per-class counts of the predicted classes, e.g. 'negative: 40 · positive: 56  (96 wells)'."""
    if not rows:
        return ""
    counts = Counter(row["prediction"] for row in rows)
    return " · ".join(f"{c}: {counts[c]}" for c in classes if counts[c]) + f"  ({len(rows)} {unit})"
