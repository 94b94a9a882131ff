"""Apply a trained model: class probabilities per site (whole-site tiling), mean per well.

Prediction is a generator over sites so a plate of 100k images streams with flat memory, and the
dock can show results as they arrive; any plate whose channels match the model's by name works.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .._io import atomic_write
from ..plate import Plate, SiteKey
from .data import grid_tiles
from .device import resolve_device
from .trained import TrainedModel


@dataclass
class SitePrediction:
    key: SiteKey
    probabilities: np.ndarray  # (n_classes,)
    done: int
    total: int
    elapsed: float

    @property
    def eta(self) -> float:
        return self.elapsed / self.done * (self.total - self.done) if self.done else math.nan


def predict_sites(trained: TrainedModel, plate: Plate, keys: list[SiteKey] | None = None, device: str = "cpu",
                  batch_size: int = 64) -> Iterator[SitePrediction]:
    """Yield one prediction per readable site (unreadable ones are skipped and listed in plate.problems).

    Sites are normalised as the model was trained (its ``normalization``): by default each plate on its
    own statistics, so a screen imaged brighter or with another offset gets the same calls.
    """
    source = trained.site_source(plate)
    dev = resolve_device(device)
    model = model_on_device(trained.model, dev)
    keys = plate.sites if keys is None else list(keys)
    start = time.perf_counter()
    for done, key in enumerate(keys, 1):
        site = source.get(key)
        if site is None:
            continue
        # no_grad per site, never across a yield: the consumer may close us from another thread
        with torch.no_grad():
            tiles = grid_tiles(site, trained.tile)
            probs = []
            for i in range(0, len(tiles), batch_size):
                batch = torch.from_numpy(tiles[i:i + batch_size]).to(dev)
                probs.append(torch.softmax(model(batch).float(), dim=1).cpu())
            mean = torch.cat(probs).mean(0).numpy().astype(np.float64)
        yield SitePrediction(key, mean, done, len(keys), time.perf_counter() - start)


def model_on_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model on ``device`` without moving the caller's copy (docks share one model object)."""
    current = next(model.parameters()).device
    if current == device:
        return model.eval()
    return copy.deepcopy(model).to(device).eval()


def well_probabilities(site_predictions: list[SitePrediction] | dict) -> dict[tuple[str, str], np.ndarray]:
    """(plate, well) -> mean class probabilities over the well's sites."""
    sums: dict[tuple[str, str], list] = {}
    items = site_predictions.items() if isinstance(site_predictions, dict) else ((p.key, p.probabilities) for p in site_predictions)
    for key, probs in items:
        entry = sums.setdefault((key.plate, key.well), [0.0, 0])
        entry[0] = entry[0] + probs
        entry[1] += 1
    return {well: total / n for well, (total, n) in sums.items()}


def prediction_record(classes: list[str], probs: np.ndarray) -> dict:
    """What the docks and CSVs show for one well or site: prediction, confidence, probabilities."""
    best = int(np.argmax(probs))
    return {"prediction": classes[best], "confidence": float(probs[best]),
            "probabilities": {c: float(p) for c, p in zip(classes, probs)}}


def prediction_rows(classes: list[str], results: dict, with_plate: bool) -> list[dict]:
    """CSV rows (columns: [plate,] well, [site,] prediction, confidence, p_<class>) sorted by position."""
    from ..plate.wells import well_position

    rows = []
    for key in sorted(results, key=lambda k: (k[0], well_position(k[1])) + tuple(k[2:])):
        rec = prediction_record(classes, results[key])
        row = {"plate": key[0]} if with_plate else {}
        row["well"] = key[1]
        if len(key) > 2:
            row["site"] = key[2]
        row.update(prediction=rec["prediction"], confidence=f"{rec['confidence']:.6f}")
        row.update({f"p_{c}": f"{p:.6f}" for c, p in rec["probabilities"].items()})
        rows.append(row)
    return rows


def write_predictions_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Atomic CSV write; the same columns from the CLI and from the dock's export."""
    if not rows:
        from ..errors import DcmixError

        raise DcmixError("no predictions to write: no site of the plate could be read")
    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def predict_plate_rows(trained: TrainedModel, plate: Plate, per_site: bool = False, device: str = "cpu",
                       progress=None) -> list[dict]:
    """Whole plate -> CSV rows; ``progress(SitePrediction)`` is called per site (sharded under torchrun)."""
    from .exports import predict_site_probabilities

    site_probs = predict_site_probabilities(trained, plate, device=device, progress=progress)
    results = dict(site_probs) if per_site else well_probabilities(site_probs)
    return prediction_rows(trained.classes, results, with_plate=len(plate.plates) > 1)
