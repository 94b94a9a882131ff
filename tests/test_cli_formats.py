"""The CLI on the newer formats and options: OME-Zarr plates, .HTD channel names, --channel-names
end to end (train stores the new names, predict needs them), one-line errors."""

import csv
import json

import pytest
from conftest import SIGNAL_PATTERN, write_imagexpress, write_ome_zarr_plate, write_signal_plate

from napari_dcmix.cli import main
from napari_dcmix.training import TrainedModel


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_inspect_json_on_ome_zarr(tmp_path, capsys, version):
    root = write_ome_zarr_plate(tmp_path / "plate.zarr", version, wells=("B02", "B03", "H12"), fields=2)
    code, out, err = run(capsys, "inspect", root, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["layout"] == "ome-zarr" and info["wells"] == 3 and info["sites"] == 2
    assert info["sites_per_well"] == {"B02": 2, "B03": 2, "H12": 2}
    assert info["channels"] == ["DNA", "ER", "Mito"] and info["shape"] == [3, 16, 16]


def test_inspect_lists_htd_names_and_renames(tmp_path, capsys):
    root = write_imagexpress(tmp_path / "ixm")
    (root / "Plate1.HTD").write_text('"NWavelengths", 3\n"WaveName1", "DAPI"\n"WaveName2", "FITC"\n'
                                     '"WaveName3", "TexasRed"\n', encoding="latin-1")
    code, out, _ = run(capsys, "inspect", root)
    assert code == 0 and "channels: DAPI, FITC, TexasRed" in out
    code, out, _ = run(capsys, "inspect", root, "--channel-names", "w1=DNA,FITC=ER", "--json")
    assert json.loads(out)["channels"] == ["DNA", "ER", "TexasRed"]
    code, _, err = run(capsys, "inspect", root, "--channel-names", "w7=DNA")
    assert code == 2 and err.startswith("error: channel 'w7' is not on this plate") and len(err.splitlines()) == 1


def test_renamed_channels_are_what_the_model_stores(tmp_path, capsys):
    root, labels = write_signal_plate(tmp_path / "signal", signal_channel=2, wells_per_class=4)
    names = "ch0=DNA,ch1=ER,ch2=Mito"
    model = tmp_path / "model.pt"
    code, out, err = run(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--channel-names", names, "--labels",
                         labels, "--label-column", "phenotype", "--out", model, "--tile", 16, "--epochs", 1,
                         "--device", "cpu", "--json")
    assert code == 0, err
    assert json.loads(out)["channels"] == ["DNA", "ER", "Mito"]
    assert TrainedModel.load(model).channels == ["DNA", "ER", "Mito"]
    code, out, _ = run(capsys, "importance", model, "--json")
    assert list(json.loads(out)["importance"]) == ["DNA", "ER", "Mito"]

    preds = tmp_path / "pred.csv"
    code, _, err = run(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--channel-names", names,
                       "--out", preds)
    assert code == 0, err
    assert len(list(csv.DictReader(open(preds)))) == 8
    code, _, err = run(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--out", preds)
    assert code == 2 and err.startswith("error: ") and "DNA" in err  # the model's names are not on the plate
