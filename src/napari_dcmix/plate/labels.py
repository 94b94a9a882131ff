"""Labels from a CSV joined on ``well`` (and ``plate``/``site`` when present), and saved back.

An empty label means unlabeled. Rows naming wells that are not on the plate are reported, not fatal.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .._io import atomic_write
from ..errors import PlateError
from .index import SiteKey
from .wells import normalize_well, well_position

#: Columns tried, in order, when the user names no label column.
PREFERRED_COLUMNS = ("phenotype", "label", "class", "treatment", "well_type", "sirna")
_ID_COLUMNS = {"well", "plate", "site", "experiment", "site_id", "well_id", "row", "col", "column"}


@dataclass
class Labels:
    column: str
    site_labels: dict[SiteKey, str]
    columns: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def well_labels(self) -> dict[tuple[str, str], str]:
        """(plate, well) -> label; a well whose sites disagree takes its most common label."""
        votes: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for key, label in self.site_labels.items():
            votes[(key.plate, key.well)][label] += 1
        return {pw: c.most_common(1)[0][0] for pw, c in votes.items()}

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.site_labels.values()))

    def counts(self) -> dict[str, int]:
        """Class -> number of labeled wells."""
        counts = Counter(self.well_labels().values())
        return {name: counts[name] for name in self.classes}


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PlateError(f"labels file {path} does not exist; choose an existing CSV") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError, OSError) as err:
        raise PlateError(f"{path} is not a readable CSV table ({type(err).__name__}); export the labels as CSV") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames or len(reader.fieldnames) < 2:
        raise PlateError(f"{path} is not a CSV table with a header row (e.g. well,phenotype); export the labels as CSV")
    columns = [c.strip() for c in reader.fieldnames]
    rows = [{(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()} for row in reader]
    return columns, rows


def _find(columns: list[str], name: str) -> str | None:
    lookup = {c.lower(): c for c in columns}
    return lookup.get(name)


def default_label_column(columns: list[str]) -> str | None:
    for name in PREFERRED_COLUMNS:
        if _find(columns, name):
            return _find(columns, name)
    others = [c for c in columns if c.lower() not in _ID_COLUMNS]
    return others[0] if others else None


def _plate_matcher(plates: list[str]):
    """CSV plate values ('1', 'Plate1', 'HUVEC-01/Plate1') -> the plate ids of the index."""

    def match(experiment: str, value: str) -> str | None:
        candidates = {value, f"Plate{value}"}
        if experiment:
            candidates |= {f"{experiment}/{c}" for c in list(candidates)}
        for plate in plates:
            if plate in candidates or (not experiment and plate.rsplit("/", 1)[-1] in candidates):
                return plate
        return None

    return match


def read_labels(path: str | os.PathLike, sites: list[SiteKey], column: str | None = None) -> Labels:
    """Join the CSV at ``path`` onto ``sites``; PlateError for a CSV that cannot be used at all."""
    path = Path(path).expanduser()
    columns, rows = _read_table(path)
    well_col = _find(columns, "well")
    if well_col is None:
        raise PlateError(f"{path.name} has no 'well' column (columns: {', '.join(columns)}); add one with ids like B02")
    if column is None:
        column = default_label_column(columns)
        if column is None:
            raise PlateError(f"{path.name} has no label column besides the well ids; add a column such as 'phenotype'")
    elif _find(columns, column.lower()) is None:
        raise PlateError(f"{path.name} has no column '{column}'; choose one of: {', '.join(columns)}")
    column = _find(columns, column.lower()) or column
    plate_col, site_col, exp_col = _find(columns, "plate"), _find(columns, "site"), _find(columns, "experiment")

    plates = sorted({k.plate for k in sites})
    by_well: dict[tuple[str, str], list[SiteKey]] = defaultdict(list)
    for key in sites:
        by_well[(key.plate, key.well)].append(key)
    match_plate = _plate_matcher(plates)

    site_labels: dict[SiteKey, str] = {}
    absent, bad_ids, unknown_plates = [], [], set()
    for row in rows:
        label = row.get(column, "")
        try:
            well = normalize_well(row.get(well_col, ""))
        except PlateError:
            bad_ids.append(row.get(well_col, "") or "(empty)")
            continue
        targets = plates
        if plate_col and row.get(plate_col) and plates != [""]:
            plate = match_plate(row.get(exp_col, "") if exp_col else "", row[plate_col])
            if plate is None:
                unknown_plates.add(row[plate_col])
                continue
            targets = [plate]
        found = False
        for plate in targets:
            keys = by_well.get((plate, well), [])
            if site_col and row.get(site_col, "").isdigit():
                keys = [k for k in keys if k.site == int(row[site_col])]
            found = found or bool(keys)
            if label:
                for key in keys:
                    site_labels[key] = label
        if not found:
            absent.append(well)

    problems = []
    if absent:
        uniq = sorted(set(absent), key=well_position)
        shown = ", ".join(uniq[:20]) + (f", … ({len(uniq)} wells)" if len(uniq) > 20 else "")
        problems.append(f"labels for wells not on the plate (ignored): {shown}")
    if bad_ids:
        problems.append(f"rows with unreadable well ids (ignored): {', '.join(sorted(set(bad_ids))[:10])}")
    if unknown_plates:
        problems.append(f"labels for plates not in the folder (ignored): {', '.join(sorted(unknown_plates)[:10])}")
    return Labels(column, site_labels, columns, problems)


def write_labels(path: str | os.PathLike, well_labels: dict[tuple[str, str], str], column: str = "label") -> Path:
    """Write (plate, well) -> label atomically as CSV (``plate`` column only when plates are named)."""
    path = Path(path).expanduser()
    with_plate = any(p for (p, _) in well_labels)
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow((["plate"] if with_plate else []) + ["well", column])
        for (plate, well), label in sorted(well_labels.items(), key=lambda kv: (kv[0][0], well_position(kv[0][1]))):
            writer.writerow(([plate] if with_plate else []) + [well, label])
    return path
