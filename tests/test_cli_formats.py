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
    rows = labels.read_text().splitlines()
    labels.write_text("\n".join([rows[0] + ",compound"] + [f"{r},cmpd{i % 2}" for i, r in enumerate(rows[1:])]))
    names = "ch0=DNA,ch1=ER,ch2=Mito"
    model = tmp_path / "model.pt"
    code, out, err = run(capsys, "train", root, "--pattern", SIGNAL_PATTERN, "--channel-names", names, "--labels",
                         labels, "--label-column", "phenotype", "--out", model, "--tile", 16, "--epochs", 1,
                         "--device", "cpu", "--json")
    assert code == 0, err
    assert json.loads(out)["channels"] == ["DNA", "ER", "Mito"]
    trained = TrainedModel.load(model)
    assert trained.channels == ["DNA", "ER", "Mito"]
    conditions = trained.metadata["conditions"]  # the labels CSV's other columns travel with the model
    assert conditions["columns"] == ["compound"] and conditions["wells"]["B02"] == {"compound": "cmpd0"}
    code, out, _ = run(capsys, "importance", model, "--json")
    assert list(json.loads(out)["importance"]) == ["DNA", "ER", "Mito"]

    preds = tmp_path / "pred.csv"
    code, _, err = run(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--channel-names", names,
                       "--out", preds)
    assert code == 0, err
    assert len(list(csv.DictReader(open(preds)))) == 8
    code, _, err = run(capsys, "predict", model, root, "--pattern", SIGNAL_PATTERN, "--out", preds)
    assert code == 2 and err.startswith("error: ") and "--channel-names ch0=DNA,ch1=ER,ch2=Mito" in err


@pytest.fixture(scope="module")
def trained_zarr(tmp_path_factory):
    """A tiny model trained through the CLI on an OME-Zarr plate: (plate, labels, model)."""
    from conftest import write_zarr_signal_plate

    folder = tmp_path_factory.mktemp("zarr_cli")
    root, labels = write_zarr_signal_plate(folder / "signal.zarr", "0.5", size=48)
    model = folder / "model.pt"
    assert main([str(a) for a in ("train", root, "--labels", labels, "--label-column", "phenotype", "--out", model,
                                  "--tile", 16, "--epochs", 4, "--device", "cpu")]) == 0
    return root, labels, model


def test_predict_pycytominer_format(trained_zarr, tmp_path, capsys):
    root, _, model = trained_zarr
    out = tmp_path / "profiles.csv"
    code, _, err = run(capsys, "predict", model, root, "--out", out, "--format", "pycytominer")
    assert code == 0, err
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_DCMIX_Prediction",
                             "Metadata_DCMIX_Confidence", "DCMIX_p_negative", "DCMIX_p_positive"]
    assert len(rows) == 24 and {r["Metadata_Plate"] for r in rows} == {"ZPlate"}  # the plate's own name
    assert [(r["Metadata_Well"], r["Metadata_Site"]) for r in rows[:3]] == [("B02", "1"), ("B02", "2"), ("B03", "1")]
    for r in rows:
        assert float(r["DCMIX_p_negative"]) + float(r["DCMIX_p_positive"]) == pytest.approx(1.0, abs=1e-5)
    code, _, err = run(capsys, "predict", model, root, "--out", out)  # the default CSV is unchanged
    assert list(csv.DictReader(open(out)))[0].keys() == {"well", "prediction", "confidence", "p_negative",
                                                         "p_positive"}


def test_predict_plate_map_and_montage(trained_zarr, tmp_path, capsys):
    from PIL import Image

    root, _, model = trained_zarr
    code, out, err = run(capsys, "predict", model, root, "--out", tmp_path / "p.csv", "--plate-map",
                         tmp_path / "map.png", "--plate-map-value", "positive", "--montage", tmp_path / "top.png",
                         "--montage-k", 3, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["plate_map"] == [str(tmp_path / "map.png")] and payload["montage"] == str(tmp_path / "top.png")
    with Image.open(tmp_path / "map.png") as im:
        assert im.format == "PNG" and im.width > 1000
    with Image.open(tmp_path / "top.png") as im:
        assert im.format == "PNG" and im.height > 2 * 128  # two class rows of 128 px tiles
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave nothing


@pytest.mark.parametrize("extra, message", [
    (["--plate-map", "{root}/map.png"], "inside the plate folder"),
    (["--plate-map", "{tmp}/map.pdf"], "ending in .png"),
    (["--plate-map", "{tmp}/map.png", "--plate-map-value", "mitotic"], "'mitotic' is not a class of the model"),
    (["--montage", "{tmp}/top.png", "--montage-k", "0"], "--montage-k 0 is out of range"),
])
def test_figure_options_fail_early_with_a_fix(trained_zarr, tmp_path, capsys, extra, message):
    root, _, model = trained_zarr
    extra = [e.format(root=root, tmp=tmp_path) for e in extra]
    code, _, err = run(capsys, "predict", model, root, "--out", tmp_path / "p.csv", *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
