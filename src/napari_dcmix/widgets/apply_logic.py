"""Pure logic behind the Apply dock (no Qt): the worker's generator, model summary, table sort keys,
Z′ control guesses and text. Kept apart so it is tested fast and the dock stays thin.
"""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import closing

from ..errors import DcmixError
from ..plate.wells import well_position
from ..training.predictor import predict_sites
from ..training.zfactor import z_prime, z_prime_quality

log = logging.getLogger(__name__)

NEGATIVE_HINTS = ("neg", "dmso", "control", "ctrl", "mock", "untreated", "vehicle")
EVERY_PHENOTYPE = "every phenotype"  # the Z′ "positive control" choice: each class against the negative one


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


def guess_controls(classes: list[str]) -> tuple[str, str]:
    """(negative, positive) guessed by name: 'neg', 'DMSO', 'control'… vs 'pos' or the first other class."""
    negatives = [c for c in classes if any(h in c.lower() for h in NEGATIVE_HINTS)]
    negative = (negatives or classes or [""])[0]
    others = [c for c in classes if c != negative]
    positive = ([c for c in others if "pos" in c.lower()] or others or [""])[0]
    return negative, positive


def control_values(predictions: dict, labels: dict, negative: str, positive: str) -> tuple[list[float], list[float]]:
    """P(positive) of the predicted wells LABELED positive and negative (controls are labeled)."""
    def values(cls):
        return [predictions[pw]["probabilities"][positive] for pw, label in labels.items()
                if label == cls and pw in predictions and positive in predictions[pw]["probabilities"]]
    return values(positive), values(negative)


def positive_choices(classes: list[str]) -> tuple[list[str], str]:
    """(Z′ positive-control items, default): with several phenotypes, every one of them by default."""
    negative, positive = guess_controls(classes)
    if len([c for c in classes if c != negative]) > 1:
        return [EVERY_PHENOTYPE, *classes], EVERY_PHENOTYPE
    return list(classes), positive


def z_primes(predictions: dict, labels: dict, negative: str, classes: list[str]) -> dict[str, float | None]:
    """Z′ of every class against ``negative`` on its own predicted probability (None: too few wells)."""
    found: dict[str, float | None] = {}
    for phenotype in (c for c in classes if c != negative):
        pos, neg = control_values(predictions, labels, negative, phenotype)
        try:
            found[phenotype] = z_prime(pos, neg)
        except DcmixError:
            found[phenotype] = None
    return found


def every_z_prime_text(predictions: dict, labels: dict, negative: str, classes: list[str]) -> str:
    """One line: each phenotype's Z′ against the negative control, and how many reach 0.5."""
    values = z_primes(predictions, labels, negative, classes)
    if not values or all(v is None for v in values.values()):
        return (f"Z′ vs {negative}: needs at least 2 predicted wells of {negative} and of each phenotype; "
                "predict the plate")
    parts = " · ".join(f"{c} {v:.2f}" if v is not None else f"{c} –" for c, v in values.items())
    good = sum(v is not None and v >= 0.5 for v in values.values())
    return (f"Z′ vs {negative} on P(phenotype): {parts}  ({good} of {len(values)} excellent, ≥ 0.5; "
            f"< 0 means the controls overlap)")


def z_prime_text(predictions: dict, labels: dict, negative: str, positive: str, classes: list[str]) -> str:
    """The Z′ line of the dock: value, how many wells, and what it means (or what to do to get one)."""
    if positive == EVERY_PHENOTYPE and negative:
        return every_z_prime_text(predictions, labels, negative,
                                  classes or sorted({c for c in labels.values() if c}))
    if not negative or not positive or negative == positive:
        return "Z′: choose two different control classes (labeled wells)"
    if classes and positive not in classes:
        return f"Z′: the model has no class '{positive}'; choose one of {', '.join(classes)}"
    pos, neg = control_values(predictions, labels, negative, positive)
    try:
        z = z_prime(pos, neg)
    except DcmixError as err:
        return f"Z′: {err}"
    return f"Z′ = {z:.2f} on P({positive}), {len(pos)} {positive} vs {len(neg)} {negative} wells: {z_prime_quality(z)}"


def counts_text(rows: list[dict], classes: list[str], unit: str) -> str:
    """Per-class counts of the predicted classes, e.g. 'negative: 40 · positive: 56  (96 wells)'."""
    if not rows:
        return ""
    counts = Counter(row["prediction"] for row in rows)
    return " · ".join(f"{c}: {counts[c]}" for c in classes if counts[c]) + f"  ({len(rows)} {unit})"
