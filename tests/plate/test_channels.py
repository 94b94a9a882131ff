"""Channel names: ImageXpress .HTD wavelength names, and the user's rename (w1=DNA,w2=ER) applied
when a plate opens, so every consumer sees the new names; malformed renames say how to fix them."""

from __future__ import annotations

import pytest
from conftest import write_imagexpress, write_ome_zarr_plate

from napari_dcmix.errors import PlateError
from napari_dcmix.plate import open_plate
from napari_dcmix.plate.channels import parse_channel_names, renamed_channels

HTD = '''"HTSInfoFile", Version 1.0
"Description", "Cell Painting"
"TimePoints", 1
"XWells", 12
"YWells", 8
"Sites", TRUE
"XSites", 2
"YSites", 1
"Waves", TRUE
"NWavelengths", 3
"WaveName1", "DAPI"
"WaveName2", "FITC"
"WaveName3", "Cy5"
"WaveCollect1", 1
"EndFile"
'''


def test_htd_wavelength_names(tmp_path):
    root = write_imagexpress(tmp_path / "ixm")
    (root / "Plate1.HTD").write_text(HTD, encoding="latin-1")
    assert open_plate(root).channels == ["DAPI", "FITC", "Cy5"]


def test_htd_missing_names_fall_back_to_wavelength_ids(tmp_path):
    root = write_imagexpress(tmp_path / "ixm")
    (root / "Plate1.htd").write_text(HTD.replace('"WaveName2", "FITC"\n', ""), encoding="latin-1")
    assert open_plate(root).channels == ["DAPI", "w2", "Cy5"]


def test_rename_by_name_by_id_and_after_htd(tmp_path):
    root = write_imagexpress(tmp_path / "ixm")
    assert open_plate(root, channel_names="w1=DNA, w3=Mito").channels == ["DNA", "w2", "Mito"]
    assert open_plate(root, channel_names={"2": "ER"}).channels == ["w1", "ER", "w3"]
    (root / "Plate1.HTD").write_text(HTD, encoding="latin-1")
    # the wavelength id still works once the .HTD named it, and so does the .HTD name
    assert open_plate(root, channel_names="w1=DNA,fitc=ER").channels == ["DNA", "ER", "Cy5"]


def test_rename_on_an_ome_zarr_plate(tmp_path):
    root = write_ome_zarr_plate(tmp_path / "p.zarr", "0.5", wells=("B02",), fields=1)
    plate = open_plate(root, channel_names="Mito=MitoTracker,C0=Hoechst")
    assert plate.channels == ["Hoechst", "ER", "MitoTracker"]
    assert plate.channel_colors == ["#0000ff", "#00ff00", "#ff00ff"]  # colours stay with their channel


@pytest.mark.parametrize("text, message", [
    ("w1:DNA", "has no '='; write it like w1=DNA,w2=ER"),
    ("w1=", "needs a name on both sides"),
    ("w1=DNA,w1=ER", "renamed twice"),
    ("w9=DNA", r"'w9' is not on this plate \(channels: w1, w2, w3\)"),
    ("w1=DNA,w2=DNA", "several channels are called DNA"),
    ("w1=DNA,1=Hoechst", "are the same channel"),
])
def test_bad_renames_say_what_to_do(imagexpress_plate, text, message):
    with pytest.raises(PlateError, match=message):
        open_plate(imagexpress_plate, channel_names=text)


def test_parse_and_ambiguity():
    assert parse_channel_names(" w1 = DNA ,, w2=ER ") == {"w1": "DNA", "w2": "ER"}
    assert parse_channel_names(None) == {}
    with pytest.raises(PlateError, match="ambiguous"):
        renamed_channels(["GFP", "gfp"], ["1", "2"], "Gfp=x")
