"""Explain with the coupled per-phenotype DCMIX (``model/coupled.py``): one model per fold × seed,
trained on every labelled well of the other folds, one blend per phenotype.

Row k is phenotype k's blend, averaged over the folds; its verdict is judged out of fold on the
wells of phenotype k and of the reference, on P(k vs reference) = P(k) / (P(k) + P(reference)) — the
wells a fold held out are scored by that fold's model only. The "all phenotypes" row is the same
models judged on every class at once (no separate multi-class model: the coupled one is one), and the
phenotype panel Apply predicts with is their ensemble. A stopped run keeps the folds that finished:
its rows say partial, with figures over the wells those folds judged.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Iterator

import numpy as np

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
    for seed in range(cfg.seeds):
        train_cfg = replace(cfg.train, seed=cfg.train.seed + seed, classes=None, model=COUPLED_KIND,
                            reference=explainer.reference)
        for fold_index, fold in enumerate(well_folds(explainer.site_labels, cfg.folds, cfg.train.seed + seed)):
            trainer = Trainer(explainer.plate, explainer.site_labels, train_cfg, test_wells=fold)
            name = f"fold {fold_index + 1}/{cfg.folds}" + (f", seed {seed + 1}" if cfg.seeds > 1 else "")
            yield from explainer._drive(trainer, name, done, total, start)
            done += 1
            alphas.append(ImportanceSnapshot.of_model(trainer.result).alpha)
            members.append(fold_member(trainer, None, oof))
            explainer.fold_predictions.append(dict(trainer.test_predictions))
            explainer.chance_stops += int(trainer.stopped_at_chance)
            matrix.rows[:] = coupled_rows(explainer, alphas, _mean(oof), partial=done < total)
            yield ExplainEvent("row", name, done, total, row=matrix.rows[0], elapsed=time.perf_counter() - start,
                               message=f"{name} done: {done}/{total} models")
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
