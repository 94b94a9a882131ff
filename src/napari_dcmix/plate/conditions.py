"""The plate's condition table: the labels CSV's other columns (compound, dose, well_type…) per well.

Screeners think in conditions: "show me the DMSO wells", "dose ≥ 1 µM". The columns are joined onto
the plate exactly like the labels (same well, plate and experiment matching, by reusing
``read_labels`` per column), so a condition never lands on another plate's well.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PlateError
from .sites import SiteKey
from .labels import _ID_COLUMNS, _read_table, read_labels
from .wells import well_position

MAX_COLUMNS = 12  # a tooltip, not a spreadsheet
_CLAUSE = re.compile(r"^\s*(?P<column>[^=<>!~]+?)\s*(?P<op>>=|<=|!=|==|=|>|<|~)\s*(?P<value>.*?)\s*$")


@dataclass
class Conditions:
    columns: list[str]
    by_well: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def to_metadata(self) -> dict:
        """JSON for a model file: which conditions the training wells had (``"<plate> <well>"`` keys)."""
        wells = {f"{p} {w}" if p else w: dict(v) for (p, w), v in
                 sorted(self.by_well.items(), key=lambda kv: (kv[0][0], well_position(kv[0][1])))}
        return {"columns": list(self.columns), "wells": wells}

    def for_plate(self, plate: str) -> dict[str, dict[str, str]]:
        """Well -> {column: value} for one plate of the folder."""
        return {w: values for (p, w), values in self.by_well.items() if p == plate}


def read_conditions(path: str | os.PathLike, sites: list[SiteKey], label_column: str | None = None) -> Conditions:
    """Every column of the CSV except ids and the label column, per (plate, well): first non-empty value."""
    columns, _ = _read_table(Path(path).expanduser())
    wanted = [c for c in columns if c.lower() not in _ID_COLUMNS and c != label_column][:MAX_COLUMNS]
    by_well: dict[tuple[str, str], dict[str, str]] = {}
    for column in wanted:
        joined = read_labels(path, sites, column).site_labels
        for key in sorted(joined):
            by_well.setdefault((key.plate, key.well), {}).setdefault(column, joined[key])
    return Conditions(wanted, by_well)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _clause(text: str, columns: list[str]):
    match = _CLAUSE.match(text)
    if not match:
        raise PlateError(f"'{text.strip()}' is not a condition; write column=value, e.g. compound=DMSO or dose>=1")
    lookup = {c.lower(): c for c in columns}
    column = lookup.get(match["column"].lower())
    if column is None:
        raise PlateError(f"'{match['column']}' is not a column of the condition table "
                         f"({', '.join(columns) or 'none loaded'}); load a labels CSV with it")
    op, value = match["op"], match["value"]
    if op in (">", "<", ">=", "<=") and _number(value) is None:
        raise PlateError(f"'{text.strip()}' compares with '{value}', which is not a number")
    return column, op, value


def _holds(cell: str | None, op: str, value: str) -> bool:
    if cell is None:
        return op == "!="
    if op == "~":
        return value.lower() in cell.lower()
    if op in ("=", "=="):
        a, b = _number(cell), _number(value)
        return a == b if a is not None and b is not None else cell.strip().lower() == value.lower()
    if op == "!=":
        return not _holds(cell, "=", value)
    a, b = _number(cell), float(value)
    if a is None:
        return False
    return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]


def select_wells(conditions: Conditions, expression: str, plate: str) -> list[str]:
    """Wells of ``plate`` meeting every clause of ``expression`` (``compound=DMSO, dose>=1``; ``~``
    means "contains"), in plate order; PlateError says how to fix a malformed expression."""
    clauses = [_clause(part, conditions.columns) for part in re.split(r"[,;]|\band\b", expression) if part.strip()]
    if not clauses:
        raise PlateError("the filter is empty; write column=value, e.g. compound=DMSO")
    wells = conditions.for_plate(plate)
    chosen = [w for w, values in wells.items() if all(_holds(values.get(c), op, v) for c, op, v in clauses)]
    return sorted(chosen, key=well_position)
