"""Channel importance per phenotype: which channels tell *this* phenotype from the negative control?

One α for several phenotypes collapses onto the easiest channel, so ``explain`` trains, for every
phenotype, DCMIX models of that phenotype against a *reference* class (the negative control), each
with a different fold of wells held out (and optionally several seeds). Each phenotype becomes one
row of a phenotype x channel matrix: mean α, its spread over the repeats, and the held-out accuracy,
AUC and honesty verdict of the out-of-fold well predictions. All those models, combined into one
phenotype panel (``training/panel.py``), are the model Apply predicts with: each phenotype keeps its own
blends and the panel is as good as the rows it explains. The multi-class model adds its own α as the
"all phenotypes" row (a summary; it is not the prediction model). A generator of events, like the trainer.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np

from ..errors import DcmixError
from ..plate import Plate
from .config import CLI_ONLY, check_settings, field_spec, setting
from .controls import guess_reference
from .explain_coupled import run_coupled
from .explain_matrix import ALL_PHENOTYPES, ExplainEvent, PhenotypeMatrix, PhenotypeRow, fold_member, make_row
from .data import labeled_sites, well_folds
from .gate import assess
from .panel import PanelMember, build_panel, trust_line
from .snapshot import ImportanceSnapshot
from .trained import TrainedModel
from .config import TrainConfig
from .trainer import Trainer, reference_stats

MAX_FOLDS, MAX_SEEDS = 50, 50
ENGINES = ("pairs", "coupled")


def check_folds(site_labels: dict, reference: str, phenotypes: list[str], folds: int) -> None:
    """DcmixError before any training if a class has fewer wells than folds: some folds would hold out
    no well of it (with fewer wells than folds in all, folds with no held-out well at all)."""
    wells: dict[str, set] = {}
    for key, label in site_labels.items():
        wells.setdefault(label, set()).add((key.plate, key.well))
    counts = {c: len(wells.get(c, ())) for c in (reference, *phenotypes)}
    usable = min(counts.values())
    if usable < 2:
        few = ", ".join(f"{c} ({n} well{'s' if n != 1 else ''})" for c, n in counts.items() if n < 2)
        raise DcmixError(f"explain holds out wells of every class, but {few} has fewer than 2 wells; "
                         "label more wells of it, or leave it out")
    if folds > usable:
        few = ", ".join(f"{'reference ' if c == reference else 'phenotype '}{c} has {n} wells"
                        for c, n in counts.items() if n < folds)
        raise DcmixError(f"{folds} folds need at least {folds} wells of every class, but {few}: some folds would "
                         f"hold out none of its wells; use at most {usable} folds")


@dataclass
class ExplainConfig:
    reference: str | None = None  # None: guessed from the class names
    # repeats per phenotype = folds x seeds; every well is held out once per seed
    folds: int = setting(3, help="well folds per phenotype (each well held out once)", min=2, max=MAX_FOLDS,
                         out_of_range="{value} folds: explain holds out every well once, so it needs {min} to {max} "
                                      "folds (3 or more are recommended)")
    seeds: int = setting(1, help="seeds per fold (repeats = folds x seeds)", min=1, max=MAX_SEEDS,
                         where=CLI_ONLY, out_of_range="{value} seeds: give {min} to {max} seeds per fold "
                                                      "(repeats = folds x seeds)")
    engine: str = setting("pairs", help="pairs: one binary model per phenotype and fold; coupled: one model per "
                          "fold with one blend per phenotype, trained on every labelled well",
                          choices=ENGINES, where=CLI_ONLY)
    include_all: bool = True  # also train the multi-class model: the "all phenotypes" row
    panel: bool = True  # combine the per-phenotype models into the phenotype panel (the prediction model)
    train: TrainConfig = field(default_factory=TrainConfig)


FOLDS, SEEDS = field_spec("folds", ExplainConfig), field_spec("seeds", ExplainConfig)
#: the budget of each explain model: the Train dock's steps field, bounded for per-phenotype models
STEPS_PER_MODEL = dataclasses.replace(field_spec("steps"), min=20, max=100_000,
                                      help="optimiser steps per model (each phenotype trains one model per fold)")


class Explainer:
    """``run()`` yields :class:`ExplainEvent`; ``result`` holds the matrix (partial if stopped early),
    ``panel`` the phenotype panel (the prediction model, with its out-of-fold verdict and Z′) once every
    phenotype is done, and ``model`` the multi-class model of the "all phenotypes" row once trained."""

    def __init__(self, plate: Plate, labels: dict, config: ExplainConfig | None = None):
        self.plate, self.config = plate, config or ExplainConfig()
        cfg = self.config
        if cfg.train.model != "dcmix":
            raise DcmixError("explain reads α off DCMIX models; choose the dcmix model")
        check_settings({"folds": cfg.folds, "seeds": cfg.seeds}, of=ExplainConfig)  # the spec's bounds and words
        self.labels = labels
        self.site_labels = labeled_sites(plate, labels, cfg.train.classes)
        classes = sorted(set(self.site_labels.values()))
        if len(classes) < 2:
            raise DcmixError("explain needs a reference class and at least one phenotype; label more classes")
        self.reference = cfg.reference or guess_reference(classes)
        if self.reference not in classes:
            raise DcmixError(f"reference class {self.reference!r} is not among the labeled classes "
                             f"({', '.join(classes)}); choose one of them")
        self.phenotypes = [c for c in classes if c != self.reference]
        check_folds(self.site_labels, self.reference, self.phenotypes, cfg.folds)
        self.channels = plate.channels
        self.result: PhenotypeMatrix | None = None
        self.model: TrainedModel | None = None
        self.panel: TrainedModel | None = None
        self.panel_oof: dict = {}  # (plate, well) -> (true class index, out-of-fold probabilities)
        self.members: list = []  # the PanelMembers trained so far (each with the wells it saw)

    @property
    def total_models(self) -> int:
        cfg = self.config
        if cfg.engine == "coupled":
            return cfg.folds * cfg.seeds
        return len(self.phenotypes) * cfg.folds * cfg.seeds + (1 if cfg.include_all and len(self.phenotypes) > 1 else 0)

    def run(self) -> Iterator[ExplainEvent]:
        if self.config.engine == "coupled":
            return (yield from run_coupled(self))
        return (yield from self._run_pairs())

    def _run_pairs(self) -> Iterator[ExplainEvent]:
        cfg, start = self.config, time.perf_counter()
        rows: list[PhenotypeRow] = []
        done, total = 0, self.total_models
        self.result = PhenotypeMatrix(self.reference, list(self.channels), rows, complete=False,
                                      stats=reference_stats(self.plate))
        yield ExplainEvent("start", "", 0, total, message=(
            f"explaining {len(self.phenotypes)} phenotypes against {self.reference}: {total} models "
            f"({cfg.folds} folds x {cfg.seeds} seeds each)"))
        members: list[PanelMember] = []
        self.members = members
        for phenotype in self.phenotypes:
            pair = {k: v for k, v in self.site_labels.items() if v in (phenotype, self.reference)}
            alphas, oof = [], {}
            for seed in range(cfg.seeds):
                train_cfg = replace(cfg.train, seed=cfg.train.seed + seed, classes=[self.reference, phenotype],
                                    n_mix_outputs=1)
                for fold in well_folds(pair, cfg.folds, cfg.train.seed + seed):
                    trainer = Trainer(self.plate, pair, train_cfg, test_wells=fold)
                    yield from self._drive(trainer, phenotype, done, total, start)
                    done += 1
                    alphas.append(ImportanceSnapshot.of_model(trainer.result).alpha)
                    members.append(fold_member(trainer, phenotype, oof))
            wells = list(oof.values())
            verdict = assess([label for label, _ in wells], np.array([np.mean(p, axis=0) for _, p in wells]))
            rows.append(make_row(phenotype, self.channels, alphas, verdict))
            yield ExplainEvent("row", phenotype, done, total, row=rows[-1], elapsed=time.perf_counter() - start,
                               message=f"{phenotype}: top channel {rows[-1].top_channel}; {verdict.summary()}")
        if cfg.panel:
            classes = sorted([self.reference, *self.phenotypes])
            self.panel, self.panel_oof = build_panel(members, classes, self.reference, self.plate, self.site_labels)
            yield ExplainEvent("panel", "", done, total, elapsed=time.perf_counter() - start,
                               message=f"Apply predicts with the {trust_line(self.panel)}")
        if cfg.include_all and len(self.phenotypes) > 1:
            trainer = Trainer(self.plate, self.site_labels, replace(cfg.train, classes=None))
            yield from self._drive(trainer, ALL_PHENOTYPES, done, total, start)
            done += 1
            self.model = trainer.result
            rows.append(make_row(ALL_PHENOTYPES, self.channels, [ImportanceSnapshot.of_model(trainer.result).alpha], trainer.verdict))
            yield ExplainEvent("row", ALL_PHENOTYPES, done, total, row=rows[-1], elapsed=time.perf_counter() - start)
        self.result.complete = True
        yield ExplainEvent("done", "", done, total, elapsed=time.perf_counter() - start,
                           message=f"explained {len(self.phenotypes)} phenotypes in {time.perf_counter() - start:.0f} s")

    def _drive(self, trainer: Trainer, phenotype: str, done: int, total: int, start: float) -> Iterator[ExplainEvent]:
        """Forward one model's training events; closing us closes it (it then keeps its best model)."""
        events = trainer.run()
        try:
            for event in events:
                yield ExplainEvent("train", phenotype, done, total, train_event=event,
                                   elapsed=time.perf_counter() - start)
        finally:
            events.close()
        if trainer.result is None or trainer.verdict is None:
            raise DcmixError(f"training the {phenotype} model did not finish")

    def fit(self) -> PhenotypeMatrix:
        for _ in self.run():
            pass
        return self.result
