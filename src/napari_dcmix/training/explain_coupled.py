"""Explain with the coupled per-phenotype DCMIX (``model/coupled.py``): one model per fold × seed,
trained on every labelled well of the other folds, one blend per phenotype.

Row k is phenotype k's blend, averaged over the folds; its verdict is judged out of fold on the
wells of phenotype k and of the reference, on P(k vs reference) = P(k) / (P(k) + P(reference)) — the
wells a fold held out are scored by that fold's model only. The "all phenotypes" row is the same
models judged on every class at once (no separate multi-class model: the coupled one is one), and the
phenotype panel Apply predicts with is their ensemble. A stopped run keeps the folds that finished:
its rows say partial, with figures over the wells those folds judged.

On the CPU the fold models train side by side, one thread each (:func:`side_by_side`); their results
are taken in fold order, so the answer does not depend on which fold finishes first.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..errors import DcmixError
from ..model.coupled import COUPLED_KIND
from .data import well_folds
from .explain_matrix import ALL_PHENOTYPES, ExplainEvent, PhenotypeMatrix, PhenotypeRow, fold_member, make_row
from .gate import Verdict, assess
from .panel import PanelMember, build_panel, trust_line
from .snapshot import ImportanceSnapshot
from .trainer import Trainer

if TYPE_CHECKING:
    from .explain import Explainer


def pair_verdict(oof: dict, classes: list[str], reference: str, phenotype: str) -> Verdict:
    """The honesty gate of phenotype vs reference on the out-of-fold wells of those two classes."""
    ref, k = classes.index(reference), classes.index(phenotype)
    labels, probs = [], []
    for label, p in oof.values():
        if label in (ref, k):
            two = np.array([p[ref], p[k]], np.float64)
            labels.append(int(label == k))
            probs.append(two / max(two.sum(), 1e-12))
    return assess(labels, np.array(probs).reshape(len(probs), 2))


def coupled_rows(explainer: "Explainer", alphas: list[np.ndarray], oof: dict, partial: bool) -> list[PhenotypeRow]:
    """The matrix rows from the folds done so far: one per phenotype, then "all phenotypes"."""
    classes = sorted([explainer.reference, *explainer.phenotypes])
    rows = [make_row(phenotype, explainer.channels, [a[k:k + 1] for a in alphas],
                 pair_verdict(oof, classes, explainer.reference, phenotype), partial)
            for k, phenotype in enumerate(explainer.phenotypes)]
    if len(explainer.phenotypes) > 1 and explainer.config.include_all:
        values = list(oof.values())
        verdict = assess([label for label, _ in values], np.array([p for _, p in values]).reshape(len(values), -1))
        rows.append(make_row(ALL_PHENOTYPES, explainer.channels, alphas, verdict, partial))
    return rows


def run_coupled(explainer: "Explainer") -> Iterator[ExplainEvent]:
    """The coupled engine's events, as :meth:`Explainer.run` yields them."""
    cfg, start = explainer.config, time.perf_counter()
    total, done = explainer.total_models, 0
    classes = sorted([explainer.reference, *explainer.phenotypes])
    alphas: list[np.ndarray] = []
    oof: dict = {}
    members: list[PanelMember] = []
    explainer.members = members
    matrix = explainer.result = _empty_matrix(explainer)
    yield ExplainEvent("start", "", 0, total, message=(
        f"explaining {len(explainer.phenotypes)} phenotypes against {explainer.reference}: {total} coupled "
        f"models ({cfg.folds} folds x {cfg.seeds} seeds), each trained on every labelled well of the other folds"))
    plan = [(seed, fold_index, fold) for seed in range(cfg.seeds)
            for fold_index, fold in enumerate(well_folds(explainer.site_labels, cfg.folds, cfg.train.seed + seed))]

    def make_trainer(seed: int, fold) -> Trainer:
        train_cfg = replace(cfg.train, seed=cfg.train.seed + seed, classes=None, model=COUPLED_KIND,
                            reference=explainer.reference)
        return Trainer(explainer.plate, explainer.site_labels, train_cfg, test_wells=fold)

    def name_of(seed: int, fold_index: int) -> str:
        return f"fold {fold_index + 1}/{cfg.folds}" + (f", seed {seed + 1}" if cfg.seeds > 1 else "")

    def take(index: int, trainer: Trainer) -> str:
        """A finished fold model joins the rows, the out-of-fold scores and the panel's members."""
        nonlocal done
        done += 1
        alphas.append(ImportanceSnapshot.of_model(trainer.result).alpha)
        members.append(fold_member(trainer, None, oof))
        explainer.fold_predictions.append(dict(trainer.test_predictions))
        explainer.chance_stops += int(trainer.stopped_at_chance)
        matrix.rows[:] = coupled_rows(explainer, alphas, _mean(oof), partial=done < total)
        return name_of(*plan[index][:2])

    folds = _SideBySide(plan, make_trainer, name_of, start)
    running = folds.run()
    try:
        for index, trainer, event in running:
            if event is not None:
                yield event
                continue
            name = take(index, trainer)
            yield ExplainEvent("row", name, done, total, row=matrix.rows[0], elapsed=time.perf_counter() - start,
                               message=f"{name} done: {done}/{total} models",
                               side_by_side=max(1, len(folds.running)), in_flight=folds.beyond_done())
    except (GeneratorExit, KeyboardInterrupt):  # Stop, Ctrl-C, SIGTERM (perhaps while waiting for a fold):
        running.close()  # every fold thread has ended; those that finished meanwhile are in ``finished``
        for index in sorted(folds.finished):  # a fold that finished while an earlier one still ran
            take(index, folds.finished.pop(index))
        raise
    if cfg.panel:
        explainer.panel, explainer.panel_oof = build_panel(members, classes, explainer.reference, explainer.plate,
                                                           explainer.site_labels)
        explainer.panel.metadata["engine"] = "coupled"
        yield ExplainEvent("panel", "", done, total, elapsed=time.perf_counter() - start,
                           message=f"Apply predicts with the {trust_line(explainer.panel)}")
    matrix.complete = True
    yield ExplainEvent("done", "", done, total, elapsed=time.perf_counter() - start,
                       message=f"explained {len(explainer.phenotypes)} phenotypes in {time.perf_counter() - start:.0f} s")


def _mean(oof: dict) -> dict:
    """Well -> (true class index, probabilities averaged over the seeds that held it out)."""
    return {well: (label, np.mean(probs, axis=0)) for well, (label, probs) in oof.items()}


def _empty_matrix(explainer: "Explainer"):
    from .trainer import reference_stats

    return PhenotypeMatrix(explainer.reference, list(explainer.channels), [], complete=False,
                           stats=reference_stats(explainer.plate))


def side_by_side(trainer: Trainer, models: int) -> int:
    """How many fold models train at once: on the CPU one per torch thread (at most ``models``), each
    computing on one thread; a GPU, or a run across processes (torchrun: every rank trains the same
    fold), trains one at a time.

    A fold model's convolutions are small, so torch's threads meet at a barrier after every operation,
    and a thread that waits there idles; beside napari, whose window redraws take a core for a moment,
    they idled most: explain in the demo's dock used 1.35 of 2 cores and took 149 s against 90 s
    headless, and 94–108 s with the folds side by side (README, "The demo's unattended run"). One per
    thread, not every fold at once: a Stop then still finds finished folds to keep. At most
    :data:`MAX_SIDE_BY_SIDE`: each fold's trainer holds its own tile cache, shuffle buffer and decode
    threads, so a many-core machine shares its threads among a few folds instead.
    """
    import torch

    if trainer.device.type != "cpu" or trainer.dist.active:
        return 1
    return max(1, min(models, torch.get_num_threads(), MAX_SIDE_BY_SIDE))


#: fold models trained at once on the CPU, at most (memory: each trainer has its own caches)
MAX_SIDE_BY_SIDE = 4


_FINISHED = object()


class _SideBySide:
    """The fold models of one explain run, trained up to :func:`side_by_side` at once, each in its own
    thread; what they report comes through one queue to the explain generator's thread.

    Nothing depends on timing: trainers are built in plan order on the caller's thread (their seeds
    and initial weights), each draws its random choices from its own generator, computes on a thread
    count fixed by the run's, and finished models are handed on in plan order. So a run repeats itself
    exactly, and while folds are at least as many as threads the answer is the 1-thread answer bit for
    bit (tested) — which is also why a fold left alone at the end does not take the threads freed by
    the others (its sums would then depend on when they finished)."""

    def __init__(self, plan: list, make_trainer, name_of, start: float):
        import torch

        self.plan, self.make_trainer, self.name_of, self.start = plan, make_trainer, name_of, start
        self.events: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.running: dict[int, tuple[threading.Thread, Trainer]] = {}
        self.progress: dict[int, float] = {}  # running index -> its share done
        self.finished: dict[int, Trainer] = {}
        self.total_threads = max(1, torch.get_num_threads())
        self.workers = self.threads_each = 0
        self.next_start = self.next_done = 0

    def run(self) -> Iterator[tuple]:
        """``(index, trainer, ExplainEvent)`` for each training event as it comes, ``(index, trainer,
        None)`` for each finished model in plan order. Closing it stops every running fold (each keeps
        its best model, as a stopped ``train`` does). An error in one fold starts no further fold; the
        folds already running finish (so the folds before the failed one are kept, as they would be had
        they run one after another, and any finished past it) and then the error is raised here."""
        import torch

        error: BaseException | None = None
        try:
            while self.next_done < len(self.plan) and (error is None or self.running):
                if error is None:
                    try:
                        self._start_more()
                    except Exception as err:  # noqa: BLE001 - building a fold's trainer failed: same rule
                        error = err
                        continue
                try:
                    index, item = self.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if item is _FINISHED:
                    yield from self._finish(index)
                elif isinstance(item, BaseException):
                    self._forget(index)
                    error = error or item
                else:
                    yield index, self.running[index][1], self._event(index, item)
            if error is not None:
                for index in sorted(self.finished):  # every finished fold is kept, even past the failed one
                    yield index, self.finished.pop(index), None
                raise error
        finally:
            self.stop.set()
            self._wind_down()
            torch.set_num_threads(self.total_threads)

    def _start_more(self) -> None:
        while self.next_start < len(self.plan) and len(self.running) < max(self.workers, 1):
            index = self.next_start
            seed, fold_index, fold = self.plan[index]
            trainer = self.make_trainer(seed, fold)
            if not self.workers:
                self.workers = side_by_side(trainer, len(self.plan))
                self.threads_each = max(1, self.total_threads // self.workers)
            trainer.source.cache_bytes //= self.workers  # the folds at once share one trainer's cache budget
            thread = threading.Thread(target=self._work, args=(index, trainer), daemon=True,
                                      name=f"dcmix-{self.name_of(seed, fold_index).replace(' ', '-')}")
            self.running[index], self.progress[index] = (thread, trainer), 0.0
            thread.start()
            self.next_start += 1

    def _work(self, index: int, trainer: Trainer) -> None:
        """One fold's thread: train on its share of the threads, reporting every event."""
        import torch

        run = trainer.run()
        try:
            torch.set_num_threads(self.threads_each)  # this thread's own OpenMP team
            if trainer.device.type == "cuda" and trainer.device.index is not None:  # per thread (torchrun's rank)
                torch.cuda.set_device(trainer.device)
            for event in run:
                self.events.put((index, event))
                if self.stop.is_set():
                    break
            else:
                self.events.put((index, _FINISHED))
        except BaseException as err:  # noqa: BLE001 - carried to the consumer and raised there
            self.events.put((index, err))
        finally:
            run.close()  # the trainer's finally: its best model so far stays in ``result``

    def _end(self, index: int) -> Trainer:
        """A fold whose thread has ended or is ending: no longer running; its trainer."""
        thread, trainer = self.running.pop(index)
        thread.join()
        self.progress.pop(index, None)
        return trainer

    def _forget(self, index: int) -> None:
        """A failed fold: its model is not used; no further fold starts."""
        self._end(index)
        self.next_start = len(self.plan)

    def _finish(self, index: int) -> Iterator[tuple]:
        trainer = self._end(index)
        if not _complete(trainer):
            raise DcmixError(f"training the {self.name_of(*self.plan[index][:2])} model did not finish")
        self.finished[index] = trainer
        while self.next_done in self.finished:
            yield self.next_done, self.finished.pop(self.next_done), None
            self.next_done += 1

    def beyond_done(self) -> float:
        """Models' worth of work past the folds handed on: the running folds' shares and the finished
        folds still waiting for an earlier one — so the progress bar never steps back."""
        return len(self.finished) + sum(self.progress.values())

    def _event(self, index: int, train_event) -> ExplainEvent:
        if train_event.total_steps:
            self.progress[index] = train_event.step / train_event.total_steps
        seed, fold_index, _ = self.plan[index]
        return ExplainEvent("train", self.name_of(seed, fold_index), self.next_done + len(self.finished),
                            len(self.plan), train_event=train_event, elapsed=time.perf_counter() - self.start,
                            side_by_side=len(self.running), in_flight=sum(self.progress.values()))

    def _wind_down(self) -> None:
        """After a Stop (or the end): every fold thread ends at its next step; a fold that reached its
        end before the Stop reached it is kept in ``finished`` (its message is still in the queue)."""
        for thread, _ in self.running.values():
            thread.join()
        while True:  # every message of the ended threads is in the queue now
            try:
                index, item = self.events.get_nowait()
            except queue.Empty:
                break
            if item is _FINISHED and index in self.running and _complete(self.running[index][1]):
                self.finished[index] = self.running[index][1]
        self.running.clear()
        self.progress.clear()


def _complete(trainer: Trainer) -> bool:
    """The fold model trained to its end: its best model and its verdict on its held-out wells."""
    return trainer.result is not None and trainer.verdict is not None
