"""Which wells a click, a drag or a key reaches on a plate map: rectangles, rows, columns, the
next/previous well in reading order and the next/previous suggested well. No Qt: the plate browser's map and its key bindings use it."""

from __future__ import annotations

from typing import Iterable

from .wells import well_position


def rect_wells(a: str, b: str, present: Iterable[str]) -> list[str]:
    """Present wells in the rectangle spanned by wells ``a`` and ``b`` (shift-click, drag), plate order."""
    (r0, c0), (r1, c1) = well_position(a), well_position(b)
    rlo, rhi, clo, chi = min(r0, r1), max(r0, r1), min(c0, c1), max(c0, c1)
    inside = [w for w in present if rlo <= well_position(w)[0] <= rhi and clo <= well_position(w)[1] <= chi]
    return sorted(inside, key=well_position)


def row_wells(row: int, present: Iterable[str]) -> list[str]:
    return sorted((w for w in present if well_position(w)[0] == row), key=well_position)


def col_wells(col: int, present: Iterable[str]) -> list[str]:
    return sorted((w for w in present if well_position(w)[1] == col), key=well_position)


def step_well(current: str | None, direction: str, present: Iterable[str]) -> str | None:
    """The well reached from ``current`` by a key: "next"/"prev" in reading order (wrapping rows),
    "up"/"down" to the nearest present well in the same column. Stays put at the plate's edge."""
    order = sorted(present, key=well_position)
    if not order:
        return None
    if current is None or current not in order:
        return order[0] if direction in ("next", "down") else order[-1]
    if direction in ("next", "prev"):
        i = order.index(current) + (1 if direction == "next" else -1)
        return order[min(max(i, 0), len(order) - 1)]
    row, col = well_position(current)
    same_col = [w for w in order if well_position(w)[1] == col]
    if direction == "down":
        below = [w for w in same_col if well_position(w)[0] > row]
        return below[0] if below else current
    above = [w for w in same_col if well_position(w)[0] < row]
    return above[-1] if above else current


def step_in_order(current, direction: str, order: list):
    """The item after ("next") or before ("prev") ``current`` in ``order`` (the suggested wells, best
    first); from an item not in it, the first ("next") or the last ("prev"). Stays put at either end."""
    if not order:
        return None
    if current not in order:
        return order[0] if direction == "next" else order[-1]
    i = order.index(current) + (1 if direction == "next" else -1)
    return order[min(max(i, 0), len(order) - 1)]
