"""Prediction tables other tools join on, and the per-site results figures are drawn from.

``pycytominer_rows`` writes CellProfiler/pycytominer's image-level keys (``Metadata_Plate``,
``Metadata_Well``, ``Metadata_Site``) so predictions merge with profiles without renaming columns.
:func:`write_plate_predictions` streams the table as the sites come in (a well's row as soon as its
last site is in), to a temporary file renamed over the output at the end, so memory stays flat from
96 to 1536 wells and an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import IO, Iterable

import numpy as np

from .._io import atomic_write
from ..errors import DcmixError
from ..plate import Plate, SiteKey
from ..plate.wells import well_position
from .predictor import predict_sites, prediction_rows
from .trained import TrainedModel

FORMATS = ("csv", "pycytominer")


def predict_site_probabilities(trained: TrainedModel, plate: Plate, device: str = "cpu",
                               progress=None) -> dict[SiteKey, np.ndarray]:
    """Every readable site -> class probabilities; ``progress(SitePrediction)`` per site.

    Under torchrun every rank predicts its shard of the sites; the shards are merged on every rank.
    """
    from .device import resolve_device
    from .distributed import setup

    ctx, dev = setup(resolve_device(device))
    results: dict[SiteKey, np.ndarray] = {}
    for pred in predict_sites(trained, plate, keys=plate.sites[ctx.rank::ctx.world_size], device=str(dev)):
        results[pred.key] = pred.probabilities
        if progress is not None:
            progress(pred)
    if ctx.active:
        results = {k: v for shard in ctx.gather(results) for k, v in shard.items()}
    return results


def pycytominer_rows(classes: list[str], site_probs: dict[SiteKey, np.ndarray], plate: Plate) -> list[dict]:
    """One row per site: Metadata_Plate/Well/Site, the prediction, then ``DCMIX_p_<class>`` features.

    Metadata_Plate is never empty (single-plate folders use the plate's name): merges need it.
    """
    rows = []
    for key in sorted(site_probs, key=lambda k: (k.plate, well_position(k.well), k.site)):
        probs = site_probs[key]
        best = int(np.argmax(probs))
        row = {"Metadata_Plate": key.plate or plate.name, "Metadata_Well": key.well, "Metadata_Site": key.site,
               "Metadata_DCMIX_Prediction": classes[best], "Metadata_DCMIX_Confidence": f"{probs[best]:.6f}"}
        row.update({f"DCMIX_p_{c}": f"{p:.6f}" for c, p in zip(classes, probs)})
        rows.append(row)
    return rows


class PredictionTable:
    """CSV rows written as sites arrive in plate order: per site at once, per well when the next well
    starts (so a well's mean is over exactly the sites ``well_probabilities`` would average)."""

    def __init__(self, handle: IO, classes: list[str], plate: Plate, fmt: str = "csv", per_site: bool = False):
        self.handle, self.classes, self.plate = handle, classes, plate
        self.fmt, self.per_site = fmt, per_site
        self.with_plate = len(plate.plates) > 1
        self.writer: csv.DictWriter | None = None
        self.rows, self.counts = 0, {}
        self._well: tuple[str, str] | None = None
        self._sum, self._n = 0.0, 0

    def add(self, key: SiteKey, probs: np.ndarray) -> None:
        if self.fmt == "pycytominer":
            self._write(pycytominer_rows(self.classes, {key: probs}, self.plate))
        elif self.per_site:
            self._write(prediction_rows(self.classes, {key: probs}, self.with_plate))
        else:
            if (key.plate, key.well) != self._well:
                self._flush_well()
                self._well, self._sum, self._n = (key.plate, key.well), 0.0, 0
            self._sum, self._n = self._sum + probs, self._n + 1

    def close(self) -> None:
        """Write the last well; a table without a single row is an error (nothing is renamed then)."""
        self._flush_well()
        if not self.rows:
            raise DcmixError("no predictions to write: no site of the plate could be read")

    def _flush_well(self) -> None:
        if self._well is not None and self._n:
            self._write(prediction_rows(self.classes, {self._well: self._sum / self._n}, self.with_plate))
        self._well = None

    def _write(self, rows: list[dict]) -> None:
        if self.writer is None:
            self.writer = csv.DictWriter(self.handle, fieldnames=list(rows[0]))
            self.writer.writeheader()
        self.writer.writerows(rows)
        for row in rows:
            name = row.get("prediction", row.get("Metadata_DCMIX_Prediction"))
            self.counts[name] = self.counts.get(name, 0) + 1
        self.rows += len(rows)


@dataclass
class WrittenPredictions:
    """What the CLI reports and draws figures from: rows written, calls per class, per-site results."""

    rows: int
    counts: dict[str, int]
    site_probabilities: dict[SiteKey, np.ndarray] = field(repr=False)


def write_plate_predictions(trained: TrainedModel, plate: Plate, out: str | os.PathLike, fmt: str = "csv",
                            per_site: bool = False, device: str = "cpu",
                            progress=None) -> WrittenPredictions | None:
    """Predict every site of ``plate`` and stream the table to ``out`` (atomically); ``progress(SitePrediction)``
    per site. Under torchrun every rank predicts its shard; rank 0 merges the shards and writes (the
    other ranks return None). Only the per-site probabilities are kept: a few numbers per site.
    """
    from .device import resolve_device
    from .distributed import setup

    ctx, dev = setup(resolve_device(device))
    site_probs: dict[SiteKey, np.ndarray] = {}

    def predicted() -> Iterable[tuple[SiteKey, np.ndarray]]:
        for pred in predict_sites(trained, plate, keys=plate.sites[ctx.rank::ctx.world_size], device=str(dev)):
            site_probs[pred.key] = pred.probabilities
            if progress is not None:
                progress(pred)
            yield pred.key, pred.probabilities

    if ctx.active:  # the shards interleave: rank 0 writes once it has them all, in plate order
        for _ in predicted():
            pass
        site_probs = {k: v for shard in ctx.gather(site_probs) for k, v in shard.items()}
        if not ctx.is_main:
            return None
        rows = ((key, site_probs[key]) for key in plate.sites if key in site_probs)
    else:
        rows = predicted()
    with atomic_write(out, "w") as handle:
        table = PredictionTable(handle, trained.classes, plate, fmt, per_site)
        for key, probs in rows:
            table.add(key, probs)
        table.close()
    return WrittenPredictions(table.rows, table.counts, site_probs)
