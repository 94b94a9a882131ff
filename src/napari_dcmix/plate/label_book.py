"""The labels being edited: (plate, well) -> class, the ordered class list, their edits and checks.

No Qt, no torch. The session owns one (and says ``labels_changed`` after each edit), the docks read
and edit it, and :func:`class_problem` is the check the Trainer raises, so dock and CLI say the same.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

MIN_WELLS_PER_CLASS = 3
NO_LABELED_SITES = "no labeled sites on this plate; label some wells (or check the labels CSV and column)"

Labels = dict[tuple[str, str], str]  # (plate, well) -> class


def class_problem(classes: Sequence[str]) -> str | None:
    """Why these labeled classes cannot train a classifier (what the Trainer raises); None if they can."""
    if not classes:
        return NO_LABELED_SITES
    if len(classes) < 2:
        return f"only one class ({classes[0]}) is labeled; a classifier needs at least two classes"
    return None


def class_well_counts(plate, labels: Labels) -> dict[str, int]:
    """Labeled wells per class that have images on ``plate`` (all labeled wells without a plate)."""
    if plate is None:
        counts = Counter(v for v in labels.values() if v)
    else:
        counts = Counter(v for (p, w), v in labels.items() if v and plate.sites_of(w, p))
    return dict(sorted(counts.items()))


def class_warnings(counts: dict[str, int], minimum: int = MIN_WELLS_PER_CLASS) -> list[str]:
    """Human warnings about classes too small to train and validate on."""
    warnings = [f"{name}: only {n} well{'s' if n != 1 else ''} (label at least {minimum})"
                for name, n in counts.items() if n < minimum]
    if len(counts) == 1:
        warnings.append(f"only one class ({next(iter(counts))}); label wells of at least two classes")
    return warnings


def labels_problem(labels: Labels, counts: dict[str, int]) -> str | None:
    """Why these labels (``counts``: :func:`class_well_counts` on the plate) cannot train yet; None if they can."""
    if not labels:
        return "no wells are labeled; load a labels CSV or label wells in the plate browser"
    if not counts:
        return "none of the labeled wells is on this plate; check the labels CSV and the label column"
    return class_problem(list(counts))


class LabelBook:
    """Labels and the class list in display (and colour) order; a class may have no wells yet."""

    def __init__(self, labels: Labels | None = None, classes: Iterable[str] = ()):
        self.labels: Labels = {}
        self.classes: list[str] = []
        self.add_classes(classes)
        self.replace(labels or {})

    # --- edits ------------------------------------------------------------------------------
    def replace(self, labels: Labels, reset_classes: bool = False) -> None:
        """Take ``labels`` (loaded from a CSV…); their classes join the list, after the known ones."""
        self.labels = dict(labels)
        if reset_classes:
            self.classes = []
        self.add_classes(sorted(set(v for v in self.labels.values() if v)))

    def add_class(self, name: str) -> str | None:
        """Add a class (no wells yet); its stripped name, None if empty."""
        name = name.strip()
        if name and name not in self.classes:
            self.classes.append(name)
        return name or None

    def add_classes(self, names: Iterable[str]) -> None:
        for name in names:
            self.add_class(name)

    def rename_class(self, old: str, new: str) -> bool:
        """Rename a class and its wells; False if ``new`` is empty, unchanged or taken, or ``old`` unknown."""
        new = new.strip()
        if not new or new == old or new in self.classes or old not in self.classes:
            return False
        self.classes[self.classes.index(old)] = new
        self.labels = {k: (new if v == old else v) for k, v in self.labels.items()}
        return True

    def remove_class(self, name: str) -> int:
        """Remove a class; its wells become unlabeled. How many wells were."""
        used = self.well_count(name)
        if name in self.classes:
            self.classes.remove(name)
        self.labels = {k: v for k, v in self.labels.items() if v != name}
        return used

    def assign(self, plate: str, wells: Iterable[str], cls: str | None) -> int:
        """Label ``wells`` of ``plate`` with ``cls`` (None: unlabel them); how many wells."""
        wells = list(wells)
        if cls:
            self.add_class(cls)
        for well in wells:
            if cls:
                self.labels[(plate, well)] = cls
            else:
                self.labels.pop((plate, well), None)
        return len(wells)

    def clear(self, plate: str, wells: Iterable[str]) -> int:
        return self.assign(plate, wells, None)

    # --- reading ----------------------------------------------------------------------------
    def well_count(self, name: str) -> int:
        return sum(v == name for v in self.labels.values())

    def counts(self) -> dict[str, int]:
        """Wells per class, every listed class (0 if none), then any class only the labels name."""
        counts = dict.fromkeys(self.classes, 0)
        for value in self.labels.values():
            counts[value] = counts.get(value, 0) + 1
        return counts

    def plate_labels(self, plate: str) -> dict[str, str]:
        """Well -> class on one plate."""
        return {w: c for (p, w), c in self.labels.items() if p == plate}

    def counts_on(self, plate) -> dict[str, int]:
        """Labeled wells per class that have images on ``plate`` (a Plate), sorted by class."""
        return class_well_counts(plate, self.labels)

    def problem(self, plate) -> str | None:
        """Why training on ``plate`` cannot start with these labels; None if it can."""
        return labels_problem(self.labels, self.counts_on(plate))

    def warnings(self, plate) -> list[str]:
        return class_warnings(self.counts_on(plate))


def display_classes(classes: Iterable[str], predictions: dict | None = None) -> list[str]:
    """The class list in display (and colour) order: the user's classes, then any class a model
    predicts that the user has not listed."""
    out = list(dict.fromkeys(classes))
    for pred in (predictions or {}).values():
        name = pred.get("prediction")
        if name and name not in out:
            out.append(name)
    return out
