"""The Apply dock's results without Qt: what a prediction run streamed in (site -> probabilities, the
model and classes it came from), the per-well means, the rows the table and the export show, and how
the table sorts. Read by the dock, its figure exports and the tests; the CLI's writer makes the rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ...plate.wells import well_position
from ...training.exports import table_rows
from ...training.predictor import prediction_record, well_probabilities


@dataclass
class PredictionResults:
    """One run's results (a new run with another model, or a new plate, starts empty)."""

    model: object = None                      # the TrainedModel they came from
    classes: list[str] = field(default_factory=list)
    by_well: dict[tuple[str, str], dict] = field(default_factory=dict)  # well -> site -> probabilities
    well_probs: dict[tuple[str, str], object] = field(default_factory=dict)
    _dirty: set = field(default_factory=set)

    def start(self, model) -> None:
        """Results of ``model`` begin (what was predicted with another model is dropped)."""
        if model is not self.model:
            self.clear()
        self.model, self.classes = model, list(model.classes)

    def clear(self) -> None:
        self.model, self.classes = None, []
        self.by_well, self.well_probs, self._dirty = {}, {}, set()

    def add(self, key, probabilities) -> None:
        """One site's probabilities (the well's mean follows at :meth:`take_changed_wells`)."""
        well = (key.plate, key.well)
        self.by_well.setdefault(well, {})[key] = probabilities
        self._dirty.add(well)

    def take_changed_wells(self) -> dict[tuple[str, str], dict]:
        """Session records of the wells that got sites since the last call (the CLI's own mean, over
        the same sites in the same order)."""
        changed = {}
        for well in sorted(self._dirty):
            self.well_probs[well] = well_probabilities(self.by_well[well])[well]
            changed[well] = prediction_record(self.classes, self.well_probs[well])
        self._dirty.clear()
        return changed

    @property
    def sites(self) -> int:
        return sum(map(len, self.by_well.values()))

    def site_probabilities(self) -> dict:
        """Every predicted site -> its class probabilities."""
        return {k: p for sites in self.by_well.values() for k, p in sites.items()}

    def rows(self, plate, per_site: bool) -> list[dict]:
        """Rows exactly as the CLI writes them (csv format), per well or per site, in plate order."""
        if not self.by_well or plate is None:
            return []
        return table_rows(self.classes, plate, self.site_probabilities(), "csv", per_site)


def sort_key(column: str, text: str):
    """Table cells sort as what they are: wells in plate order, sites and numbers numerically."""
    if column == "well":
        return well_position(text)
    if column == "site":
        return int(text)
    if column == "confidence" or column.startswith("p_"):
        return float(text)
    return text


def counts_text(rows: list[dict], classes: list[str], unit: str) -> str:
    """Per-class counts of the predicted classes, e.g. 'negative: 40 · positive: 56  (96 wells)'."""
    if not rows:
        return ""
    counts = Counter(row["prediction"] for row in rows)
    return " · ".join(f"{c}: {counts[c]}" for c in classes if counts[c]) + f"  ({len(rows)} {unit})"
