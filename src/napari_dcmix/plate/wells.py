"""Well ids and plate formats: every spelling a lab uses becomes one canonical id (``B02``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from ..errors import PlateError

#: (rows, columns) of the standard microplate formats, smallest first.
FORMATS = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_WELL_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")
_RC_RE = re.compile(r"^\s*[rR]0*(\d{1,3})\s*[cC]0*(\d{1,3})\s*$")


def row_letters(row: int) -> str:
    """0-based row index -> letters (0 -> A, 25 -> Z, 26 -> AA, as on 1536-well plates)."""
    if not 0 <= row < 26 * 27:
        raise PlateError(f"row {row} is beyond the two-letter rows (A..ZZ) of any plate")
    if row < 26:
        return _LETTERS[row]
    return _LETTERS[row // 26 - 1] + _LETTERS[row % 26]


def row_index(letters: str) -> int:
    """Row letters -> 0-based index (A -> 0, AA -> 26)."""
    letters = letters.upper()
    if len(letters) == 1:
        return _LETTERS.index(letters)
    return (_LETTERS.index(letters[0]) + 1) * 26 + _LETTERS.index(letters[1])


def well_id(row: int, col: int) -> str:
    """0-based row and 1-based column -> canonical id such as ``B02``."""
    return f"{row_letters(row)}{col:02d}"


def normalize_well(text: str) -> str:
    """``B2``, ``B02``, ``b02``, ``r02c02`` -> ``B02``; anything else raises PlateError."""
    return _normalize(str(text))


@lru_cache(maxsize=65536)
def _normalize(text: str) -> str:
    # a plate has at most a few thousand distinct spellings: indexing 80k file names hits this cache
    match = _WELL_RE.match(text)
    if match:
        col = int(match.group(2))
        if col >= 1:
            return well_id(row_index(match.group(1)), col)
    match = _RC_RE.match(text)
    if match:
        row, col = int(match.group(1)), int(match.group(2))
        if row >= 1 and col >= 1:
            return well_id(row - 1, col)
    raise PlateError(f"'{text}' is not a well id; write wells like B02, B2 or r02c02")


def row_col_to_well(row: str, col: str) -> str:
    """Row and column as found in a file name (``B``/``02`` or ``2``/``2``) -> ``B02``."""
    row, col = str(row).strip(), str(col).strip()
    if not col.isdigit() or int(col) < 1:
        raise PlateError(f"'{col}' is not a plate column number")
    if row.isdigit():
        if int(row) < 1:
            raise PlateError(f"'{row}' is not a plate row number (rows start at 1)")
        return well_id(int(row) - 1, int(col))
    if re.fullmatch(r"[A-Za-z]{1,2}", row):
        return well_id(row_index(row), int(col))
    raise PlateError(f"'{row}' is not a plate row; use letters (B) or numbers (2)")


def well_position(well: str) -> tuple[int, int]:
    """Canonical well id -> (0-based row, 0-based column) for drawing plate grids."""
    return _position(str(well))


@lru_cache(maxsize=65536)
def _position(well: str) -> tuple[int, int]:
    match = _WELL_RE.match(well)
    if not match:
        raise PlateError(f"'{well}' is not a well id")
    return row_index(match.group(1)), int(match.group(2)) - 1


@dataclass(frozen=True)
class PlateFormat:
    """A plate's grid: 96 (8 x 12), 384 (16 x 24) or 1536 (32 x 48) wells."""

    wells: int
    rows: int
    cols: int

    def row_names(self) -> list[str]:
        return [row_letters(r) for r in range(self.rows)]

    def all_wells(self) -> list[str]:
        return [well_id(r, c + 1) for r in range(self.rows) for c in range(self.cols)]


def infer_format(wells: Iterable[str]) -> PlateFormat:
    """The smallest standard format that holds every well (a 1536 grid if some lie beyond it)."""
    max_row, max_col = 0, 0
    for well in wells:
        row, col = well_position(well)
        max_row, max_col = max(max_row, row), max(max_col, col)
    for n, (rows, cols) in FORMATS.items():
        if max_row < rows and max_col < cols:
            return PlateFormat(n, rows, cols)
    rows, cols = max(max_row + 1, 32), max(max_col + 1, 48)
    return PlateFormat(rows * cols, rows, cols)
