"""Channel importance per phenotype: which channels tell *this* phenotype from the negative control?

One α for several phenotypes collapses onto the easiest channel, so ``explain`` trains coupled
per-phenotype DCMIX models (``model/coupled.py``): one blend per phenotype, each phenotype's logit
against the *reference* class (the negative control) read from its own blend, all classes trained
together on every labelled well. One model per fold of wells (and optionally per seed); each
phenotype becomes one row of a phenotype x channel matrix: mean α, its spread over the folds, and the
held-out accuracy, AUC and honesty verdict of the out-of-fold well predictions. The fold models,
combined into one phenotype panel (``training/panel.py``), are the model Apply predicts with. The
"all phenotypes" row is the same models judged on every class at once. A generator of events, like
the trainer; the engine itself is ``explain_coupled.run_coupled``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterator

from ..errors import DcmixError
from ..plate import Plate
from .config import CLI_ONLY, TrainConfig, check_settings, field_spec, setting
from .controls import guess_reference
from .data import labeled_sites
from .explain_coupled import run_coupled
from .explain_matrix import ALL_PHENOTYPES, ExplainEvent, PhenotypeMatrix, PhenotypeRow  # noqa: F401 - re-exported
from .trained import TrainedModel
from .trainer import input_order

MAX_FOLDS, MAX_SEEDS = 50, 50
#: steps per fold model, against 1500 for one ``train``: three folds cost about two trainings. Every fold
#: model learns all phenotypes from every labelled well of its folds; 1000 steps gave the same rows as
#: 1500 on the sample and shape plates (3 seeds each; README, "Explain against the classical baseline")
EXPLAIN_STEPS = 1000


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
    include_all: bool = True  # the "all phenotypes" row: the fold models judged on every class
    panel: bool = True  # combine the fold models into the phenotype panel (the prediction model)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=EXPLAIN_STEPS))


FOLDS, SEEDS = field_spec("folds", ExplainConfig), field_spec("seeds", ExplainConfig)
#: the budget of each explain model: the Train dock's steps field with explain's own default, bounded for
#: fold models
STEPS_PER_MODEL = dataclasses.replace(field_spec("steps"), default=EXPLAIN_STEPS, min=20, max=100_000,
                                      help="optimiser steps per model (explain trains one model per fold); training "
                                           "stops earlier when the held-out loss stops improving")


class Explainer:
    """``run()`` yields :class:`ExplainEvent`; ``result`` holds the matrix (partial if stopped early),
    ``panel`` the phenotype panel (the prediction model, with its out-of-fold verdict and Z′) once every
    phenotype is done, and ``members`` the fold models trained so far."""

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
        self.channels = [plate.channels[i] for i in input_order(plate.channels, cfg.train.input_channels)]
        self.result: PhenotypeMatrix | None = None
        self.panel: TrainedModel | None = None
        self.panel_oof: dict = {}  # (plate, well) -> (true class index, out-of-fold probabilities)
        self.members: list = []  # the PanelMembers trained so far (each with the wells it saw)
        #: per finished fold model: its held-out wells -> (true class index, probabilities), for paired
        #: per-fold comparisons (the stain search compares channel subsets fold by fold)
        self.fold_predictions: list[dict] = []
        self.chance_stops = 0  # fold models cut short because they never left the chance level

    @property
    def total_models(self) -> int:
        return self.config.folds * self.config.seeds

    def run(self) -> Iterator[ExplainEvent]:
        return (yield from run_coupled(self))

    def fit(self) -> PhenotypeMatrix:
        for _ in self.run():
            pass
        return self.result
