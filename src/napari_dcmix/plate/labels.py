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
    plate_col, site_col, exp_col = _find(columns, "plate"), _find(columns, "site"), _find(columns, "experiment")

    sites = [SiteKey(*key) for key in sites]
    plates = sorted({k.plate for k in sites})
    by_well: dict[tuple[str, str], list[SiteKey]] = defaultdict(list)
    for key in sites:
        by_well[(key.plate, key.well)].append(key)
    csv_plates = {row[plate_col] for row in rows if row.get(plate_col)} if plate_col else set()
    experiments = {row[exp_col] for row in rows if row.get(exp_col)} if exp_col else set()
    match_plate, plate_problem = _plate_matcher([p for p in plates if p], experiments)
    # a folder of one unnamed plate takes every row, unless the CSV names several plates
    use_plates = bool(csv_plates) and plates != [""]
    unnamed_but_many = bool(csv_plates) and plates == [""] and len(csv_plates) > 1

    site_labels: dict[SiteKey, str] = {}
    absent: set[tuple[str, str]] = set()
    absent_sites: set[str] = set()
    bad_ids, unknown_plates, ambiguous, conflicts = [], set(), set(), set()
    if unnamed_but_many:
        rows = []
    for row in rows:
        label = row.get(column, "")
        try:
            well = normalize_well(row.get(well_col, ""))
        except PlateError:
            bad_ids.append(row.get(well_col, "") or "(empty)")
            continue
        targets = plates or [""]  # no site at all: every labeled well is reported as absent
        if use_plates and row.get(plate_col):
            experiment = row.get(exp_col, "") if exp_col else ""
            targets = match_plate(experiment, row[plate_col])
            if not targets:
                unknown_plates.add(f"{experiment}/{row[plate_col]}" if experiment else row[plate_col])
                continue
            if len(targets) > 1:
                ambiguous.add(row[plate_col])
                continue
        site_text = row.get(site_col, "") if site_col else ""
        for plate in targets:
            keys = by_well.get((plate, well), [])
            if not keys:
                absent.add((plate, well))
                continue
            if site_text.isdigit():
                keys = [k for k in keys if k.site == int(site_text)]
                if not keys:
                    absent_sites.add(f"{plate + ' ' if plate else ''}{well} s{int(site_text)}")
            if label:
                for key in keys:
                    if site_labels.get(key, label) != label:
                        conflicts.add(key.label())
                    site_labels[key] = label

    problems: list[Problem] = []

    def note(text: str, fix: str = "", action: str = IGNORED) -> None:
        # the texts already say "(ignored)": the action is recorded, not repeated
        problems.append(Problem("labels", text + (f"; {fix}" if fix else ""), file=path.name, action=action, fix=fix))

    if absent:
        uniq = sorted(absent, key=lambda pw: (pw[0], well_position(pw[1])))
        words = [f"{p} {w}" if p else w for p, w in uniq]
        shown = ", ".join(words[:20]) + (f", … ({len(words)} wells)" if len(words) > 20 else "")
        note(f"labels for wells not on the plate (ignored): {shown}", "check the plate or the well ids")
    if absent_sites:
        shown = sorted(absent_sites)
        note(f"labels for sites not on the plate (ignored): {', '.join(shown[:20])}"
             + (f", … ({len(shown)} sites)" if len(shown) > 20 else ""))
    if bad_ids:
        note(f"rows with unreadable well ids (ignored): {', '.join(sorted(set(bad_ids))[:10])}", "write wells like B02")
    if plate_problem and unknown_plates:
        note(plate_problem)
    if unknown_plates:
        shown = sorted(unknown_plates)
        note(f"labels for plates not in the folder (ignored): {', '.join(shown[:10])}"
             + (f", … ({len(shown)} plates)" if len(shown) > 10 else ""))
    if ambiguous:
        note(f"plate names that fit several plates of the folder (ignored): {', '.join(sorted(ambiguous)[:10])}; "
             "add an 'experiment' column or write the full plate id (e.g. HUVEC-01/Plate1)")
    if unnamed_but_many:
        shown = ", ".join(sorted(csv_plates)[:5]) + (", …" if len(csv_plates) > 5 else "")
        note(f"the labels name {len(csv_plates)} plates ({shown}) but this folder holds one unnamed plate: "
             "no label was used; keep only this plate's rows in the CSV, or drop its plate column")
    if conflicts:
        shown = sorted(conflicts)
        note(f"sites labeled twice with different labels (the last row wins): {', '.join(shown[:10])}"
             + (f", … ({len(shown)} sites)" if len(shown) > 10 else ""))
    labels = Labels(column, site_labels, columns, problems)
    problems.extend(class_warnings(labels, path.name))
    return labels


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
