"""Well ids in every spelling, row letters (A..Z, AA..AF) and plate formats inferred from wells."""

import pytest

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import PlateFormat, infer_format, normalize_well, well_id, well_position
from napari_dcmix.plate.wells import row_col_to_well, row_index, row_letters


@pytest.mark.parametrize("text", ["B2", "B02", "b02", "b2", " B02 ", "B002", "r02c02", "R2C2", "r2c02", "R002C002"])
def test_normalize_well_spellings(text):
    assert normalize_well(text) == "B02"


@pytest.mark.parametrize("text, expected", [
    ("A1", "A01"), ("P24", "P24"), ("p24", "P24"), ("AF48", "AF48"), ("aa1", "AA01"), ("Z10", "Z10"),
    ("r27c01", "AA01"), ("r32c48", "AF48"), ("H12", "H12"), ("A100", "A100"),
])
def test_normalize_well_values(text, expected):
    assert normalize_well(text) == expected


@pytest.mark.parametrize("text", ["", "B", "02", "B0", "B00", "r0c1", "r1c0", "ABC1", "B1234", "hello", "B-2", None])
def test_normalize_well_rejects(text):
    with pytest.raises(PlateError, match="is not a well id"):
        normalize_well(text)


def test_normalize_well_errors_are_not_cached_away():
    for _ in range(2):  # the lookup cache must not turn a second bad call into a silent success
        with pytest.raises(PlateError):
            normalize_well("B0")
    assert normalize_well("c3") == "C03"


@pytest.mark.parametrize("row, col, expected", [
    ("B", "02", "B02"), ("b", "2", "B02"), ("2", "2", "B02"), ("02", "02", "B02"), ("27", "1", "AA01"),
    ("AF", "48", "AF48"), (" C ", " 7 ", "C07"),
])
def test_row_col_to_well(row, col, expected):
    assert row_col_to_well(row, col) == expected


@pytest.mark.parametrize("row, col", [("0", "1"), ("B", "0"), ("B", "x"), ("B2", "1"), ("", "1"), ("B", "")])
def test_row_col_to_well_rejects(row, col):
    with pytest.raises(PlateError):
        row_col_to_well(row, col)


def test_row_letters_round_trip_1536():
    letters = [row_letters(r) for r in range(32)]
    assert letters[:26] == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert letters[26:] == ["AA", "AB", "AC", "AD", "AE", "AF"]
    assert [row_index(x) for x in letters] == list(range(32))
    assert row_index("af") == 31
    with pytest.raises(PlateError):
        row_letters(-1)


def test_well_id_and_position():
    assert well_id(0, 1) == "A01"
    assert well_id(26, 5) == "AA05"
    assert well_position("A01") == (0, 0)
    assert well_position("AF48") == (31, 47)
    assert well_position("B2") == (1, 1)
    with pytest.raises(PlateError):
        well_position("r02c02x")


@pytest.mark.parametrize("wells, n", [
    (["A01"], 96), (["B02", "H12"], 96), (["I01"], 384), (["A13"], 384), (["P24", "A01"], 384),
    (["Q01"], 1536), (["A25"], 1536), (["AA01"], 1536), (["AF48"], 1536), ([], 96),
])
def test_infer_format(wells, n):
    fmt = infer_format(wells)
    assert fmt.wells == n
    assert fmt == PlateFormat(n, {96: 8, 384: 16, 1536: 32}[n], {96: 12, 384: 24, 1536: 48}[n])


def test_infer_format_beyond_1536_grows_the_grid():
    fmt = infer_format(["AG01", "A50"])
    assert (fmt.rows, fmt.cols) == (33, 50)
    assert fmt.wells == 33 * 50


def test_plate_format_grid_1536():
    fmt = infer_format(["AF48"])
    rows = fmt.row_names()
    assert len(rows) == 32 and rows[-6:] == ["AA", "AB", "AC", "AD", "AE", "AF"]
    wells = fmt.all_wells()
    assert len(wells) == 1536 and wells[0] == "A01" and wells[-1] == "AF48"
    assert len(set(wells)) == 1536
    assert infer_format(["H12"]).all_wells()[:13] == [f"A{c:02d}" for c in range(1, 13)] + ["B01"]
