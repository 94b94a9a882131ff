"""Apply a trained model: class probabilities per site (whole-site tiling), mean per well.

Prediction is a generator over sites so a plate of 100k images streams with flat memory, and the
dock can show results as they arrive; any plate whose channels match the model's by name works.
Sites are decoded, cut and normalised ahead on the decode threads (``pipeline.prefetch``) and the
tiles of consecutive sites share forward passes of ``batch_size`` tiles: a 96² site is one tile, and
one forward per site would leave a GPU idle. Only the sites in flight are in memory.
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from contextlib import closing
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from ..errors import DcmixError, SourceUnavailable
from ..plate import Plate, SiteKey
from .device import resolve_device
from .pipeline import prefetch, to_device
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
                  batch_size: int = 64, workers: int | None = None) -> Iterator[SitePrediction]:
    """Yield one prediction per readable site, in the order of ``keys`` (unreadable ones are skipped
    and listed in plate.problems); ``batch_size`` tiles, of one or several sites, per forward pass.

    Sites are normalised as the model was trained (its ``normalization``): by default each plate on its
    own statistics, so a screen imaged brighter or with another offset gets the same calls.
    """
    source = trained.site_source(plate)
    dev = resolve_device(device)
    model = model_on_device(trained.model, dev)
    keys = plate.sites if keys is None else list(keys)
    start = time.perf_counter()
    cut = lambda key: source.grid(key, trained.tile)  # noqa: E731 - runs on the decode threads
    for done, key, probs in batched_probabilities(model, cut, keys, dev, batch_size, workers):
        yield SitePrediction(key, probs, done, len(keys), time.perf_counter() - start)


class _Pending:
    """A site whose tiles are not all through the model yet: its tiles and its running softmax sum."""

    __slots__ = ("key", "done", "tiles", "next", "n", "total")

    def __init__(self, key: SiteKey, done: int, tiles: np.ndarray):
        self.key, self.done, self.tiles, self.next, self.n = key, done, tiles, 0, len(tiles)
        self.total = np.zeros(0)


def softmax_rows(output: torch.Tensor) -> torch.Tensor:
    """The default readout of a forward pass: class probabilities per tile."""
    return torch.softmax(output.float(), dim=1)


def batched_probabilities(model: torch.nn.Module, cut: Callable[[SiteKey], np.ndarray | None], keys: list[SiteKey],
                          device: torch.device, batch_size: int = 64, workers: int | None = None,
                          readout: Callable[[torch.Tensor], torch.Tensor] = softmax_rows,
                          ) -> Iterator[tuple[int, SiteKey, np.ndarray]]:
    """(position in ``keys`` from 1, key, mean softmax over the site's tiles) per readable site, in order.

    ``cut(key)`` gives a site's normalised (N, C, t, t) tiles on a decode thread (None: unreadable).
    ``readout`` turns a forward pass's output into the (tiles, D) rows averaged per site (default: the
    softmax; ``suggest`` reads member probabilities and pooled features beside it, in the same pass).
    Out of GPU memory, the batch is halved and the same tiles are tried again. When the storage stops
    answering (:class:`SourceUnavailable`), the sites already read are still put through the model and
    yielded before the error: every site before the one that failed has its result.
    """
    batches = _Batches(model, device, batch_size, readout)
    with closing(prefetch(cut, keys, workers)) as reads:
        try:
            for done, (key, tiles) in enumerate(reads, 1):
                if tiles is not None:
                    batches.add(_Pending(key, done, tiles))
                yield from batches.ready(flush=done == len(keys))
        except SourceUnavailable:
            yield from batches.ready(flush=True)
            raise


class _Batches:
    """The sites waiting for the model, put through it ``batch_size`` tiles at a time."""

    def __init__(self, model: torch.nn.Module, device: torch.device, batch_size: int,
                 readout: Callable[[torch.Tensor], torch.Tensor]):
        self.model, self.device, self.batch_size, self.readout = model, device, batch_size, readout
        self.pending: deque[_Pending] = deque()
        self.queued = 0

    def add(self, site: _Pending) -> None:
        self.pending.append(site)
        self.queued += site.n

    def ready(self, flush: bool) -> Iterator[tuple[int, SiteKey, np.ndarray]]:
        """Forward full batches (every queued tile when ``flush``); yield the sites that are through."""
        while self.queued >= self.batch_size or (self.queued and flush):
            try:
                self.queued -= _forward(self.model, self.pending, self.batch_size, self.device, self.readout)
            except torch.OutOfMemoryError:
                if self.batch_size <= 1:
                    raise DcmixError("out of memory even with a batch of one tile; predict on the CPU "
                                     "(--device cpu)") from None
                self.batch_size //= 2
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            while self.pending and self.pending[0].next == self.pending[0].n:
                site = self.pending.popleft()
                yield site.done, site.key, site.total / site.n


def _forward(model: torch.nn.Module, pending: deque, batch_size: int, device: torch.device,
             readout: Callable[[torch.Tensor], torch.Tensor] = softmax_rows) -> int:
    """Up to ``batch_size`` of the oldest waiting tiles through the model -> how many went through.

    The sites are updated only after the model succeeded (an out-of-memory retry sees them unchanged);
    no_grad per call, never across a yield (the consumer may close the generator from another thread).
    """
    parts, room = [], batch_size
    for site in pending:
        if room == 0:
            break
        take = min(room, site.n - site.next)
        if take:
            parts.append((site, site.next, site.next + take))
            room -= take
    x = np.concatenate([s.tiles[a:b] for s, a, b in parts]) if len(parts) > 1 else parts[0][0].tiles[parts[0][1]:parts[0][2]]
    with torch.no_grad():
        probs = readout(model(to_device(np.ascontiguousarray(x), device))).cpu().numpy()
    row = 0
    for site, a, b in parts:
        chunk = probs[row:row + b - a].sum(0, dtype=np.float64)
        site.total = chunk if a == 0 else site.total + chunk
        row += b - a
        site.next = b
        if b == site.n:
            site.tiles = None  # through the model: only its few probabilities are kept
    return row


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
