"""Where the docks propose to save: never inside the plate folder, never over the file read."""

from pathlib import Path

from napari_dcmix._io import default_export_path, default_labels_path, default_model_path, is_inside


def test_default_labels_path_is_never_inside_the_plate(tmp_path):
    plate = tmp_path / "data" / "plate7"
    (plate / "images").mkdir(parents=True)
    home = tmp_path / "home"
    assert default_labels_path(plate, None, home) == home / "napari-dcmix" / "plate7_labels.csv"
    inside = plate / "labels.csv"  # e.g. the sample plate ships its labels inside the folder
    assert default_labels_path(plate, inside, home) == home / "napari-dcmix" / "plate7_labels.csv"
    beside = tmp_path / "data" / "my_labels.csv"
    assert default_labels_path(plate, beside, home) == tmp_path / "data" / "plate7_labels.csv"
    same = tmp_path / "data" / "plate7_labels.csv"  # never overwrite the CSV the labels came from
    assert default_labels_path(plate, same, home) == tmp_path / "data" / "plate7_labels_edited.csv"


def test_labels_path_helper_accepts_strings(tmp_path):
    assert isinstance(default_labels_path(str(tmp_path / "p"), None, tmp_path), Path)



def test_model_and_export_paths_stay_outside_the_plate(tmp_path):
    plate_root = tmp_path / "plate"
    plate_root.mkdir()
    assert not is_inside(default_model_path(plate_root, "dcmix", plate_root), plate_root)  # last folder inside
    assert default_model_path(plate_root, "dcmix", tmp_path) == tmp_path / "plate_dcmix.pt"
    assert default_export_path(plate_root, "{plate}_predictions.csv") == tmp_path / "plate_predictions.csv"
    assert default_export_path(None, "channel_importance.png") == Path.home() / "channel_importance.png"


def test_a_plate_at_a_url_saves_into_its_local_output_folder(tmp_path, monkeypatch):
    from napari_dcmix.plate.location import PlateLocation

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    url = PlateLocation.of("https://uk1s3.embassy.ebi.ac.uk/idr/zarr/v0.4/idr0001A/2551.zarr")
    folder = work / "2551-dcmix"
    assert default_export_path(url, "{plate}_matrix.png") == folder / "2551.zarr_matrix.png"
    assert folder.is_dir()  # created when first proposed, so the save dialog opens there
    assert default_labels_path(url, None, tmp_path / "home") == folder / "2551.zarr_labels.csv"
    beside = tmp_path / "mine" / "labels.csv"
    assert default_labels_path(url, beside) == tmp_path / "mine" / "2551.zarr_labels.csv"  # the CSV's folder wins
    assert default_model_path(url, "dcmix") == folder / "2551.zarr_dcmix.pt"
    assert default_model_path(url, "dcmix", tmp_path) == tmp_path / "2551.zarr_dcmix.pt"  # the last folder wins
    gone = tmp_path / "gone"  # a working folder that is no folder one can write to: the home folder
    assert url.output_folder(cwd=gone, home=tmp_path / "home") == tmp_path / "home" / "2551-dcmix"
