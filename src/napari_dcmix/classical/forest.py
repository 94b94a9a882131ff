"""The forest's answer: per-well features, a random forest per phenotype (against the reference) and
one over all classes, judged out of fold, with channel importance = the forest's importance summed over
each channel's features (CellProfiler Analyst's approach).

Every accuracy here is out of fold over wells: a well is scored only by a forest that never saw it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import DcmixError
from ..plate import Plate
from .features import FEATURE_NAMES, site_features

ALL_CLASSES = "all phenotypes"
TREES = 500


@dataclass
class WellTable:
    """Features per well: ``values`` (wells, channels × features), plate-normalised, in ``wells`` order."""

    wells: list[tuple[str, str]]
    channels: list[str]
    values: np.ndarray

    def channel_of_column(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.channels)), len(FEATURE_NAMES))


@dataclass
class ForestRow:
    """One question: a phenotype against the reference (or every class at once)."""

    phenotype: str
    accuracy: float                      # out of fold, per well
    auc: float | None                    # out of fold (two classes only)
    shares: dict[str, float]             # channel -> its share of the forest's importance (sums to 1)
    n_wells: int

    @property
    def top_channel(self) -> str:
        return max(self.shares, key=self.shares.get)


@dataclass
class ForestAnswer:
    reference: str
    channels: list[str]
    rows: list[ForestRow]
    predictions: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # all classes, out of fold
    seconds: float = 0.0

    def row(self, phenotype: str) -> ForestRow:
        return next(r for r in self.rows if r.phenotype == phenotype)


def well_features(plate: Plate, wells, progress: Callable[[int, int], None] | None = None) -> WellTable:
    """Features of every site of ``wells`` ((plate, well) pairs), each plate id normalised on its own
    statistics, averaged per well, then z-scored per plate (median / IQR over the wells given)."""
    wells = sorted(set(wells))
    stats = {pid: plate.channel_stats(plate_id=pid) for pid in sorted({p for p, _ in wells})}
    rows = []
    for n, (pid, well) in enumerate(wells):
        sites = [site_features(stats[pid].normalize(plate.read_site(k))) for k in plate.sites_of(well, pid)]
        if not sites:
            raise DcmixError(f"well {well} of {pid or 'the plate'} has no readable site; unlabel it or fix its files")
        rows.append(np.mean(sites, axis=0).ravel())
        if progress is not None:
            progress(n + 1, len(wells))
    values = np.array(rows)
    for pid in stats:  # each plate on its own: a brighter plate does not look like another phenotype
        idx = [i for i, (p, _) in enumerate(wells) if p == pid]
        centre = np.median(values[idx], axis=0)
        spread = np.subtract(*np.percentile(values[idx], [75, 25], axis=0))
        values[idx] = (values[idx] - centre) / np.where(spread > 1e-12, spread, 1.0)
    return WellTable(wells, list(plate.channels), values)


def _forest(seed: int, trees: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=1, class_weight="balanced")


def _out_of_fold(x: np.ndarray, y: np.ndarray, folds: int, seed: int, trees: int) -> np.ndarray:
    """Class probabilities of every row from forests that did not train on it (stratified folds)."""
    from sklearn.model_selection import StratifiedKFold

    classes = np.unique(y)
    folds = min(folds, int(min((y == c).sum() for c in classes)))
    if folds < 2:
        raise DcmixError("every class needs at least 2 labeled wells for the forest's out-of-fold figures")
    probs = np.zeros((len(y), len(classes)))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        forest = _forest(seed, trees).fit(x[train], y[train])
        probs[test] = forest.predict_proba(x[test])
    return probs


def _row(name: str, table: WellTable, rows: np.ndarray, y: np.ndarray, folds: int, seed: int,
         trees: int) -> tuple[ForestRow, np.ndarray]:
    from sklearn.metrics import roc_auc_score

    x = table.values[rows]
    probs = _out_of_fold(x, y, folds, seed, trees)
    classes = np.unique(y)
    accuracy = float((classes[probs.argmax(1)] == y).mean())
    auc = float(roc_auc_score(y == classes[1], probs[:, 1])) if len(classes) == 2 else None
    importance = _forest(seed, trees).fit(x, y).feature_importances_
    per_channel = np.bincount(table.channel_of_column(), weights=importance, minlength=len(table.channels))
    shares = {c: float(v / max(per_channel.sum(), 1e-12)) for c, v in zip(table.channels, per_channel)}
    return ForestRow(name, accuracy, auc, shares, int(len(y))), probs


def explain_with_forest(plate: Plate, labels: dict, reference: str, folds: int = 3, seed: int = 0,
                        trees: int = TREES, table: WellTable | None = None) -> ForestAnswer:
    """Each phenotype against ``reference`` and all classes at once, out of fold over wells.
    ``labels``: (plate, well) -> class; ``table``: features already computed for those wells."""
    start = time.perf_counter()
    labelled = {w: c for w, c in labels.items() if c and plate.sites_of(w[1], w[0])}
    if reference not in set(labelled.values()):
        raise DcmixError(f"no labeled well of the reference class {reference!r}; choose one of the labeled classes")
    table = table or well_features(plate, labelled)
    y_all = np.array([labelled[w] for w in table.wells])
    rows, probs = [], None
    for phenotype in sorted(set(y_all) - {reference}):
        pick = np.flatnonzero(np.isin(y_all, [reference, phenotype]))
        row, probs = _row(phenotype, table, pick, y_all[pick], folds, seed, trees)
        rows.append(row)
    answer = ForestAnswer(reference, table.channels, rows)
    if len(rows) == 1:  # one phenotype: its row is the all-classes forest
        answer.predictions = {w: dict(zip(sorted(set(y_all)), map(float, p))) for w, p in zip(table.wells, probs)}
    if len(rows) > 1:
        everything = np.arange(len(y_all))
        row, probs = _row(ALL_CLASSES, table, everything, y_all, folds, seed, trees)
        rows.append(row)
        classes = sorted(set(y_all))
        answer.predictions = {w: dict(zip(classes, map(float, p))) for w, p in zip(table.wells, probs)}
    answer.seconds = time.perf_counter() - start
    return answer
