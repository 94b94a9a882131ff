"""Which stains can the next assay drop? α checked by retraining, per phenotype.

α says which blend one model uses, and DCMIX may settle on any sufficient blend. The stain search
retrains explain's coupled models (``explain_coupled``: one model per fold, one blend per phenotype,
every labelled well) on channel subsets, the other channels absent from the input
(``TrainConfig.input_channels``), and judges every subset out of fold like a matrix row:

- **alone** – each channel by itself (one model per channel covers every phenotype; with one channel
  the tower runs once per tile for all of them);
- **without** – every channel but one (what is lost when that stain is dropped);
- **smallest panel** – forward selection *guided* by the "alone" figures and α (one model per panel
  size, about C models, not C²/2 for backward elimination): the kept stains first, then channels in
  order of their accuracy alone (channels that learn nothing alone ordered by α, so two stains that
  only work together - colocalisation - still come first), until a panel is not worse than all
  channels (``stain_figures.compare``). Sizes 1 and C-1 reuse the alone / without models;
- **agreement** of α with both, and **a second opinion** from the classical feature forest.

Runs that never leave the chance level stop at half their budget (``TrainConfig.chance_stop``); every
figure still passes the honesty gate. A generator of :class:`StainsEvent`; closing it keeps what is
done (``result``, marked partial). Nothing is cached on disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Iterator

from ..errors import DcmixError
from ..plate import Plate
from .explain import ExplainConfig, Explainer
from .explain_matrix import ExplainEvent
from .stain_figures import (PanelStep, PhenotypeStains, SecondOpinion, SubsetFigures, agreement, compare,
                            second_opinion_warning, subset_figures)

#: share of the budget after which a stain-search run still at the chance level stops
CHANCE_STOP = 0.5


@dataclass
class StainsConfig:
    keep: list[str] = field(default_factory=list)  # stains every panel keeps (e.g. DNA for segmentation)
    second_opinion: bool = True  # run the classical feature forest beside α
    chance_stop: float | None = CHANCE_STOP
    explain: ExplainConfig = field(default_factory=ExplainConfig)


@dataclass
class StainsEvent:
    kind: str  # "start", "train" (an ExplainEvent of the current run), "figures", "forest", "done"
    stage: str  # "all channels", "alone", "without", "panel", "second opinion"
    label: str  # the run: e.g. "ER alone", "without Mito", "panel DNA+ER for er_stress"
    runs_done: int
    runs_total: int  # grows when the panel search needs another size
    explain_event: ExplainEvent | None = None
    message: str = ""
    elapsed: float = 0.0

    @property
    def fraction(self) -> float:
        inner = self.explain_event.fraction if self.explain_event is not None else 0.0
        return min(1.0, (self.runs_done + inner) / max(1, self.runs_total))


@dataclass
class _Run:
    """One finished explain run on a channel subset: its figures per phenotype."""

    channels: tuple[str, ...]
    figures: dict[str, SubsetFigures]
    alpha: dict[str, dict[str, float]]  # phenotype -> its row's mean α


@dataclass
class StainsAnswer:
    reference: str
    channels: list[str]
    keep: list[str]
    phenotypes: dict[str, PhenotypeStains] = field(default_factory=dict)
    plate_panel: list[str] | None = None
    complete: bool = False
    runs: int = 0  # explain runs trained
    chance_stops: int = 0  # fold models stopped at the chance level
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"reference": self.reference, "channels": self.channels, "keep": self.keep,
                "stains": {p: s.to_dict() for p, s in self.phenotypes.items()}, "plate_panel": self.plate_panel,
                "complete": self.complete, "runs": self.runs, "chance_stops": self.chance_stops,
                "seconds": self.seconds}


def check_keep(channels: list[str], keep: list[str], what: str = "--keep") -> None:
    """DcmixError naming the kept stains that are not channels of the plate."""
    unknown = [c for c in keep if c not in channels]
    if unknown:
        raise DcmixError(f"{what} names {', '.join(unknown)}, not a channel of the plate; choose among "
                         f"{', '.join(channels)}")


class StainSearch:
    """``run()`` yields :class:`StainsEvent`; ``result`` is the :class:`StainsAnswer` so far.
    ``full``: an explain run of the same plate and labels already finished (the dock's), reused as the
    all-channels answer instead of training it again."""

    def __init__(self, plate: Plate, labels: dict, config: StainsConfig | None = None, full: Explainer | None = None):
        self.plate, self.labels, self.config = plate, labels, config or StainsConfig()
        cfg = self.config
        self.channels = list(plate.channels)
        if len(self.channels) < 2:
            raise DcmixError("the plate has one channel: there is no stain to drop")
        check_keep(self.channels, cfg.keep)
        # checks the labels, the reference and the folds before any training
        self.probe = Explainer(plate, labels, replace(cfg.explain, panel=False, include_all=False))
        self.reference, self.phenotypes = self.probe.reference, self.probe.phenotypes
        self.full: Explainer | None = None
        self.reuse(full)
        self._runs: list[_Run] = []
        self.result = StainsAnswer(self.reference, self.channels, [c for c in self.channels if c in cfg.keep])

    def reuse(self, explainer: Explainer | None) -> bool:
        """Take a finished explain of every channel, same reference and folds, as the all-channels run."""
        cfg = self.config.explain
        ok = (explainer is not None and explainer.result is not None and explainer.result.complete
              and explainer.channels == self.channels and explainer.reference == self.reference
              and explainer.phenotypes == self.phenotypes and len(explainer.fold_predictions) == explainer.total_models
              and (explainer.config.folds, explainer.config.seeds, explainer.config.train.seed)
              == (cfg.folds, cfg.seeds, cfg.train.seed))
        self.full = explainer if ok else None
        return ok

    # --- the plan ---------------------------------------------------------------------------------
    def _explain_config(self, channels: tuple[str, ...] | None, phenotype: str | None = None) -> ExplainConfig:
        cfg = self.config
        train = replace(cfg.explain.train, input_channels=list(channels) if channels else None,
                        chance_stop=cfg.chance_stop if channels else cfg.explain.train.chance_stop)
        if phenotype is not None:
            train = replace(train, classes=sorted([self.reference, phenotype]))
        return replace(cfg.explain, train=train, reference=self.reference, panel=False, include_all=False)

    def _ordered(self, names) -> tuple[str, ...]:
        return tuple(c for c in self.channels if c in set(names))

    def _finished(self, channels: tuple[str, ...], phenotype: str | None) -> _Run | None:
        """A finished run on ``channels`` covering ``phenotype`` (None: every phenotype)."""
        wanted = {phenotype} if phenotype else set(self.phenotypes)
        return next((run for run in self._runs if run.channels == channels and wanted <= set(run.figures)), None)

    # --- the engine -------------------------------------------------------------------------------
    def run(self) -> Iterator[StainsEvent]:
        start, answer, channels = time.perf_counter(), self.result, self.channels
        n = len(channels)
        # all, alone, without (with 2 channels "without" is "alone")
        self._total = 1 + n + (n if n > 2 else 0)
        self._done = self._trained = 0
        yield StainsEvent("start", "", "", 0, self._total, message=(
            f"which stains can be dropped: {len(self.phenotypes)} phenotypes against {self.reference}, each channel "
            f"alone and without it, then the smallest panel per phenotype ({self._total} runs of "
            f"{self.config.explain.folds * self.config.explain.seeds} fold models to start with)"))
        try:
            full = yield from self._subset(tuple(channels), "all channels", "all channels", start)
            for phenotype in self.phenotypes:
                answer.phenotypes[phenotype] = PhenotypeStains(phenotype, full.alpha[phenotype],
                                                               full.figures[phenotype], explained=full.figures[phenotype])
            for c in channels:
                run = yield from self._subset((c,), "alone", f"{c} alone", start)
                for phenotype, stains in answer.phenotypes.items():
                    stains.alone[c] = run.figures[phenotype]
                yield self._figures_event("alone", f"{c} alone", start)
            for c in channels:
                rest = self._ordered(set(channels) - {c})
                run = yield from self._subset(rest, "without", f"without {c}", start)
                for phenotype, stains in answer.phenotypes.items():
                    stains.without[c] = run.figures[phenotype]
                    stains.without_comparison[c] = compare(run.figures[phenotype], stains.full)
                yield self._figures_event("without", f"without {c}", start)
            for phenotype, stains in answer.phenotypes.items():
                stains.agreement = agreement(stains.alpha, stains.alone, stains.without, stains.needed(), stains.full,
                                             stains.explained)
                yield from self._smallest_panel(stains, start)
            answer.plate_panel = self._plate_panel()
            if self.config.second_opinion:
                yield StainsEvent("forest", "second opinion", "forest", self._done, self._total,
                                  message="the classical feature forest's second opinion", elapsed=time.perf_counter() - start)
                self._second_opinion()
            answer.complete = True
        finally:
            answer.seconds = time.perf_counter() - start
            answer.runs = self._trained
        yield StainsEvent("done", "", "", self._done, self._total, elapsed=answer.seconds,
                          message=f"stain search done in {answer.seconds:.0f} s ({answer.runs} runs trained): "
                                  f"the next assay needs {', '.join(answer.plate_panel or []) or 'every stain'}")

    def _figures_event(self, stage: str, label: str, start: float) -> StainsEvent:
        return StainsEvent("figures", stage, label, self._done, self._total, elapsed=time.perf_counter() - start,
                           message=f"{label} done: {self._done}/{self._total} runs")

    def _subset(self, channels: tuple[str, ...], stage: str, label: str, start: float,
                phenotype: str | None = None) -> Iterator[StainsEvent]:
        """Train (or reuse) explain on ``channels``; returns its :class:`_Run`. Every run starts α from
        what each of its stains answered alone in its own first steps (``training/probe.py``)."""
        done = self._finished(channels, phenotype)
        if done is not None:
            return done
        if channels == tuple(self.channels) and self.full is not None and phenotype is None:
            explainer = self.full
        else:
            explainer = Explainer(self.plate, self.labels,
                                  self._explain_config(None if channels == tuple(self.channels) else channels,
                                                       phenotype))
            events = explainer.run()
            try:
                for event in events:
                    if event.kind == "train":
                        yield StainsEvent("train", stage, label, self._done, self._total, explain_event=event,
                                          elapsed=time.perf_counter() - start)
            finally:
                events.close()
            self.result.chance_stops += explainer.chance_stops
            self._trained += 1
            if explainer.result is None or not explainer.result.complete:
                raise DcmixError(f"the {label} run did not finish")
        self._done += 1
        run = _run_of(explainer, channels)
        self._runs.append(run)
        return run

    def _smallest_panel(self, stains: PhenotypeStains, start: float) -> Iterator[StainsEvent]:
        """Forward selection from the kept stains, guided by "alone" and α, one run per panel size."""
        phenotype, keep = stains.phenotype, self.result.keep
        full = tuple(self.channels)
        order = [c for c in sorted(self.channels, key=lambda c: _guide(stains, c)) if c not in keep]
        panel: list[str] = list(keep)
        if not panel:
            panel.append(order.pop(0))
        while True:
            channels = self._ordered(panel)
            figures = yield from self._panel_figures(stains, channels, start)
            comparison = None if channels == full else compare(figures, stains.full)
            stains.curve.append(PanelStep(channels, figures, comparison))
            if channels == full and not figures.learned:
                stains.panel_reason = ("not learned with every stain nor with a smaller panel tried: no panel to "
                                       "recommend (label more wells)")
                break
            if channels == full or comparison.not_worse:
                stains.smallest_panel = list(channels)
                stains.panel_reason = ("every stain is needed" if channels == full else
                                       f"not worse than all {len(full)} channels "
                                       f"({figures.accuracy:.2f} against {stains.full.accuracy:.2f} held out)")
                break
            panel.append(order.pop(0))
        if stains.curve[-1].channels != full:
            stains.curve.append(PanelStep(full, stains.full, None))
        yield self._figures_event("panel", f"smallest panel for {phenotype}", start)

    def _panel_figures(self, stains: PhenotypeStains, channels: tuple[str, ...], start: float):
        if channels == tuple(self.channels):
            return stains.full
        done = self._finished(channels, stains.phenotype)
        if done is not None:
            return done.figures[stains.phenotype]
        self._total += 1
        label = f"panel {'+'.join(channels)} for {stains.phenotype}"
        run = yield from self._subset(channels, "panel", label, start, phenotype=stains.phenotype)
        return run.figures[stains.phenotype]

    def _plate_panel(self) -> list[str] | None:
        """The stains the next assay needs: the kept ones and every learned phenotype's smallest panel
        (their union; each phenotype's panel was checked against all channels, not the union itself)."""
        panels = [s.smallest_panel for s in self.result.phenotypes.values() if s.smallest_panel is not None]
        if not panels:
            return None
        return list(self._ordered(set(self.result.keep).union(*panels)))

    def _second_opinion(self) -> None:
        from ..classical.forest import explain_with_forest
        from .gate import binomial_tail

        cfg = self.config.explain
        wells = {(k.plate, k.well): c for k, c in self.probe.site_labels.items()}
        forest = explain_with_forest(self.plate, wells, self.reference, cfg.folds, cfg.train.seed)
        for phenotype, stains in self.result.phenotypes.items():
            row = forest.row(phenotype)
            counts = [sum(1 for c in wells.values() if c == name) for name in (self.reference, phenotype)]
            chance = max(counts) / max(1, sum(counts))
            learned = binomial_tail(round(row.accuracy * row.n_wells), row.n_wells, chance) < 0.05
            warning = second_opinion_warning(row.top_channel, learned, row.accuracy, stains.alpha, stains.full)
            stains.second_opinion = SecondOpinion(row.accuracy, row.auc, row.shares, bool(learned), warning)


def _guide(stains: PhenotypeStains, channel: str) -> tuple:
    """Sort key of the forward selection: learned alone first, by accuracy and AUC alone, then α."""
    alone = stains.alone.get(channel)
    learned = alone is not None and alone.learned
    return (not learned, -(alone.accuracy if learned else 0.0), -(alone.auc if learned else 0.0),
            -stains.alpha.get(channel, 0.0))


def _run_of(explainer: Explainer, channels: tuple[str, ...]) -> _Run:
    """Each phenotype's figures (and α) of a finished explain run."""
    classes = sorted([explainer.reference, *explainer.phenotypes])
    oof = {well: (label, sum(probs) / len(probs)) for well, (label, probs) in _oof(explainer).items()}
    figures = {p: subset_figures(channels, oof, explainer.fold_predictions, classes, explainer.reference, p,
                                 explainer.chance_stops) for p in explainer.phenotypes}
    alpha = {row.phenotype: dict(row.importance) for row in explainer.result.rows if row.phenotype in figures}
    return _Run(channels, figures, alpha)


def _oof(explainer: Explainer) -> dict:
    """Well -> (true class index, [probabilities from each fold model that held it out])."""
    oof: dict = {}
    for preds in explainer.fold_predictions:
        for well, (label, probs) in preds.items():
            oof.setdefault(well, (label, []))[1].append(probs)
    return oof
