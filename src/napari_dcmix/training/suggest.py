"""Which unlabelled wells to label next: the wells whose label would teach the model most.

The rule (``RULE``; the README's "Label these wells next" says the same):

* **uncertainty** of the model's call, 1 − (P(first) − P(second)): 1 when the two most likely classes
  are tied, 0 when the model is sure. The margin, not the entropy, because the label decides between
  the top two classes; a flat tail over classes nobody considers says little.
* **disagreement** between the members of a phenotype panel (its fold models): their mutual
  information, H(mean of the members' P) − mean of each member's H(P), divided by log(classes), so
  0–1: 0 when every member gives the same distribution, high when each is sure of a different class.
  A model trained by ``train`` has one member: 0, and the reason says so.
* **score = uncertainty + disagreement**, then a **diversity-aware greedy pick**: wells are taken one at
  a time, each well's score scaled by min(1, its distance to the nearest well picked before it ÷ the
  typical distance between the candidate wells) in the model's own feature space (the backbone's pooled
  features, averaged over a well's tiles), so a near copy of a picked well drops down the list.

Why: uncertainty sampling (CellProfiler Analyst's "fetch" of uncertain cells) finds the wells near the
decision boundary, but on a plate it picks near-duplicates (replicate wells of one compound are equally
uncertain): 8 copies of one question. Query-by-committee disagreement adds what one model cannot know
it does not know (members trained on other folds see it differently). The greedy distance scaling is
the cheap core of BADGE / core-set selection: the top N cover different regions of what the model sees.

Prediction goes through ``predictor.batched_probabilities`` (the path of ``predict``); one forward pass
gives the panel's probabilities, each member's and the pooled features (``_Readout``, hooks on a
private copy of the model: the session's model is shared with docks that may be predicting).
"""

from __future__ import annotations

import copy
import csv
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from .._io import atomic_write
from ..errors import DcmixError
from ..plate import Plate
from .device import resolve_device
from .predictor import batched_probabilities
from .trained import TrainedModel

RULE = ("score = uncertainty (1 − margin between the two most likely classes) + disagreement between the "
        "panel's members (their mutual information ÷ log(classes); 0 for a single model); picked greedily, each "
        "well's score scaled by min(1, distance to the nearest well picked before it ÷ the typical distance "
        "between wells) in the model's feature space, so the top wells are not copies of one well")
#: at most this many wells measure the typical distance between wells (a 1536-well plate stays cheap)
TYPICAL_SAMPLE = 512
MAX_SUGGESTIONS = 10_000

WellKey = tuple  # (plate id, well)


@dataclass(frozen=True)
class Suggestion:
    """One well to label next: where it ranks, its score and why (``reason``, a human sentence)."""

    plate: str
    well: str
    rank: int
    score: float            # what it was picked on: (uncertainty + disagreement) × its diversity factor
    uncertainty: float
    disagreement: float | None  # None: one model, no members to disagree
    prediction: str
    probabilities: Mapping[str, float]
    reason: str

    @property
    def key(self) -> WellKey:
        return self.plate, self.well

    def to_dict(self) -> dict:
        return {"rank": self.rank, "plate": self.plate, "well": self.well, "score": self.score,
                "uncertainty": self.uncertainty, "disagreement": self.disagreement, "prediction": self.prediction,
                "probabilities": dict(self.probabilities), "reason": self.reason}


@dataclass(frozen=True)
class WellSuggestions:
    """The ranked wells of one run, best first, and what they were ranked among."""

    items: tuple[Suggestion, ...]
    model_name: str
    members: int            # models whose disagreement counted (1: a model trained by train)
    candidates: int         # unlabelled wells that were ranked
    skipped: tuple[WellKey, ...] = ()  # unlabelled wells with no readable site: not ranked
    learned: bool | None = None  # the model's held-out verdict (None: not known)
    rule: str = RULE

    def __len__(self) -> int:
        return len(self.items)

    def wells(self) -> list[WellKey]:
        return [s.key for s in self.items]

    def get(self, key: WellKey) -> Suggestion | None:
        return next((s for s in self.items if s.key == key), None)

    def without(self, wells: Iterable[WellKey]) -> "WellSuggestions":
        """The same list without ``wells`` (they got a label): the others keep their rank."""
        gone = set(wells)
        return replace(self, items=tuple(s for s in self.items if s.key not in gone))

    @property
    def warning(self) -> str | None:
        """What to say beside the list when the model it came from learned nothing."""
        if self.learned is False:
            return ("the model learned nothing you can trust (NOT LEARNED on its held-out wells), so its "
                    "uncertainty says little and these wells are close to a random pick; still, labelling "
                    "them and retraining is the way out")
        return None

    def to_dict(self) -> dict:
        return {"rule": self.rule, "model": self.model_name, "model_learned": self.learned, "members": self.members,
                "candidates": self.candidates, "suggestions": [s.to_dict() for s in self.items],
                "skipped_wells": [f"{p}:{w}" if p else w for p, w in self.skipped]}

    def rows(self, with_plate: bool = False) -> list[dict]:
        """CSV rows: rank, [plate,] well, score, uncertainty, disagreement, prediction, reason."""
        rows = []
        for s in self.items:
            row = {"rank": s.rank, **({"plate": s.plate} if with_plate else {}), "well": s.well,
                   "score": f"{s.score:.4f}", "uncertainty": f"{s.uncertainty:.4f}",
                   "disagreement": "" if s.disagreement is None else f"{s.disagreement:.4f}",
                   "prediction": s.prediction, "reason": s.reason}
            rows.append(row)
        return rows


@dataclass
class SuggestEvent:
    """Progress of a suggestion run: "site" (one more site predicted) or "done" (``result`` is ready)."""

    kind: str
    done: int
    total: int
    elapsed: float
    result: WellSuggestions | None = field(default=None, repr=False)

    @property
    def message(self) -> str:
        if self.kind == "done" and self.result is not None:
            return f"ranked {self.result.candidates} unlabelled wells: {len(self.result)} suggested"
        return f"predicting unlabelled wells: {self.done}/{self.total} sites"


def _members(model: nn.Module) -> list[nn.Module]:
    from ..model.panel import PhenotypePanel

    return list(model.members) if isinstance(model, PhenotypePanel) else [model]


class _Readout(nn.Module):
    """One forward pass -> per tile [P(class) (K) | each member's P(class) (M × K) | pooled features].

    A binary member of an older panel judges one phenotype: its distribution takes the panel's log odds
    for the classes it does not cover. Features come from hooks on each member's backbone (its global
    average pool; a coupled member's per-blend features side by side).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.members = _members(model)
        self._captured: list[torch.Tensor] = []
        for member in self.members:
            backbone = getattr(member, "backbone", None)
            if backbone is not None:
                backbone.register_forward_hook(lambda _module, _inputs, output: self._captured.append(output))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..model.panel import PhenotypePanel

        self._captured = []
        model = self.model
        if isinstance(model, PhenotypePanel):
            log_odds = model.member_log_odds(x).float()  # (B, M, K)
            logits = model.combine(log_odds)
            covers = torch.from_numpy(model.coverage()).to(x.device)
            member_logits = torch.where(covers[None], log_odds, logits[:, None, :])
        else:
            logits = model(x).float()
            member_logits = logits[:, None, :]
        b = x.shape[0]
        features = [f.float().reshape(b, -1) for f in self._captured] or [member_logits.reshape(b, -1)]
        return torch.cat([torch.softmax(logits, dim=1), torch.softmax(member_logits, dim=2).reshape(b, -1),
                          *features], dim=1)


def candidate_wells(plate: Plate, labels: Mapping[WellKey, str], within: Iterable[WellKey] | None = None) -> list[WellKey]:
    """The wells with images that carry no label (and lie ``within`` the given wells), in plate order."""
    labelled = {key for key, cls in labels.items() if cls}
    allowed = None if within is None else set(within)
    return [pw for pw in plate.well_keys() if pw not in labelled and (allowed is None or pw in allowed)]


def suggest_wells(trained: TrainedModel, plate: Plate, labels: Mapping[WellKey, str], n: int = 8,
                  device: str = "cpu", within: Iterable[WellKey] | None = None, batch_size: int = 64,
                  workers: int | None = None) -> Iterator[SuggestEvent]:
    """Predict every unlabelled well (``within`` those wells, if given) and rank the ``n`` to label next.

    Yields a "site" event per readable site and a last "done" event carrying the :class:`WellSuggestions`
    (also the generator's return value). Closing it stops after the site in hand.
    """
    if not 1 <= int(n) <= MAX_SUGGESTIONS:
        raise DcmixError(f"cannot suggest {n} wells; give a whole number between 1 and {MAX_SUGGESTIONS}")
    trained.channel_order(plate.channels)  # a channel mismatch is refused before any work
    wells = candidate_wells(plate, labels, within)
    if not wells:
        raise DcmixError("every well with images is labelled already, so there is nothing to suggest; "
                         "unlabel some wells or open another plate")
    keys = [key for plate_id, well in wells for key in plate.sites_of(well, plate_id)]
    dev = resolve_device(device)
    readout = _Readout(copy.deepcopy(trained.model)).to(dev).eval()
    source = trained.site_source(plate)
    cut = lambda key: source.grid(key, trained.tile)  # noqa: E731 - runs on the decode threads
    sums: dict[WellKey, list] = {}
    start = time.perf_counter()
    for done, key, row in batched_probabilities(readout, cut, keys, dev, batch_size, workers, readout=_as_is):
        entry = sums.setdefault((key.plate, key.well), [0.0, 0])
        entry[0], entry[1] = entry[0] + row, entry[1] + 1
        yield SuggestEvent("site", done, len(keys), time.perf_counter() - start)
    rows = {pw: total / count for pw, (total, count) in sums.items()}
    result = rank_wells(rows, trained.classes, len(readout.members), n, trained.display_name,
                        skipped=[pw for pw in wells if pw not in rows], learned=trained.learned)
    yield SuggestEvent("done", len(keys), len(keys), time.perf_counter() - start, result)
    return result


def _as_is(output: torch.Tensor) -> torch.Tensor:
    return output


def uncertainty(probs: np.ndarray) -> np.ndarray:
    """(wells, K) -> 1 − (P(first) − P(second)) per well."""
    top = np.sort(probs, axis=1)[:, ::-1]
    return 1.0 - (top[:, 0] - top[:, 1])


def disagreement(member_probs: np.ndarray) -> np.ndarray:
    """(wells, M, K) -> the members' mutual information ÷ log K per well (0: they agree)."""
    def entropy(p):
        return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=-1)

    k = member_probs.shape[-1]
    info = entropy(member_probs.mean(axis=1)) - entropy(member_probs).mean(axis=1)
    return np.clip(info / math.log(k), 0.0, 1.0)


def _standardised(features: np.ndarray) -> np.ndarray:
    """Every feature z-scored over the candidate wells (constant ones dropped), scaled so a distance is
    per feature (comparable between backbones)."""
    std = features.std(axis=0)
    keep = std > 1e-8
    if not keep.any():
        return np.zeros((len(features), 1))
    z = (features[:, keep] - features[:, keep].mean(axis=0)) / std[keep]
    return z / math.sqrt(keep.sum())


def typical_distance(z: np.ndarray, seed: int = 0) -> float:
    """The median distance between two candidate wells (of at most TYPICAL_SAMPLE of them)."""
    if len(z) < 2:
        return 0.0
    if len(z) > TYPICAL_SAMPLE:
        z = z[np.random.default_rng(seed).choice(len(z), TYPICAL_SAMPLE, replace=False)]
    squares = (z ** 2).sum(axis=1)
    d = np.sqrt(np.maximum(squares[:, None] + squares[None, :] - 2.0 * z @ z.T, 0.0))  # no (n, n, F) array
    return float(np.median(d[np.triu_indices(len(z), 1)]))


def pick_diverse(scores: np.ndarray, features: np.ndarray, n: int) -> list[tuple[int, float, float, int | None]]:
    """Greedy picks -> (index, adjusted score, diversity factor, index of the nearest earlier pick).

    Each step takes the highest score × min(1, distance to the nearest earlier pick ÷ the typical
    distance); ties go to the well further from the earlier picks, then to plate order.
    """
    z = _standardised(np.asarray(features, np.float64))
    typical = typical_distance(z)
    count = len(scores)
    nearest_d, nearest_i = np.full(count, np.inf), np.full(count, -1)
    taken = np.zeros(count, bool)
    picks = []
    for _ in range(min(n, count)):
        factor = np.minimum(1.0, nearest_d / typical) if typical > 0 else np.ones(count)
        adjusted = np.where(taken, -np.inf, scores * factor + 1e-9 * factor)
        i = int(np.argmax(adjusted))
        picks.append((i, float(scores[i] * factor[i]), float(factor[i]), None if nearest_i[i] < 0 else int(nearest_i[i])))
        taken[i] = True
        d = np.sqrt(((z - z[i]) ** 2).sum(axis=1))
        closer = d < nearest_d
        nearest_d[closer], nearest_i[closer] = d[closer], i
    return picks


def reason_text(classes: list[str], probs: np.ndarray, member_probs: np.ndarray, factor: float,
                nearest: str | None, first: bool) -> str:
    """Why a well is suggested, in one sentence a biologist reads on hover."""
    order = np.argsort(-probs, kind="stable")
    a, b = classes[order[0]], classes[order[1]]
    call = f"{a} {probs[order[0]]:.2f} vs {b} {probs[order[1]]:.2f}"
    sure = "uncertain" if probs[order[0]] - probs[order[1]] < 0.5 else "fairly sure"
    if len(member_probs) >= 2:
        votes = Counter(classes[int(np.argmax(m))] for m in member_probs)
        said = ", ".join(f"{count} say{'s' if count == 1 else ''} {name}" for name, count in votes.most_common())
        text = f"members {'disagree' if len(votes) > 1 else 'agree'}: {said}; {sure}: {call}"
    else:
        text = f"{sure}: {call} (one model: no members to disagree)"
    if nearest is not None and factor < 0.995:
        text += f"; close to {nearest} (picked before it) in what the model sees: score × {factor:.2f}"
    elif not first:
        text += "; unlike the wells picked before it"
    return text


def rank_wells(rows: Mapping[WellKey, np.ndarray], classes: list[str], members: int, n: int, model_name: str,
               skipped: Iterable[WellKey] = (), learned: bool | None = None) -> WellSuggestions:
    """Per-well readout rows (``_Readout``, averaged over the well's sites) -> the ranked suggestions."""
    k = len(classes)
    wells = list(rows)
    if not wells:
        return WellSuggestions((), model_name, members, 0, tuple(skipped), learned)
    table = np.stack([rows[w] for w in wells]).astype(np.float64)
    probs, member_probs = table[:, :k], table[:, k:k + members * k].reshape(len(wells), members, k)
    features = table[:, k + members * k:]
    unsure = uncertainty(probs)
    disagree = disagreement(member_probs) if members >= 2 else np.zeros(len(wells))
    items = []
    for rank, (i, score, factor, nearest) in enumerate(pick_diverse(unsure + disagree, features, n), 1):
        near = None if nearest is None else wells[nearest][1]
        items.append(Suggestion(
            wells[i][0], wells[i][1], rank, score, float(unsure[i]), float(disagree[i]) if members >= 2 else None,
            classes[int(np.argmax(probs[i]))], {c: float(p) for c, p in zip(classes, probs[i])},
            reason_text(classes, probs[i], member_probs[i], factor, near, rank == 1)))
    return WellSuggestions(tuple(items), model_name, members, len(wells), tuple(skipped), learned)


def write_suggestions(path: str | os.PathLike, result: WellSuggestions, with_plate: bool = False) -> None:
    """The CSV of ``suggest --out``, written atomically (never inside a plate folder)."""
    rows = result.rows(with_plate)
    columns = ["rank", *(["plate"] if with_plate else []), "well", "score", "uncertainty", "disagreement",
               "prediction", "reason"]
    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


__all__ = ["RULE", "SuggestEvent", "Suggestion", "WellSuggestions", "candidate_wells", "disagreement",
           "pick_diverse", "rank_wells", "reason_text", "suggest_wells", "uncertainty", "write_suggestions"]
