"""The one training engine: a generator of progress events that the docks and the CLI both drive.

The budget is in optimiser steps, not passes over a plate's tiles: a 60-well pilot plate and a
384-well screen get the same number of updates, and early stopping on the held-out loss ends a run
that has converged. Wells are split three ways: *train*, *validation* (chooses the checkpoint) and
*test* (never seen during training; the honesty gate judges the model on them alone).

Closing the generator (Stop in the dock, Ctrl-C in the CLI) keeps the best model so far in
``Trainer.result``; nothing here knows about Qt.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Generator, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DcmixError
from ..model import ChannelClassifier
from ..model.coupled import COUPLED_KIND, CoupledClassifier
from ..model.mixing import ChannelMixing
from ..plate import ChannelStats, Plate, SiteKey
from ..plate.label_book import class_problem
from .config import NORMALIZATIONS, TrainConfig
from .data import SiteSource, labeled_sites, split_wells, tile_problem
from .pipeline import TileStream, prefetch, to_device
from .probe import AlphaSchedule
from .predictor import batched_probabilities
from .device import autocast_dtype, resolve_device
from .distributed import setup as setup_distributed
from .events import RunState, TrainEvent
from .gate import Verdict, assess
from .site_losses import SiteLosses
from .snapshot import ImportanceSnapshot
from .stopping import agree_step
from .trained import TrainedModel


@dataclass
class _Best:
    score: float = -math.inf  # minus the held-out loss
    state: dict | None = None
    step: int = 0
    val_accuracy: float = math.nan
    history: list = field(default_factory=list)


def reference_stats(plate: Plate) -> ChannelStats:
    """The statistics a model stores (and composites use): its first plate's robust percentiles."""
    return plate.channel_stats(plate_id=plate.plates[0])


def input_order(plate_channels: list[str], wanted: list[str] | None) -> list[int]:
    """Indices of the channels a model sees, in the plate's order (all when ``wanted`` is None)."""
    if wanted is None:
        return list(range(len(plate_channels)))
    unknown = [c for c in wanted if c not in plate_channels]
    if unknown or not wanted:
        raise DcmixError(f"channel(s) {', '.join(unknown) or '(none given)'} not on the plate; choose among "
                         f"{', '.join(plate_channels)}")
    return [i for i, c in enumerate(plate_channels) if c in set(wanted)]


def per_row(y: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The targets of ``logits``' rows: ``y`` itself, or each repeated when a probing model gives several
    rows per tile (one per channel it tried)."""
    return y if len(logits) == len(y) else y.repeat_interleave(len(logits) // len(y))


def auto_mix_outputs(n_classes: int) -> int:
    """One blend for a phenotype against its control; one per phenotype (up to 3) for several, so
    each can take its own channels instead of all collapsing onto the easiest one."""
    return 1 if n_classes <= 2 else min(n_classes - 1, 3)


def tower_norm(batch_size: int, tile: int) -> str:
    """BatchNorm in the coupled tower when each of its batch statistics sees enough values: the last
    layer's feature maps are tile / 16 pixels a side, so a batch of 32 tiles of 64 px gives 512 values a
    channel. Fewer than 64 (a batch of 16 tiles of 16 px: 16) and the running statistics a model predicts
    with stray from the batches it trained on (one class called everywhere): GroupNorm, as before."""
    return "batch" if batch_size * max(1, tile // 16) ** 2 >= 64 else "group"


def _new_model(cfg: TrainConfig, n_channels: int, classes: list[str]):
    """A fresh classifier of ``cfg.model``: a ChannelClassifier, or explain's coupled per-phenotype DCMIX
    (one blend per phenotype against ``cfg.reference``)."""
    if cfg.model == COUPLED_KIND:
        if cfg.reference not in classes:
            raise DcmixError(f"the coupled model needs its reference class among {', '.join(classes)}")
        return CoupledClassifier(n_channels, len(classes), classes.index(cfg.reference), cfg.temperature,
                                 norm=tower_norm(cfg.batch_size, cfg.tile))
    k = cfg.n_mix_outputs or auto_mix_outputs(len(classes))
    return ChannelClassifier(cfg.model, n_channels, len(classes), cfg.backbone, k, cfg.temperature)


def own_random_stream(model: torch.nn.Module, device: torch.device) -> None:
    """Give a CPU model's mixing layers a generator of their own that goes on from torch's global stream
    where it stands now (just seeded and used for the weights): a model trained alone draws exactly what
    it drew from the global stream before, and models trained side by side in threads (explain's folds)
    no longer draw from one shared stream in an order that depends on timing."""
    if device.type != "cpu":
        return  # one model at a time on a GPU: torch's own CUDA generator, seeded above
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    for module in model.modules():
        if isinstance(module, ChannelMixing):
            module.generator = generator


class Trainer:
    """Train a channel-importance classifier on a plate's labeled sites.

    ``labels`` maps (plate, well) or SiteKey to a class name; ``init`` fine-tunes a trained model
    (channels matched by name, new classes get a new head); ``test_wells`` fixes the held-out wells
    (k-fold in ``explain``) instead of a random ``test_fraction``.
    """

    def __init__(self, plate: Plate, labels: dict, config: TrainConfig | None = None, init: TrainedModel | None = None,
                 test_wells: set | None = None):
        self.plate, self.config = plate, config or TrainConfig()
        cfg = self.config
        if cfg.steps < 1 or (cfg.epochs is not None and cfg.epochs < 1) or cfg.batch_size < 1 or cfg.tile < 16:
            raise DcmixError("steps, epochs and batch size must be at least 1 and the tile at least 16 px")
        if cfg.normalization not in NORMALIZATIONS:
            raise DcmixError(f"unknown normalization {cfg.normalization!r}; choose one of: {', '.join(NORMALIZATIONS)}")
        site_labels = labeled_sites(plate, labels, cfg.classes)
        classes = list(cfg.classes) if cfg.classes else sorted(set(site_labels.values()))
        problem = class_problem(classes if site_labels else [])  # the docks check labels with the same words
        if problem:
            raise DcmixError(problem)
        self.dist, self.device = setup_distributed(resolve_device(cfg.device))
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)

        if init is not None and not isinstance(init.model, ChannelClassifier):
            raise DcmixError(f"cannot fine-tune a {init.kind} model (explain's fold models combined); "
                             "start from a model saved by train, or run explain again on the new labels")
        if init is not None:
            order = init.channel_order(plate.channels)
            channels = list(init.channels)
            model = copy.deepcopy(init.model)
            if set(classes) == set(init.classes) and not cfg.classes:
                classes = list(init.classes)
            elif classes != list(init.classes):
                model.replace_head(len(classes))
        else:
            order = input_order(plate.channels, cfg.input_channels)
            channels = [plate.channels[i] for i in order]
            model = _new_model(cfg, len(channels), classes)
        self.channels, self.classes = channels, classes
        self.fine_tuning = init is not None  # α goes on from the model's: no probing
        self.model = model.to(self.device)
        own_random_stream(self.model, self.device)
        self.stats = reference_stats(plate).subset(order)
        self.source = SiteSource(plate, "plate" if cfg.normalization == "plate" else self.stats, order)
        self.notices = [n for n in [tile_problem(plate.first_readable_site()[1].shape[-2:], cfg.tile)] if n]
        self.train_keys, self.val_keys, self.test_keys = split_wells(
            site_labels, cfg.val_fraction, cfg.test_fraction, cfg.seed, test_wells)
        self.site_labels = site_labels
        self.source.losses = self.losses = SiteLosses(site_labels)  # sites lost mid-run: named, counted, a stop
        self.class_index = {name: i for i, name in enumerate(classes)}
        self._chance_loss = self._label_entropy(self.val_keys)
        self._best = _Best()
        self.images_seen = 0
        self.stopped_at_chance = False  # cut short by ``chance_stop``
        self.alpha_schedule: AlphaSchedule | None = None  # α's schedule of the last run (its probe evidence)
        self.verdict: Verdict | None = None
        self.result: TrainedModel | None = None

    # --- the engine ------------------------------------------------------------------------------
    def plan_budget(self, steps_per_pass: int) -> tuple[int, int]:
        """(total optimiser steps, steps between evaluations)."""
        cfg = self.config
        if cfg.epochs is not None:
            return cfg.epochs * steps_per_pass, steps_per_pass
        return cfg.steps, max(1, min(cfg.eval_every, cfg.steps))

    def run(self) -> Iterator[TrainEvent]:
        """Train, yielding progress events ("start", notices, "step"s and "epoch"s, then "done").

        The clean-up is this generator's own ``finally``: closing it part-way (Stop, Ctrl-C) still
        leaves the best model so far in ``result``; the helpers it delegates to hold no clean-up.
        """
        run = self._prepare_run()
        finished = False
        try:
            yield from self._opening_events(run)
            while run.step < run.total:
                self.model.train()
                for x, y, keys in run.stream:
                    stepped = yield from self._train_batch(run, x, y, keys)
                    if not stepped or (run.step % run.every and run.step < run.total):
                        continue
                    yield from self._end_round(run)
                    if run.step >= run.total:
                        break
            finished = True
        finally:
            run.alpha.finish()
            self.result = self._finish(cancelled=not finished, steps=run.step)
        yield self._done_event(run)

    def _prepare_run(self) -> RunState:
        """The optimiser, this rank's tile stream, the step budget and the schedules of one run."""
        cfg, device, ctx = self.config, self.device, self.dist
        if not self.train_keys:
            raise DcmixError("every labeled well is held out for validation; label more wells per class")
        optimizer = torch.optim.AdamW(self.model.param_groups(cfg.lr, cfg.mixing_lr), lr=cfg.lr, weight_decay=cfg.weight_decay)
        train_labels = [self.class_index[self.site_labels[k]] for k in self.train_keys]
        weights = self._class_weights(train_labels)
        # data parallel: each rank its shard of the sites and its share of the batch (same global batch)
        shard = slice(ctx.rank, None, ctx.world_size)
        stream = TileStream(self.source, self.train_keys[shard], train_labels[shard], cfg.tile,
                            max(1, cfg.batch_size // ctx.world_size), self.rng, cfg.coverage)
        tiles = stream.estimate_tiles_per_pass() * ctx.world_size
        if not tiles:
            raise DcmixError("none of the labeled training sites could be read; see the plate's problems")
        total, every = self.plan_budget(math.ceil(tiles / cfg.batch_size))
        net = self._parallel_model()
        rounds = math.ceil(total / every)
        warmup = max(1, total // 20)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
        alpha = AlphaSchedule(self.model, 0.0 if self.fine_tuning else cfg.probe_fraction, total, len(self.classes),
                              all_reduce=lambda values: self.dist.all_reduce_sum(values, device), optimizer=optimizer,
                              held_out=self._held_out_tiles if self.val_keys else None)
        self.alpha_schedule = alpha
        return RunState(stream, net, optimizer, scheduler, weights, autocast_dtype(device), total, every,
                        base=dict(epochs=rounds, total_steps=total, device=str(device), probe_until=alpha.until),
                        start=time.perf_counter(),
                        alpha=alpha)

    def _class_weights(self, train_labels: list[int]) -> torch.Tensor:
        """Loss weights that balance the classes of the training sites (0 for a class without any)."""
        counts = np.bincount(train_labels, minlength=len(self.classes)).astype(np.float64)
        return torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(self.classes), 0.0),
                            dtype=torch.float32, device=self.device)

    def _parallel_model(self) -> torch.nn.Module:
        """The module the optimiser steps through: the model itself, or its DDP wrapper across ranks."""
        if not self.dist.active:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")  # channels-last CPU input
        device = self.device
        return DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)

    def _opening_events(self, run: RunState) -> Iterator[TrainEvent]:
        """"start" (the plan and the initial α), then each notice once, before the first step."""
        yield TrainEvent("start", 0, step=0, importance=self._importance(), message=self._start_message(run.total),
                         snapshot=ImportanceSnapshot.live(self.model, self.channels, self.stats, run.history, 0, run.token),
                         **run.base)
        for notice in self.notices:  # said once, before the first step
            yield TrainEvent("notice", 0, step=0, message=notice, **run.base)

    def _train_batch(self, run: RunState, x, y, keys: list[SiteKey]) -> Generator[TrainEvent, None, bool]:
        """One batch: an optimiser step and its "step" event, or, out of memory, a halved batch and a
        notice; returns whether a step was taken."""
        device = self.device
        run.alpha.before_step(run.step)
        xb, yb = x.to(device), to_device(y, device)  # pinned, non-blocking on CUDA
        try:
            logits, value = self._step(run.net, xb, yb, run.weights, run.optimizer, run.amp, run.step, keys)
            yb = per_row(yb, logits)  # probing may give several rows (one channel each) per tile
            run.alpha.after_forward(run.step, logits, yb)
        except torch.OutOfMemoryError:
            yield self._halve_batch(run)
            return False
        run.scheduler.step()
        run.step += 1
        self.images_seen += len(y)
        run.seen += len(y)
        run.correct += int((logits.argmax(1) == yb).sum()) * len(y) // len(yb)
        run.loss_sum += value * len(y)
        elapsed = time.perf_counter() - run.start
        yield TrainEvent("step", run.round_ + 1, step=run.step, loss=run.loss_sum / run.seen,
                         train_accuracy=run.correct / run.seen, best_val_accuracy=self._best.val_accuracy,
                         importance=self._importance(), elapsed=elapsed, eta=elapsed / run.step * (run.total - run.step),
                         **run.base)
        return True

    def _halve_batch(self, run: RunState) -> TrainEvent:
        """Out of memory: go on with half the batch (the notice says so), or give up at one tile."""
        stream, device = run.stream, self.device
        if stream.batch_size <= 1:
            raise DcmixError("out of memory even with a batch of one tile; use a smaller --tile "
                             "or the CPU (--device cpu)") from None
        stream.batch_size //= 2
        run.optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return TrainEvent("notice", run.round_ + 1, step=run.step, message=(
            f"out of memory on the {device.type.upper()}: halving the batch to {stream.batch_size} "
            "tiles and going on"), **run.base)

    def _end_round(self, run: RunState) -> Iterator[TrainEvent]:
        """A held-out evaluation and its "epoch" event; cuts the budget short once the held-out loss
        has not improved for ``patience`` evaluations."""
        cfg = self.config
        run.round_ += 1
        record = self._evaluate_round(run.round_, run.step, run.loss_sum / run.seen, run.correct / run.seen, run.start,
                                      selectable=run.alpha.started(run.step))
        # a run still at the chance-level loss has not started to learn: it gets the whole budget
        waiting = record["improved"] or not run.alpha.started(run.step) or not self._learning()
        run.stale = 0 if waiting else run.stale + 1
        run.seen, run.correct, run.loss_sum = 0, 0, 0.0
        elapsed = time.perf_counter() - run.start
        if record["importance"]:
            run.history.append(dict(record["importance"]))
        snapshot = ImportanceSnapshot.live(self.model, self.channels, self.stats, run.history, run.round_, run.token,
                                           val_accuracy=record["val_accuracy"])
        yield TrainEvent("epoch", run.round_, step=run.step, loss=record["loss"], train_accuracy=record["train_accuracy"],
                         val_accuracy=record["val_accuracy"], best_val_accuracy=self._best.val_accuracy,
                         importance=record["importance"], elapsed=elapsed,
                         eta=elapsed / run.step * (run.total - run.step), snapshot=snapshot, **run.base)
        self.model.train()
        if self.val_keys and run.stale >= cfg.patience:
            run.message = (f"stopped early at step {run.step} of {run.total}: the held-out loss has not improved "
                           f"for {cfg.patience} evaluations")
            run.total = run.step
        elif (cfg.chance_stop is not None and self.val_keys and run.step >= cfg.chance_stop * run.total
              and run.alpha.started(run.step) and not self._learning()):
            run.message = (f"stopped at step {run.step} of {run.total}: the held-out loss was still at the chance "
                           f"level after {cfg.chance_stop:.0%} of the budget")
            run.total = run.step
            self.stopped_at_chance = True

    def _done_event(self, run: RunState) -> TrainEvent:
        """"done": the kept model's α and its verdict on the test wells, and why the run ended."""
        best = f"best model from step {self._best.step}" if self._best.state is not None else "final model"
        return TrainEvent("done", run.round_, step=run.step, val_accuracy=self._best.val_accuracy,
                          best_val_accuracy=self._best.val_accuracy, importance=self.result.importance(),
                          elapsed=time.perf_counter() - run.start, eta=0.0, verdict=self.verdict,
                          snapshot=ImportanceSnapshot.of_model(self.result),
                          message="; ".join(m for m in (run.message, best, self.verdict.summary()) if m), **run.base)

    def _step(self, net, xb, yb, weights, optimizer, amp, step: int, keys: list[SiteKey]):
        """One optimiser step -> (logits, loss value); a non-finite loss or an overflow is a clear error
        (agreed across ranks, so no rank is left waiting for the others)."""
        try:
            with torch.autocast(xb.device.type, dtype=amp, enabled=amp is not None):
                logits = net(xb)
                yb = per_row(yb, logits)
                loss = F.cross_entropy(logits.float(), yb, weight=weights)
                anchor = getattr(self.model, "anchor_loss", None)  # the coupled model's per-phenotype questions
                if anchor is not None:
                    loss = loss + anchor(logits.float(), yb)
            value = float(loss.detach())
            if not math.isfinite(agree_step(self.dist, value, xb.device, self.losses, step)):  # + stop, lost sites
                raise DcmixError(self._non_finite_message(step, value, keys))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as err:  # e.g. Adam's overflow with an absurd learning rate
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            raise DcmixError(f"training failed at step {step + 1} ({first}); try a smaller learning rate "
                             "(--lr, --mixing-lr) or batch size") from None
        return logits, value

    def fit(self) -> TrainedModel:
        """Run to the end without watching progress (scripts, tests)."""
        for _ in self.run():
            pass
        return self.result

    # --- helpers ---------------------------------------------------------------------------------
    @property
    def has_best_model(self) -> bool:
        """Whether a checkpoint was selected (so a stopped or failed run still leaves a model worth saving)."""
        return self._best.state is not None

    def _label_entropy(self, keys: list[SiteKey]) -> float:
        """The loss of guessing each class's share: what a model that learned nothing scores."""
        if not keys:
            return math.nan
        counts = np.bincount([self.class_index[self.site_labels[k]] for k in keys], minlength=len(self.classes))
        shares = counts[counts > 0] / counts.sum()
        return float(-(shares * np.log(shares)).sum())

    def _learning(self) -> bool:
        """Has the held-out loss dropped clearly below what guessing the class shares would give?"""
        return not self.val_keys or -self._best.score < 0.9 * self._chance_loss

    def _evaluate_round(self, round_: int, step: int, loss: float, train_accuracy: float, start: float,
                        selectable: bool) -> dict:
        val_acc, val_loss = self.evaluate(self.val_keys) if self.val_keys else (math.nan, math.nan)
        record = {"epoch": round_, "step": step, "loss": loss, "train_accuracy": train_accuracy,
                  "val_accuracy": val_acc, "val_loss": val_loss, "importance": self._importance(),
                  "seconds": time.perf_counter() - start, "improved": False}
        self._best.history.append(record)
        score = -val_loss if self.val_keys else float(step)
        if selectable and math.isfinite(score) and score > self._best.score + 1e-4:
            record["improved"] = True
            self._best = _Best(score, copy.deepcopy(self.model.state_dict()), step, val_acc, self._best.history)
        return record

    def _held_out_tiles(self, batch: int = 64) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(tiles, classes) of this rank's validation sites, every tile of each, ``batch`` at a time."""
        cut = lambda key: self.source.grid(key, self.config.tile)  # noqa: E731 - runs on the decode threads
        xs, ys = [], []
        for key, tiles in prefetch(cut, self.val_keys[self.dist.rank::self.dist.world_size]):
            if tiles is None:
                continue
            xs.append(tiles)
            ys += [self.class_index[self.site_labels[key]]] * len(tiles)
            if len(ys) >= batch:
                yield to_device(np.concatenate(xs), self.device), torch.tensor(ys, device=self.device)
                xs, ys = [], []
        if ys:
            yield to_device(np.concatenate(xs), self.device), torch.tensor(ys, device=self.device)

    def site_probabilities(self, keys: list[SiteKey]) -> Iterator[tuple[SiteKey, np.ndarray]]:
        """Class probabilities per readable site (softmax averaged over the tiles covering it), batched
        across sites as in prediction; sites are decoded ahead on threads while the model works."""
        self.model.eval()
        cut = lambda key: self.source.grid(key, self.config.tile)  # noqa: E731 - runs on the decode threads
        for _, key, probs in batched_probabilities(self.model, cut, keys, self.device):
            yield key, probs

    def evaluate(self, keys: list[SiteKey]) -> tuple[float, float]:
        """Site-level accuracy and loss over ``keys`` (each rank its shard, summed over the ranks)."""
        correct, loss_sum, n = 0, 0.0, 0
        for key, probs in self.site_probabilities(keys[self.dist.rank::self.dist.world_size]):
            label = self.class_index[self.site_labels[key]]
            correct += int(int(probs.argmax()) == label)
            loss_sum += -math.log(max(float(probs[label]), 1e-8))
            n += 1
        correct, loss_sum, n = self.dist.all_reduce_sum([correct, loss_sum, n], self.device)
        return (correct / n, loss_sum / n) if n else (math.nan, math.nan)

    def well_predictions(self, keys: list[SiteKey]) -> dict[tuple[str, str], tuple[int, np.ndarray]]:
        """(plate, well) -> (true class index, class probabilities averaged over the well's sites)."""
        sums: dict[tuple[str, str], list] = {}
        for key, probs in self.site_probabilities(keys):
            entry = sums.setdefault((key.plate, key.well), [self.class_index[self.site_labels[key]], 0.0, 0])
            entry[1], entry[2] = entry[1] + probs, entry[2] + 1
        return {well: (label, total / n) for well, (label, total, n) in sums.items()}

    def _importance(self) -> dict[str, float] | None:
        values = self.model.importance()
        return None if values is None else {c: float(v) for c, v in zip(self.channels, values)}

    def _start_message(self, total: int) -> str:
        n = [len({(k.plate, k.well) for k in keys}) for keys in (self.train_keys, self.val_keys, self.test_keys)]
        return (f"training {self.config.model} ({self.config.backbone}) on {self.device} for up to {total} steps: "
                f"{n[0]} training, {n[1]} validation and {n[2]} test wells, classes {', '.join(self.classes)}")

    def _non_finite_message(self, step: int, value: float, keys: list[SiteKey]) -> str:
        sites = sorted({k.label() for k in keys})
        shown = ", ".join(sites[:6]) + (f" and {len(sites) - 6} more" if len(sites) > 6 else "")
        kept = "the best model so far is kept" if self._best.state is not None else "no model was kept"
        return (f"training stopped at step {step + 1}: the loss became {value} on a batch from {shown}; "
                f"these images probably hold extreme or non-finite pixels, check them or leave those wells "
                f"unlabeled ({kept})")

    def _finish(self, cancelled: bool, steps: int) -> TrainedModel:
        """The best model so far (the current one if none was selected), judged on the test wells."""
        if self._best.state is not None:
            self.model.load_state_dict(self._best.state)
        self.model.eval()
        self.test_predictions = self.well_predictions(self.test_keys)
        values = list(self.test_predictions.values())
        probs = np.array([p for _, p in values]).reshape(len(values), len(self.classes))
        self.verdict = assess([label for label, _ in values], probs)
        cfg = self.config
        meta = {
            "history": self._best.history,
            "best_step": self._best.step,
            "val_accuracy": self._best.val_accuracy if self._best.state is not None else None,
            "test_accuracy": self.verdict.accuracy,
            "learned": self.verdict.learned,
            "verdict": self.verdict.to_dict(),
            "test_wells": sorted(f"{p}:{w}" if p else w for p, w in self.test_predictions),
            "steps": steps,
            "images_seen": self.images_seen,
            "world_size": self.dist.world_size,
            "label_column": cfg.label_column,
            "cancelled": cancelled,
            "stopped_at_chance": self.stopped_at_chance,
            "normalization": cfg.normalization,
            "problems": [p.to_dict() if hasattr(p, "to_dict") else str(p) for p in list(self.plate.problems)[:1000]],
            "train_config": {k: v for k, v in asdict(cfg).items() if k != "classes"},
            "plate": str(self.plate.location),
        }
        return TrainedModel(copy.deepcopy(self.model).cpu().eval(), list(self.channels), list(self.classes),
                            self.stats, cfg.tile, meta)
