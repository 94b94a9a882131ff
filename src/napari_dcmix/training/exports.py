"""Prediction tables other tools join on, and the per-site results figures are drawn from.

``pycytominer_rows`` writes CellProfiler/pycytominer's image-level keys (``Metadata_Plate``,
``Metadata_Well``, ``Metadata_Site``) so predictions merge with profiles without renaming columns.
:func:`write_plate_predictions` streams the table as the sites come in (a well's row as soon as its
last site is in), to a temporary file renamed over the output at the end, so memory stays flat from
96 to 1536 wells and an interrupted run leaves nothing half-written. The Apply dock's table and export
are built by the same :class:`PredictionTable` (``table_rows``, ``write_table``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Mapping

import numpy as np

from .._io import atomic_write
from ..errors import DcmixError, SourceUnavailable
from ..plate import Plate, SiteKey
from ..plate.wells import well_position
from .predictor import predict_sites, prediction_rows
from .trained import TrainedModel

FORMATS = ("csv", "pycytominer")


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
    """Rows built as sites arrive in plate order: per site at once, per well when the next well starts
    (so a well's mean is over exactly the sites ``well_probabilities`` would average). Each batch of
    rows goes to ``emit`` (a CSV writer, or a list for the dock's table)."""

    def __init__(self, emit: Callable[[list[dict]], None], classes: list[str], plate: Plate, fmt: str = "csv",
                 per_site: bool = False):
        if fmt not in FORMATS:
            raise DcmixError(f"unknown prediction format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.emit, self.classes, self.plate = emit, classes, plate
        self.fmt, self.per_site = fmt, per_site
        self.with_plate = len(plate.plates) > 1
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

    def finish(self) -> None:
        """Write the last well."""
        self._flush_well()

    def close(self) -> None:
        """Write the last well; a table without a single row is an error (nothing is renamed then)."""
        self.finish()
        if not self.rows:
            raise DcmixError("no predictions to write: no site of the plate could be read")

    def _flush_well(self) -> None:
        if self._well is not None and self._n:
            self._write(prediction_rows(self.classes, {self._well: self._sum / self._n}, self.with_plate))
        self._well = None

    def _write(self, rows: list[dict]) -> None:
        self.emit(rows)
        for row in rows:
            name = row.get("prediction", row.get("Metadata_DCMIX_Prediction"))
            self.counts[name] = self.counts.get(name, 0) + 1
        self.rows += len(rows)


class _CsvRows:
    """``emit`` for a CSV file: the header from the first rows' columns."""

    def __init__(self, handle: IO):
        self.handle, self.writer = handle, None

    def __call__(self, rows: list[dict]) -> None:
        if self.writer is None:
            self.writer = csv.DictWriter(self.handle, fieldnames=list(rows[0]))
            self.writer.writeheader()
        self.writer.writerows(rows)


def in_plate_order(plate: Plate, site_probs: Mapping[SiteKey, np.ndarray]) -> Iterator[tuple[SiteKey, np.ndarray]]:
    """(site, probabilities) of the predicted sites in the plate's own order: the order the CLI streams."""
    return ((key, site_probs[key]) for key in plate.sites if key in site_probs)


def table_rows(classes: list[str], plate: Plate, site_probs: Mapping[SiteKey, np.ndarray], fmt: str = "csv",
               per_site: bool = False) -> list[dict]:
    """The rows ``predict`` writes for these site results (the Apply dock's table and counts)."""
    rows: list[dict] = []
    table = PredictionTable(rows.extend, classes, plate, fmt, per_site)
    for key, probs in in_plate_order(plate, site_probs):
        table.add(key, probs)
    table.finish()
    return rows


def write_table(out: str | os.PathLike, classes: list[str], plate: Plate,
                sites: Iterable[tuple[SiteKey, np.ndarray]], fmt: str = "csv", per_site: bool = False) -> PredictionTable:
    """Stream (site, probabilities) in plate order to ``out`` atomically: the one writer of ``predict``
    and of the Apply dock's export, so the two files agree byte for byte."""
    with atomic_write(out, "w", newline="") as handle:  # the csv module ends rows itself (and the .partial too)
        table = PredictionTable(_CsvRows(handle), classes, plate, fmt, per_site)
        for key, probs in sites:
            table.add(key, probs)
        table.close()
    return table


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

    When the plate's storage stops answering (:class:`SourceUnavailable`), ``out`` is left as it was and
    the rows of the wells completed before the site that failed go to ``<out>.partial``; the error says
    where it stopped.
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
        stop = None
        try:
            for _ in predicted():
                pass
        except SourceUnavailable as err:  # still joins the gather below: no rank waits for this one
            stop = (getattr(err, "site_key", None), str(err))
        shards = ctx.gather((site_probs, stop))
        site_probs = {k: v for probs, _ in shards for k, v in probs.items()}
        stops = [s for _, s in shards if s is not None]
        if not ctx.is_main:
            return None
        if stops:
            first = min(stops, key=lambda s: _position(plate, s[0]))
            raise _stopped(SourceUnavailable(first[1]), first[0], trained, plate, out, site_probs, fmt, per_site)
        rows = in_plate_order(plate, site_probs)
    else:
        rows = predicted()
    try:
        table = write_table(out, trained.classes, plate, rows, fmt, per_site)
    except SourceUnavailable as err:
        raise _stopped(err, getattr(err, "site_key", None), trained, plate, out, site_probs, fmt, per_site) from None
    return WrittenPredictions(table.rows, table.counts, site_probs)


def partial_path(out: str | os.PathLike) -> Path:
    """Where a prediction the storage stopped keeps its complete wells: ``<out>.partial``."""
    return Path(f"{os.fspath(out)}.partial")


def _position(plate: Plate, key: SiteKey | None) -> int:
    """Where ``key`` is in plate order (a stop without a site counts as the plate's start)."""
    return plate.sites.index(key) if key is not None and key in plate.sites else -1


def _stopped(err: SourceUnavailable, failed_at: SiteKey | None, trained: TrainedModel, plate: Plate, out,
             site_probs: Mapping[SiteKey, np.ndarray], fmt: str, per_site: bool) -> DcmixError:
    """Write the wells completed before ``failed_at`` to ``<out>.partial``; the error saying where it stopped."""
    wells = plate.well_keys()
    if failed_at is None:  # not told which site failed: the first one without a result
        failed_at = next((k for k in plate.sites if k not in site_probs), None)
    stop = wells.index((failed_at.plate, failed_at.well)) if failed_at is not None else len(wells)
    complete = set(wells[:stop])
    kept = {k: p for k, p in site_probs.items() if (k.plate, k.well) in complete}
    where = f"{failed_at.label()}" if failed_at is not None else "the end of the plate"
    if not kept:
        return SourceUnavailable(f"prediction stopped at {where} before any well was complete: {err}; nothing was "
                                 f"written ({out} is as it was); re-run when the server answers")
    partial = partial_path(out)
    write_table(partial, trained.classes, plate, in_plate_order(plate, kept), fmt, per_site)
    last = " ".join(p for p in wells[stop - 1] if p)
    return SourceUnavailable(f"prediction stopped after {stop} of {len(wells)} wells (last complete well {last}; "
                             f"it failed at {where}): {err}; the complete wells are in {partial} and {out} is as it "
                             "was; re-run when the server answers")
