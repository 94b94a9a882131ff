"""Labels from a CSV joined on ``well`` (and ``plate``/``site`` when present), and saved back.

An empty label means unlabeled. Rows naming wells that are not on the plate are reported, not fatal.
This is the one reader of labels tables for the CLI and the docks: Excel's exports (BOM, ``;``,
CRLF, a ``sep=;`` first line, UTF-16 "Unicode text", ``b2`` ids) all read the same way.
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
from .problems import IGNORED, Problem, make
from .sites import SiteKey
from .wells import normalize_well, well_position

#: Columns tried, in order, when the user names no label column.
PREFERRED_COLUMNS = ("phenotype", "label", "class", "treatment", "well_type", "sirna")
_ID_COLUMNS = {"well", "plate", "site", "experiment", "site_id", "well_id", "row", "col", "column"}


@dataclass
class Labels:
    column: str
    site_labels: dict[SiteKey, str]
    columns: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

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


_BINARY_SIGNATURES = {b"\x89PNG": "a PNG image", b"II*\x00": "a TIFF image", b"MM\x00*": "a TIFF image",
                      b"PK\x03\x04": "a zip file or an Excel workbook (.xlsx)", b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
                      b"%PDF": "a PDF", b"\xff\xd8\xff": "a JPEG image"}


def _decode(path: Path, raw: bytes) -> str:
    for signature, what in _BINARY_SIGNATURES.items():
        if raw.startswith(signature):
            raise PlateError(f"{path.name} is {what}, not a CSV table; export the labels as CSV (e.g. well,phenotype)")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in raw[:65536]:
        raise PlateError(f"{path.name} is a binary file, not a CSV table; export the labels as CSV (e.g. well,phenotype)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # Excel on Windows writes cp1252; every byte decodes in latin-1


def _delimiter(text: str) -> str:
    """The delimiter of the header line: comma, semicolon (European Excel) or tab."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _text(path: Path) -> tuple[str, str]:
    """(text, delimiter) of a labels table, or a PlateError that says how to fix the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlateError(f"labels file {path} does not exist; choose an existing CSV") from None
    except IsADirectoryError:
        raise PlateError(f"{path} is a folder, not a CSV table; choose the labels CSV file") from None
    except OSError as err:
        raise PlateError(f"{path} is not a readable CSV table ({err.strerror or type(err).__name__}); export the labels as CSV") from None
    text = _decode(path, raw)
    first, _, rest = text.lstrip("\ufeff").partition("\n")
    hint = first.rstrip("\r\n").lstrip()  # not strip(): "sep=\t" names the tab
    if hint.lower().startswith("sep=") and len(hint) == 5:  # Excel's "sep=;" hint line
        delimiter, text = hint[4], rest
    else:
        delimiter = _delimiter(text)
    return text, delimiter


def csv_columns(path: str | os.PathLike) -> list[str]:
    """The header of a labels table (for the label-column combo); PlateError if it is not a table."""
    path = Path(path).expanduser()
    text, delimiter = _text(path)
    try:
        row = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error as err:
        raise PlateError(f"{path.name} is not a valid CSV table ({err}); export the labels as CSV") from None
    return [c.strip().lstrip("\ufeff") for c in row if c.strip()]


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    text, delimiter = _text(path)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        fieldnames = reader.fieldnames
        if not fieldnames or len(fieldnames) < 2:
            raise PlateError(f"{path} is not a CSV table with a header row (e.g. well,phenotype); export the labels as CSV")
        columns = [(c or "").strip() for c in fieldnames]
        reader.fieldnames = columns
        rows = [{(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()} for row in reader]
    except csv.Error as err:
        raise PlateError(f"{path.name} is not a valid CSV table ({err}); export the labels as CSV") from None
    return columns, rows


def guess_labels_csv(folder: str | os.PathLike) -> Path | None:
    """A labels CSV that obviously belongs to ``folder``: ``labels.csv`` in it (as the sample plate
    has), or ``<folder>_labels.csv`` beside it. Nothing is guessed from elsewhere: plate folder
    names repeat (Plate1), and another plate's labels must never load silently."""
    folder = Path(folder)
    for candidate in (folder / "labels.csv", folder.parent / f"{folder.name}_labels.csv"):
        if candidate.is_file():
            return candidate
    return None


def _find(columns: list[str], name: str) -> str | None:
    lookup = {c.lower(): c for c in columns}
    return lookup.get(name.lower())


def default_label_column(columns: list[str]) -> str | None:
    for name in PREFERRED_COLUMNS:
        if _find(columns, name):
            return _find(columns, name)
    others = [c for c in columns if c.lower() not in _ID_COLUMNS]
    return others[0] if others else None


def _canon(text: str) -> str:
    """Plate names compare loosely: ``Plate_1``, ``plate 1`` and ``Plate1`` are one plate."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _plate_matcher(plates: list[str], experiments: set[str]):
    """CSV plate values ('1', 'Plate1', 'HUVEC-01/Plate1', with an experiment column) -> plate ids.

    Returns ``match(experiment, value) -> list of plate ids`` and a problem line (or None). When the
    folder's plate ids carry experiments (RxRx1: ``HUVEC-01/Plate1``) and the CSV names them, only
    exact experiment + plate matches count, so that ``Plate1`` of another experiment never leaks in.
    """
    exact = {_canon(p): p for p in plates}
    by_last: dict[str, list[str]] = defaultdict(list)
    for plate in plates:
        by_last[_canon(plate.rsplit("/", 1)[-1])].append(plate)
    prefixes = {_canon(p.rsplit("/", 1)[0]) for p in plates if "/" in p}
    known = {e for e in experiments if _canon(e) in prefixes}
    strict = bool(known)
    problem = None
    if experiments and not strict and len(experiments) > 1:
        strict = True  # several experiments, none of them ours: a plate number alone is ambiguous
        shown = ", ".join(sorted(experiments)[:5]) + (", …" if len(experiments) > 5 else "")
        problem = (f"the labels hold several experiments ({shown}) and none is a folder of this plate "
                   f"({', '.join(plates[:3])}); keep the plate folders named after their experiment, "
                   "or keep only this experiment's rows in the CSV")

    def match(experiment: str, value: str) -> list[str]:
        candidates = [value, f"Plate{value}"]
        if experiment:
            candidates = [f"{experiment}/{c}" for c in candidates] + candidates
        for cand in candidates:
            plate = exact.get(_canon(cand))
            if plate is not None and (not strict or not experiment or "/" in cand or "/" not in plate):
                return [plate]
        if strict:
            return []
        for cand in (value, f"Plate{value}"):
            found = by_last.get(_canon(cand.rsplit("/", 1)[-1]))
            if found:
                return found
        return []

    return match, problem


def read_labels(path: str | os.PathLike, sites: list[SiteKey], column: str | None = None) -> Labels:
    """Join the CSV at ``path`` onto ``sites``; PlateError for a CSV that cannot be used at all."""
    path = Path(path).expanduser()
    columns, rows = _read_table(path)
    cols = _label_columns(path, columns, column)
    sites = [SiteKey(*key) for key in sites]
    plates = sorted({k.plate for k in sites})
    csv_plates = {row[cols.plate] for row in rows if row.get(cols.plate)} if cols.plate else set()
    experiments = {row[cols.experiment] for row in rows if row.get(cols.experiment)} if cols.experiment else set()
    match_plate, plate_problem = _plate_matcher([p for p in plates if p], experiments)
    # a folder of one unnamed plate takes every row, unless the CSV names several plates
    use_plates = bool(csv_plates) and plates != [""]
    unnamed_but_many = bool(csv_plates) and plates == [""] and len(csv_plates) > 1
    join = _Join()
    join.add_rows([] if unnamed_but_many else rows, cols, sites, plates, match_plate, use_plates)
    problems = join.problems(path.name, plate_problem, csv_plates if unnamed_but_many else set())
    labels = Labels(cols.label, join.site_labels, columns, problems)
    problems.extend(class_warnings(labels, path.name))
    return labels


@dataclass
class _Columns:
    """The labels table's columns that the join reads (as the CSV spells them)."""

    well: str
    label: str
    plate: str | None
    site: str | None
    experiment: str | None


def _label_columns(path: Path, columns: list[str], column: str | None) -> _Columns:
    """Find the well and label columns (the label one named or guessed), or say which is missing."""
    well_col = _find(columns, "well")
    if well_col is None:
        raise PlateError(f"{path.name} has no 'well' column (columns: {', '.join(columns)}); add one with ids like B02")
    if column is None:
        column = default_label_column(columns)
        if column is None:
            raise PlateError(f"{path.name} has no label column besides the well ids; add a column such as 'phenotype'")
    elif _find(columns, column) is None:
        raise PlateError(f"{path.name} has no column '{column}'; choose one of: {', '.join(columns)}")
    column = _find(columns, column) or column
    return _Columns(well_col, column, _find(columns, "plate"), _find(columns, "site"), _find(columns, "experiment"))


@dataclass
class _Join:
    """The labels the rows give the plate's sites, and every row that could not be used (and why)."""

    site_labels: dict[SiteKey, str] = field(default_factory=dict)
    absent: set[tuple[str, str]] = field(default_factory=set)
    absent_sites: set[str] = field(default_factory=set)
    bad_ids: list[str] = field(default_factory=list)
    unknown_plates: set[str] = field(default_factory=set)
    ambiguous: set[str] = field(default_factory=set)
    conflicts: set[str] = field(default_factory=set)

    def add_rows(self, rows: list[dict[str, str]], cols: _Columns, sites: list[SiteKey], plates: list[str],
             match_plate, use_plates: bool) -> None:
        """Label the sites each row names (its well, on its plate when plates are named, at its site if given)."""
        by_well: dict[tuple[str, str], list[SiteKey]] = defaultdict(list)
        for key in sites:
            by_well[(key.plate, key.well)].append(key)
        for row in rows:
            label = row.get(cols.label, "")
            try:
                well = normalize_well(row.get(cols.well, ""))
            except PlateError:
                self.bad_ids.append(row.get(cols.well, "") or "(empty)")
                continue
            targets = self._target_plates(row, cols, plates, match_plate, use_plates)
            if targets is None:
                continue
            site_text = row.get(cols.site, "") if cols.site else ""
            for plate in targets:
                self._label_well(by_well, plate, well, site_text, label)

    def _target_plates(self, row: dict[str, str], cols: _Columns, plates: list[str], match_plate,
                       use_plates: bool) -> list[str] | None:
        """The plates a row's label goes to; None (and noted) when its plate is unknown or ambiguous."""
        targets = plates or [""]  # no site at all: every labeled well is reported as absent
        if use_plates and row.get(cols.plate):
            experiment = row.get(cols.experiment, "") if cols.experiment else ""
            targets = match_plate(experiment, row[cols.plate])
            if not targets:
                self.unknown_plates.add(f"{experiment}/{row[cols.plate]}" if experiment else row[cols.plate])
                return None
            if len(targets) > 1:
                self.ambiguous.add(row[cols.plate])
                return None
        return targets

    def _label_well(self, by_well: dict, plate: str, well: str, site_text: str, label: str) -> None:
        """Give ``label`` to the well's sites (only the named site when the row gives one)."""
        keys = by_well.get((plate, well), [])
        if not keys:
            self.absent.add((plate, well))
            return
        if site_text.isdigit():
            keys = [k for k in keys if k.site == int(site_text)]
            if not keys:
                self.absent_sites.add(f"{plate + ' ' if plate else ''}{well} s{int(site_text)}")
        if label:
            for key in keys:
                if self.site_labels.get(key, label) != label:
                    self.conflicts.add(key.label())
                self.site_labels[key] = label

    def problems(self, file: str, plate_problem: str | None, unused_plates: set[str]) -> list[Problem]:
        """One problem line per kind of unused row; ``unused_plates``: the CSV's plates when it names
        several but the folder holds one unnamed plate (then no row was used)."""
        problems: list[Problem] = []

        def note(text: str, fix: str = "", action: str = IGNORED) -> None:
            # the texts already say "(ignored)": the action is recorded, not repeated
            problems.append(Problem("labels", text + (f"; {fix}" if fix else ""), file=file, action=action, fix=fix))

        if self.absent:
            uniq = sorted(self.absent, key=lambda pw: (pw[0], well_position(pw[1])))
            words = [f"{p} {w}" if p else w for p, w in uniq]
            shown = ", ".join(words[:20]) + (f", … ({len(words)} wells)" if len(words) > 20 else "")
            note(f"labels for wells not on the plate (ignored): {shown}", "check the plate or the well ids")
        if self.absent_sites:
            shown = sorted(self.absent_sites)
            note(f"labels for sites not on the plate (ignored): {', '.join(shown[:20])}"
                 + (f", … ({len(shown)} sites)" if len(shown) > 20 else ""))
        if self.bad_ids:
            note(f"rows with unreadable well ids (ignored): {', '.join(sorted(set(self.bad_ids))[:10])}", "write wells like B02")
        if plate_problem and self.unknown_plates:
            note(plate_problem)
        if self.unknown_plates:
            shown = sorted(self.unknown_plates)
            note(f"labels for plates not in the folder (ignored): {', '.join(shown[:10])}"
                 + (f", … ({len(shown)} plates)" if len(shown) > 10 else ""))
        if self.ambiguous:
            note(f"plate names that fit several plates of the folder (ignored): {', '.join(sorted(self.ambiguous)[:10])}; "
                 "add an 'experiment' column or write the full plate id (e.g. HUVEC-01/Plate1)")
        if unused_plates:
            shown = ", ".join(sorted(unused_plates)[:5]) + (", …" if len(unused_plates) > 5 else "")
            note(f"the labels name {len(unused_plates)} plates ({shown}) but this folder holds one unnamed plate: "
                 "no label was used; keep only this plate's rows in the CSV, or drop its plate column")
        if self.conflicts:
            shown = sorted(self.conflicts)
            note(f"sites labeled twice with different labels (the last row wins): {', '.join(shown[:10])}"
                 + (f", … ({len(shown)} sites)" if len(shown) > 10 else ""))
        return problems


def class_warnings(labels: Labels, file: str = "") -> list[Problem]:
    """Labels a classifier cannot learn from well: a single class, or a class on a single well."""
    wells: dict[str, list[str]] = defaultdict(list)
    for (plate, well), label in labels.well_labels().items():
        wells[label].append(f"{plate} {well}" if plate else well)
    if len(wells) == 1:
        [(name, _)] = wells.items()
        return [make("labels", f"only one class ('{name}') is labeled in column '{labels.column}'",
                     "a classifier needs at least two classes; label wells of another class or choose another column",
                     file=file)]
    return [make("labels", f"class '{name}' is labeled on one well only ({names[0]})",
                 "label more wells of it: training and validation each need wells of every class, "
                 "or leave the class out (--classes)", file=file)
            for name, names in sorted(wells.items()) if len(names) == 1]


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
