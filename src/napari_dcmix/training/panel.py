"""The phenotype panel as a trained model, with honest (out-of-fold) held-out figures.

``explain`` trains one coupled model per well fold (a panel saved before issue 20 holds binary models, one
phenotype each, and still loads); :func:`build_panel` combines all of
them into one :class:`~napari_dcmix.model.panel.PhenotypePanel` for prediction. Its held-out figures
must not come from a model that saw the well: for every labeled well and every phenotype only the
members that never trained or validated on that well score it (the fold that held a reference or
phenotype-k well out; every model of phenotype k for a well of another phenotype, which k's models
never saw). Those out-of-fold probabilities give the accuracy, the honesty gate and Z′ of every
phenotype against the reference, stored in the model so Apply says how far to trust it.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DcmixError
from ..model.panel import PhenotypePanel
from ..plate import Plate, SiteKey
from .gate import assess
from .pipeline import prefetch
from .trained import TrainedModel
from .controls import z_primes


@dataclass
class PanelMember:
    """One model of ``explain``: its phenotype (None: a coupled model, covering every phenotype), the
    model, and every well it trained or validated on (the wells it must never score for a held-out figure)."""

    phenotype: str | None
    trained: TrainedModel
    seen_wells: frozenset  # (plate, well)


def held_out_members(well: tuple[str, str], members: list[PanelMember], phenotype: str) -> list[int]:
    """Indices of the members covering ``phenotype`` that never saw ``well``."""
    return [i for i, m in enumerate(members) if m.phenotype in (phenotype, None) and well not in m.seen_wells]


def _tile_log_odds(panel: PhenotypePanel, tiles: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return panel.member_log_odds(torch.from_numpy(np.ascontiguousarray(tiles))).double().numpy()


def out_of_fold_probabilities(panel_model: TrainedModel, members: list[PanelMember], plate: Plate,
                              site_labels: dict[SiteKey, str]) -> dict[tuple[str, str], tuple[int, np.ndarray]]:
    """(plate, well) -> (true class index, class probabilities) for every labeled well, each phenotype's
    log odds taken from its held-out members only; combined as the panel does (mean log odds per tile,
    softmax, mean over the tiles of a site, then over the well's sites)."""
    panel: PhenotypePanel = panel_model.model
    classes = panel_model.classes
    phenotype_of = {c: classes[c] for c in panel.phenotype_classes()}
    source = panel_model.site_source(plate)
    keys = sorted(site_labels, key=lambda k: (k.plate, k.well, k.site))
    cut = lambda key: source.grid(key, panel_model.tile)  # noqa: E731 - runs on the decode threads
    sums: dict[tuple[str, str], list] = {}
    panel.eval()
    with closing(prefetch(cut, keys)) as reads:
        for key, tiles in reads:
            if tiles is None:
                continue
            well = (key.plate, key.well)
            log_odds = _tile_log_odds(panel, tiles)  # (tiles, members, classes)
            logits = np.zeros((len(tiles), len(classes)))
            for c, phenotype in phenotype_of.items():
                chosen = held_out_members(well, members, phenotype)
                if not chosen:
                    raise DcmixError(f"well {key.well} has no held-out {phenotype} model to judge it on; "
                                     "use more folds (--folds) or label more wells")
                logits[:, c] = log_odds[:, chosen, c].mean(axis=1)
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            site_probs = (probs / probs.sum(axis=1, keepdims=True)).mean(axis=0)
            entry = sums.setdefault(well, [classes.index(site_labels[key]), 0.0, 0])
            entry[1], entry[2] = entry[1] + site_probs, entry[2] + 1
    return {well: (label, total / n) for well, (label, total, n) in sums.items()}


def phenotype_z_primes(oof: dict, classes: list[str], reference: str) -> dict[str, float | None]:
    """Z′ of every phenotype against the reference on the out-of-fold wells, by the one rule of
    :func:`controls.z_primes` (None: too few wells)."""
    probs = {well: dict(zip(classes, (float(v) for v in p))) for well, (_, p) in oof.items()}
    labels = {well: classes[label] for well, (label, _) in oof.items()}
    return z_primes(probs, labels, reference, classes)


def build_panel(members: list[PanelMember], classes: list[str], reference: str, plate: Plate,
                site_labels: dict[SiteKey, str]) -> tuple[TrainedModel, dict]:
    """The panel model over ``classes`` (the output order), its verdict and Z′ per phenotype judged out of
    fold in its metadata -> (model, the out-of-fold (true class, probabilities) per well)."""
    if not members:
        raise DcmixError("no fold model finished, so there is no phenotype panel; run explain to the end")
    first = members[0].trained
    ref = classes.index(reference)
    for m in members:
        expected = list(classes) if m.phenotype is None else [reference, m.phenotype]
        if list(m.trained.classes) != expected:
            raise DcmixError(f"a panel member has classes {m.trained.classes}, not {expected}")
    panel = PhenotypePanel([m.trained.model for m in members],
                           [None if m.phenotype is None else classes.index(m.phenotype) for m in members],
                           len(classes), ref)
    meta = {k: first.metadata.get(k) for k in ("label_column", "normalization", "train_config", "plate")}
    trained = TrainedModel(panel.eval(), list(first.channels), list(classes), first.stats, first.tile, meta)
    oof = out_of_fold_probabilities(trained, members, plate, site_labels)
    values = list(oof.values())
    verdict = assess([label for label, _ in values], np.array([p for _, p in values]).reshape(len(values), len(classes)))
    z = phenotype_z_primes(oof, classes, reference)
    trained.metadata.update({
        "verdict": verdict.to_dict(), "test_accuracy": verdict.accuracy, "learned": verdict.learned,
        "val_accuracy": None, "held_out": "out of fold: each well scored only by models that never saw it",
        "z_prime": z, "reference": reference, "members": len(members),
        "test_wells": sorted(f"{p}:{w}" if p else w for p, w in oof),
    })
    return trained, oof


def trust_line(trained: TrainedModel) -> str:
    """One line saying which model predicts and how far to trust it (held-out accuracy, Z′ per phenotype)."""
    meta = trained.metadata
    verdict = meta.get("verdict") or {}
    head = f"{trained.kind} model"
    if trained.kind == "dcmix-panel":
        what = "coupled models" if meta.get("engine") == "coupled" else "per-phenotype models"
        head = f"phenotype panel ({meta.get('members', '?')} {what} vs {meta.get('reference', '?')})"
    if not verdict.get("n_wells"):
        return f"{head}: held-out accuracy not measured"
    text = f"{head}: held-out accuracy {verdict['accuracy']:.2f} on {verdict['n_wells']} wells"
    z = meta.get("z_prime") or {}
    if z:
        text += "; Z′ " + ", ".join(f"{k} {v:.2f}" if isinstance(v, (int, float)) else f"{k} n/a" for k, v in z.items())
    if not verdict.get("learned"):
        text += " (NOT LEARNED: do not trust its calls)"
    return text


__all__ = ["PanelMember", "build_panel", "held_out_members", "out_of_fold_probabilities", "phenotype_z_primes",
           "trust_line"]
