"""The condition table: the labels CSV's other columns per well, joined like the labels, and the
well filter (compound=DMSO, dose>=1, well_type!=treatment, name~sub) with messages that say how."""

from __future__ import annotations

import pytest
from conftest import write_imagexpress, write_rxrx1, write_rxrx1_metadata

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import open_plate
from napari_dcmix.plate.conditions import read_conditions, select_wells

CSV = """well,phenotype,compound,dose,well_type
B02,negative,DMSO,0,negative_control
B03,hit,taxol,1.5,treatment
C02,,taxol,10,treatment
C03,hit,Nocodazole,0.1,positive_control
H12,hit,taxol,1,treatment
"""


@pytest.fixture
def table(tmp_path):
    plate = open_plate(write_imagexpress(tmp_path / "ixm"))
    path = tmp_path / "conditions.csv"
    path.write_text(CSV)
    return plate, read_conditions(path, plate.sites, "phenotype")


def test_columns_beyond_the_label_per_well(table):
    plate, conditions = table
    assert conditions.columns == ["compound", "dose", "well_type"]
    wells = conditions.for_plate("Plate1")
    assert wells["C02"] == {"compound": "taxol", "dose": "10", "well_type": "treatment"}  # unlabeled: kept
    assert "H12" not in wells and "D02" not in wells  # not on the plate / not in the CSV


@pytest.mark.parametrize("expression, wells", [
    ("compound=taxol", ["B03", "C02"]),
    ("compound = TAXOL, dose>=2", ["C02"]),
    ("dose<1", ["B02", "C03"]),
    ("dose=0.0", ["B02"]),
    ("well_type!=treatment", ["B02", "C03"]),  # only wells the table lists
    ("well_type~control and dose>0", ["C03"]),
])
def test_select_wells(table, expression, wells):
    _, conditions = table
    assert select_wells(conditions, expression, "Plate1") == wells


@pytest.mark.parametrize("expression, message", [
    ("compound", "write column=value"),
    ("solvent=DMSO", r"'solvent' is not a column of the condition table \(compound, dose, well_type\)"),
    ("dose>high", "'high', which is not a number"),
    (" , ", "the filter is empty"),
])
def test_bad_filters_say_how(table, expression, message):
    _, conditions = table
    with pytest.raises(PlateError, match=message):
        select_wells(conditions, expression, "Plate1")


def test_rxrx1_conditions_stay_on_their_plate(tmp_path):
    root = write_rxrx1(tmp_path / "rxrx1", plates=(1, 2), wells=("B02", "B03"), sites=1, channels=6)
    meta = write_rxrx1_metadata(tmp_path / "metadata.csv", [
        ("HUVEC-01", 1, "B02", 1, "negative_control", "EMPTY"), ("HUVEC-01", 2, "B02", 1, "treatment", "sirna_7")])
    plate = open_plate(root)
    conditions = read_conditions(meta, plate.sites, "well_type")
    assert conditions.for_plate("HUVEC-01/Plate1")["B02"]["sirna"] == "EMPTY"
    assert conditions.for_plate("HUVEC-01/Plate2")["B02"]["sirna"] == "sirna_7"
    assert "well_type" not in conditions.columns and "cell_type" in conditions.columns
