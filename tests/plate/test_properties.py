"""Property-based tests (hypothesis): every spelling of a well id, every plate a built-in layout can
name, and every way Excel writes a labels table must come out the same; bad text only ever raises
PlateError. Bounded example counts and no deadline keep them quick on a loaded machine."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import SiteKey, build_index, read_labels
from napari_dcmix.plate.wells import normalize_well, row_letters, well_id, well_position

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

rows = st.integers(0, 31)     # A..AF: 1536-well plates
cols = st.integers(1, 48)


def spellings(row: int, col: int):
    letters = row_letters(row)
    return st.sampled_from([f"{letters}{col}", f"{letters}{col:02d}", f"{letters.lower()}{col:03d}",
                            f" {letters}{col:02d} ", f"r{row + 1}c{col}", f"R{row + 1:02d}C{col:02d}"])


@FAST
@given(rows.flatmap(lambda r: cols.flatmap(lambda c: st.tuples(st.just(r), st.just(c), spellings(r, c)))))
def test_every_spelling_of_a_well_is_one_id(case):
    row, col, text = case
    canonical = well_id(row, col)
    assert normalize_well(text) == canonical
    assert normalize_well(canonical) == canonical  # idempotent
    assert well_position(canonical) == (row, col - 1)


@FAST
@given(st.text(max_size=8))
def test_any_text_is_a_well_or_a_plate_error(text):
    try:
        well = normalize_well(text)
    except PlateError as err:
        assert "is not a well id" in str(err)
    else:
        assert well == normalize_well(well) and well_position(well)[1] >= 0


# --- layout detection from names alone ------------------------------------------------------------
def _names(layout: str, wells: list[str], sites: int, channels: int) -> list[str]:
    out = []
    for well in wells:
        row, col = well_position(well)
        for s in range(1, sites + 1):
            for c in range(1, channels + 1):
                if layout == "imagexpress":
                    out.append(f"Screen_2024_{well}_s{s}_w{c}A1B2C3D4-0000-1111.tif")
                elif layout == "operetta":
                    out.append(f"Images/r{row + 1:02d}c{col + 1:02d}f{s:02d}p01-ch{c}sk1fk1fl1.tiff")
                else:
                    out.append(f"HUVEC-07/Plate3/{well}_s{s}_w{c}.png")
    return out


plates = st.tuples(
    st.sampled_from(["imagexpress", "operetta", "rxrx1"]),
    st.lists(st.tuples(st.integers(0, 15), st.integers(1, 24)), min_size=1, max_size=6, unique=True),
    st.integers(1, 3), st.integers(1, 4))


@settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(plates)
def test_layout_detection_recovers_every_site(case):
    layout, cells, sites, channels = case
    wells = sorted({well_id(r, c) for r, c in cells})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in _names(layout, wells, sites, channels):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).touch()  # indexing reads names only
        index = build_index(root)
    assert index.layout == layout and index.problems == []
    plate = {"imagexpress": "Screen_2024", "operetta": "", "rxrx1": "HUVEC-07/Plate3"}[layout]
    assert set(index.sites) == {SiteKey(plate, w, s) for w in wells for s in range(1, sites + 1)}
    assert len(index.channels) == channels


# --- the labels join ---------------------------------------------------------------------------------
def _excel(rows_: list[tuple[str, str]], delimiter: str, style: str) -> bytes:
    lines = [f"well{delimiter}phenotype"] + [f"{w}{delimiter}{c}" for w, c in rows_]
    if style == "sep":
        lines.insert(0, f"sep={delimiter}")
    text = "\r\n".join(lines) + "\r\n"
    return {"utf-8": text.encode("utf-8"), "bom": text.encode("utf-8-sig"), "sep": text.encode("cp1252"),
            "utf-16": text.encode("utf-16")}[style]


labelled = st.lists(st.tuples(st.tuples(st.integers(0, 7), st.integers(1, 12)),
                              st.sampled_from(["dmso", "drug A", "Klasse-ä", ""])),
                    min_size=1, max_size=12, unique_by=lambda t: t[0])


@FAST
@given(labelled, st.sampled_from([",", ";", "\t"]), st.sampled_from(["utf-8", "bom", "sep", "utf-16"]),
       st.integers(0, 5), st.data())
def test_labels_join_is_exact_whatever_the_export(cells, delimiter, style, extra, data):
    truth = {well_id(r, c): label for (r, c), label in cells}
    sites = [SiteKey("", w, s) for w in truth for s in (1, 2)]
    rows_ = [(data.draw(spellings(well_position(w)[0], well_position(w)[1] + 1)).strip(), c) for w, c in truth.items()]
    unknown = [f"P{20 + i}" for i in range(extra)]  # wells the plate does not have
    rows_ += [(w, "dmso") for w in unknown]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.csv"
        path.write_bytes(_excel(rows_, delimiter, style))
        labels = read_labels(path, sites, "phenotype")
    assert labels.well_labels() == {("", w): c for w, c in truth.items() if c}
    assert all(labels.site_labels[SiteKey("", w, s)] == c for w, c in truth.items() if c for s in (1, 2))
    absent = [p for p in labels.problems if "wells not on the plate" in p]
    assert bool(absent) == bool(unknown)
    assert all(w in absent[0] for w in unknown)
