"""Permutation importance (PXPermute-style), the model-agnostic cross-check beside α.

For each channel, that channel's pixels are shuffled across tiles (tile i gets channel c of tile
π(i)), breaking its link to the label while keeping its intensity distribution; the accuracy drop
says how much the model relies on it. Works for DCMIX and both baselines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from ..errors import DcmixError
from ..plate import Plate, SiteKey
from .data import grid_tiles, labeled_sites
from .device import resolve_device
from .predictor import model_on_device
from .trained import TrainedModel


@dataclass
class PermutationProgress:
    done: int
    total: int
    elapsed: float
    result: dict | None = field(default=None)  # set on the last event


def _accuracy(model, x: np.ndarray, y: np.ndarray, device, batch_size: int = 128) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(x[i:i + batch_size]).to(device))
            correct += int((logits.argmax(1).cpu().numpy() == y[i:i + batch_size]).sum())
    return correct / len(x)


def permutation_importance(trained: TrainedModel, plate: Plate, labels: dict, max_sites: int = 64, repeats: int = 3,
                           seed: int = 0, device: str = "cpu") -> Iterator[PermutationProgress]:
    """Yield progress per channel; the last event's ``result`` holds baseline accuracy and per-channel drops."""
    start = time.perf_counter()
    site_labels = {k: v for k, v in labeled_sites(plate, labels).items() if v in trained.classes}
    if not site_labels:
        raise DcmixError("no labeled sites with the model's classes on this plate; load labels for permutation importance")
    rng = np.random.default_rng(seed)
    keys: list[SiteKey] = sorted(site_labels)
    if len(keys) > max_sites:
        keys = sorted(keys[i] for i in rng.choice(len(keys), max_sites, replace=False))
    source = trained.site_source(plate)
    index = {c: i for i, c in enumerate(trained.classes)}
    xs, ys = [], []
    for key in keys:
        site = source.get(key)
        if site is None:
            continue
        tiles = grid_tiles(site, trained.tile)
        xs.append(tiles)
        ys.extend([index[site_labels[key]]] * len(tiles))
    if not xs:
        raise DcmixError("none of the labeled sites could be read; see the plate's problems")
    x, y = np.concatenate(xs), np.asarray(ys)
    dev = resolve_device(device)
    model = model_on_device(trained.model, dev)
    base = _accuracy(model, x, y, dev)
    n = len(trained.channels)
    drops = {}
    for c, name in enumerate(trained.channels):
        scores = []
        for _ in range(repeats):
            shuffled = x.copy()
            shuffled[:, c] = x[rng.permutation(len(x)), c]
            scores.append(_accuracy(model, shuffled, y, dev))
        drops[name] = base - float(np.mean(scores))
        yield PermutationProgress(c + 1, n, time.perf_counter() - start)
    positive = np.clip(np.asarray(list(drops.values())), 0, None)
    normalized = positive / positive.sum() if positive.sum() > 0 else np.full(n, 1.0 / n)
    result = {"baseline_accuracy": base, "drop": drops,
              "normalized": {c: float(v) for c, v in zip(trained.channels, normalized)},
              "tiles": int(len(x)), "repeats": repeats}
    yield PermutationProgress(n, n, time.perf_counter() - start, result)


def run_permutation_importance(*args, **kwargs) -> dict:
    result = None
    for event in permutation_importance(*args, **kwargs):
        result = event.result or result
    return result
