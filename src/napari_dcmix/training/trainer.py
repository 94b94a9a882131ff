"""The one training engine: a generator of progress events that the docks and the CLI both drive.

Closing the generator (Stop in the dock, Ctrl-C in the CLI) keeps the best model so far in
``Trainer.result``; nothing here knows about Qt.
"""

from __future__ import annotations

import copy
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DcmixError
from ..model import ChannelClassifier
from ..plate import Plate, SiteKey
from .data import SiteSource, epoch_tiles, grid_tiles, iter_batches, labeled_sites, split_by_well
from .device import autocast_dtype, resolve_device
from .trained import TrainedModel


@dataclass
class TrainConfig:
    model: str = "dcmix"
    backbone: str = "small"
    epochs: int = 10
    tile: int = 64
    batch_size: int = 32
    lr: float = 3e-3
    mixing_lr: float = 0.1  # ~30x the network's: at 3e-3 α barely leaves uniform (0.50 -> 0.64 in 300 steps)
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "auto"
    coverage: float = 1.0  # random tiles per site cover its area this many times per epoch
    classes: list[str] | None = None
    temperature: float = 1.0
    n_mix_outputs: int = 1
    label_column: str = "label"


@dataclass
class TrainEvent:
    kind: str  # "start", "step", "epoch", "done", "cancelled"
    epoch: int
    epochs: int
    step: int
    total_steps: int
    loss: float = math.nan
    train_accuracy: float = math.nan
    val_accuracy: float = math.nan
    best_val_accuracy: float = math.nan
    importance: dict[str, float] | None = None
    elapsed: float = 0.0
    eta: float = math.nan
    device: str = "cpu"
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Best:
    score: tuple = (-1.0, -math.inf)
    state: dict | None = None
    epoch: int = 0
    history: list = field(default_factory=list)


class Trainer:
    """Train a channel-importance classifier on a plate's labeled sites.

    ``labels`` maps (plate, well) or SiteKey to a class name; ``init`` fine-tunes a trained model
    (channels matched by name, new classes get a new head).
    """

    def __init__(self, plate: Plate, labels: dict, config: TrainConfig | None = None, init: TrainedModel | None = None):
        self.plate, self.config = plate, config or TrainConfig()
        cfg = self.config
        if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.tile < 16:
            raise DcmixError("epochs and batch size must be at least 1 and the tile at least 16 px")
        site_labels = labeled_sites(plate, labels, cfg.classes)
        if not site_labels:
            raise DcmixError("no labeled sites on this plate; label some wells (or check the labels CSV and column)")
        classes = list(cfg.classes) if cfg.classes else sorted(set(site_labels.values()))
        if len(classes) < 2:
            raise DcmixError(f"only one class ({classes[0]}) is labeled; a classifier needs at least two classes")
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)

        if init is not None:
            order = init.channel_order(plate.channels)
            channels = list(init.channels)
            model = copy.deepcopy(init.model)
            if set(classes) == set(init.classes) and not cfg.classes:
                classes = list(init.classes)
            elif classes != list(init.classes):
                model.replace_head(len(classes))
        else:
            order, channels = list(range(len(plate.channels))), plate.channels
            model = ChannelClassifier(cfg.model, len(channels), len(classes), cfg.backbone, cfg.n_mix_outputs, cfg.temperature)
        self.channels, self.classes = channels, classes
        self.model = model.to(self.device)
        self.stats = plate.channel_stats().subset(order)
        self.source = SiteSource(plate, self.stats, order)
        self.train_keys, self.val_keys = split_by_well(site_labels, cfg.val_fraction, cfg.seed)
        self.site_labels = site_labels
        self.class_index = {name: i for i, name in enumerate(classes)}
        self._best = _Best()
        self.result: TrainedModel | None = None

    # --- the engine ------------------------------------------------------------------------------
    def class_counts(self) -> dict[str, int]:
        """Training wells per class (what the class balancing sees)."""
        wells = {(k.plate, k.well): self.site_labels[k] for k in self.train_keys}
        counts = Counter(wells.values())
        return {c: counts[c] for c in self.classes}

    def run(self) -> Iterator[TrainEvent]:
        cfg, device = self.config, self.device
        optimizer = torch.optim.AdamW(self.model.param_groups(cfg.lr, cfg.mixing_lr), lr=cfg.lr, weight_decay=cfg.weight_decay)
        train_labels = [self.class_index[self.site_labels[k]] for k in self.train_keys]
        counts = np.bincount(train_labels, minlength=len(self.classes)).astype(np.float64)
        weights = torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(self.classes), 0.0),
                               dtype=torch.float32, device=device)
        plan = epoch_tiles(self.source, self.train_keys, train_labels, cfg.tile, self.rng, cfg.coverage)
        if not plan:
            raise DcmixError("none of the labeled training sites could be read; see the plate's problems")
        steps_per_epoch = math.ceil(sum(n for _, _, n in plan) / cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total, pct_start=0.15)
        amp = autocast_dtype(device)
        start, step = time.perf_counter(), 0
        base = dict(epochs=cfg.epochs, total_steps=total, device=str(device))
        finished = False
        try:
            yield TrainEvent("start", 0, step=0, importance=self._importance(), message=self._start_message(), **base)
            for epoch in range(1, cfg.epochs + 1):
                self.model.train()
                seen, correct, loss_sum = 0, 0, 0.0
                for x, y in iter_batches(self.source, plan, cfg.tile, cfg.batch_size, self.rng):
                    xb = torch.from_numpy(x).to(device, non_blocking=True)
                    yb = torch.from_numpy(y).to(device, non_blocking=True)
                    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                        logits = self.model(xb)
                        loss = F.cross_entropy(logits.float(), yb, weight=weights)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if step < total - 1:
                        scheduler.step()
                    step += 1
                    seen += len(y)
                    correct += int((logits.argmax(1) == yb).sum())
                    loss_sum += float(loss.detach()) * len(y)
                    elapsed = time.perf_counter() - start
                    yield TrainEvent("step", epoch, step=step, loss=loss_sum / seen, train_accuracy=correct / seen,
                                     best_val_accuracy=self._best.score[0], importance=self._importance(),
                                     elapsed=elapsed, eta=elapsed / step * (total - step), **base)
                val_acc, val_loss = self.evaluate(self.val_keys) if self.val_keys else (math.nan, math.nan)
                record = {"epoch": epoch, "loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
                          "val_accuracy": val_acc, "val_loss": val_loss, "importance": self._importance(),
                          "seconds": time.perf_counter() - start}
                self._best.history.append(record)
                score = (val_acc, -val_loss) if self.val_keys else (epoch, 0.0)
                if score > self._best.score:
                    self._best = _Best(score, copy.deepcopy(self.model.state_dict()), epoch, self._best.history)
                elapsed = time.perf_counter() - start
                yield TrainEvent("epoch", epoch, step=step, loss=record["loss"], train_accuracy=record["train_accuracy"],
                                 val_accuracy=val_acc, best_val_accuracy=self._best.score[0] if self.val_keys else math.nan,
                                 importance=record["importance"], elapsed=elapsed,
                                 eta=elapsed / step * (total - step) if step else math.nan, **base)
            finished = True
        finally:
            self.result = self._finish(cancelled=not finished)
        yield TrainEvent("done", cfg.epochs, step=step, val_accuracy=self._best.score[0] if self.val_keys else math.nan,
                         best_val_accuracy=self._best.score[0] if self.val_keys else math.nan,
                         importance=self.result.importance(), elapsed=time.perf_counter() - start, eta=0.0, **base,
                         message=f"best model from epoch {self._best.epoch}")

    def fit(self) -> TrainedModel:
        """Run to the end without watching progress (scripts, tests)."""
        for _ in self.run():
            pass
        return self.result

    # --- helpers ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, keys: list[SiteKey]) -> tuple[float, float]:
        """Site-level accuracy and loss: softmax averaged over the tiles covering each whole site."""
        self.model.eval()
        correct, loss_sum, n = 0, 0.0, 0
        for key in keys:
            site = self.source.get(key)
            if site is None:
                continue
            tiles = torch.from_numpy(grid_tiles(site, self.config.tile)).to(self.device)
            probs = torch.softmax(self.model(tiles).float(), dim=1).mean(0)
            label = self.class_index[self.site_labels[key]]
            correct += int(int(probs.argmax()) == label)
            loss_sum += -float(torch.log(probs[label].clamp_min(1e-8)))
            n += 1
        return (correct / n, loss_sum / n) if n else (math.nan, math.nan)

    def _importance(self) -> dict[str, float] | None:
        values = self.model.importance()
        return None if values is None else {c: float(v) for c, v in zip(self.channels, values)}

    def _start_message(self) -> str:
        n_train = len({(k.plate, k.well) for k in self.train_keys})
        n_val = len({(k.plate, k.well) for k in self.val_keys})
        return (f"training {self.config.model} ({self.config.backbone}) on {self.device}: {n_train} training wells, "
                f"{n_val} validation wells, classes {', '.join(self.classes)}")

    def _finish(self, cancelled: bool) -> TrainedModel:
        """The best model so far (the current one if no epoch finished), ready to save or apply."""
        if self._best.state is not None:
            self.model.load_state_dict(self._best.state)
        self.model.eval()
        cfg = self.config
        meta = {
            "history": self._best.history,
            "best_epoch": self._best.epoch,
            "val_accuracy": self._best.score[0] if self.val_keys and self._best.state is not None else None,
            "label_column": cfg.label_column,
            "cancelled": cancelled,
            "train_config": {k: v for k, v in asdict(cfg).items() if k != "classes"},
            "plate": str(self.plate.root),
        }
        return TrainedModel(copy.deepcopy(self.model).cpu().eval(), list(self.channels), list(self.classes),
                            self.stats, cfg.tile, meta)
