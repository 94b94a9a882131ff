"""The npe2 reader and sample data: plates open as one additive layer per channel; others return None."""

import numpy as np

from napari_dcmix._layers import META_KEY
from napari_dcmix._reader import get_reader
from napari_dcmix.plate import open_plate


def test_reader_returns_one_layer_per_channel(imagexpress_plate):
    reader = get_reader(str(imagexpress_plate))
    assert callable(reader)
    layers = reader(str(imagexpress_plate))
    plate = open_plate(imagexpress_plate)
    first = plate.read_site(plate.sites[0])
    assert [kw["name"] for _, kw, _ in layers] == ["w1", "w2", "w3"]
    for i, (data, kwargs, kind) in enumerate(layers):
        assert kind == "image" and kwargs["blending"] == "additive"
        np.testing.assert_array_equal(data, first[i])
        assert kwargs["metadata"][META_KEY]["plate"] == str(imagexpress_plate)
        low, high = kwargs["contrast_limits"]
        assert low < high


def test_reader_declines_what_it_cannot_parse(tmp_path):
    assert get_reader(str(tmp_path)) is None  # empty folder
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "scan.tif").write_bytes(b"not a tiff")
    assert get_reader(str(tmp_path)) is None  # no layout
    assert get_reader(str(tmp_path / "notes.txt")) is None  # a file
    assert get_reader([str(tmp_path), str(tmp_path)]) is None


def test_viewer_opens_a_plate_folder(make_napari_viewer, imagexpress_plate):
    viewer = make_napari_viewer()
    viewer.open(str(imagexpress_plate), plugin="napari-dcmix")
    assert [layer.name for layer in viewer.layers] == ["w1", "w2", "w3"]
    assert all(layer.blending == "additive" for layer in viewer.layers)


def test_sample_data_writes_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    import napari_dcmix.plate.sample as sample

    monkeypatch.setattr(sample, "sample_plate_dir",
                        lambda **kw: sample.write_sample_plate(tmp_path / "napari-dcmix" / "plate", wells=96, sites=1, size=48))
    from napari_dcmix._sample_data import sample_plate

    layers = sample_plate()
    assert [kw["name"] for _, kw, _ in layers] == ["DNA", "ER", "RNA", "AGP", "Mito"]
    assert all(data.shape == (48, 48) and data.dtype == np.uint16 for data, _, _ in layers)
    assert (tmp_path / "napari-dcmix" / "plate" / "ground_truth.json").exists()


def test_get_reader_looks_at_names_only(imagexpress_plate, monkeypatch):
    import napari_dcmix.plate.index as index

    def no_index(*args, **kwargs):
        raise AssertionError("get_reader must not index the folder")

    monkeypatch.setattr(index, "build_index", no_index)
    assert callable(get_reader(str(imagexpress_plate)))  # the work is deferred to the returned function


def test_reader_hands_its_plate_over_once(imagexpress_plate, tmp_path):
    from conftest import write_imagexpress

    from napari_dcmix._reader import read_plate, take_opened_plate

    layers = read_plate(str(imagexpress_plate))
    plate = take_opened_plate(imagexpress_plate / ".." / imagexpress_plate.name)  # any spelling of the folder
    assert plate is not None and plate.root == imagexpress_plate
    np.testing.assert_array_equal(layers[0][0], plate.read_site(plate.sites[0])[0])
    assert take_opened_plate(imagexpress_plate) is None  # forgotten once taken
    read_plate(str(imagexpress_plate))
    assert take_opened_plate(imagexpress_plate, pattern=r"(?P<well>\w+)") is None  # another pattern: not this index
    other = write_imagexpress(tmp_path / "other")
    read_plate(str(other))  # only the latest is kept
    assert take_opened_plate(imagexpress_plate) is None and take_opened_plate(other).root == other


def test_reader_opens_ome_zarr_plates(zarr_plate):
    reader = get_reader(str(zarr_plate))
    assert callable(reader)
    assert [kw["name"] for _, kw, _ in reader(str(zarr_plate))] == ["DNA", "ER", "Mito"]
    assert [kw["colormap"] for _, kw, _ in reader(str(zarr_plate))] == ["#0000ff", "#00ff00", "#ff00ff"]


def test_reader_errors_are_notifications_not_no_reader(make_napari_viewer, tmp_path):
    from napari.utils.notifications import NotificationSeverity, notification_manager

    for name in ("Plate1_B02_w1.tif", "Plate1_B02_w2.tif"):
        (tmp_path / name).write_bytes(b"II*\x00 damaged")  # named like a plate, unreadable
    assert callable(get_reader(str(tmp_path)))
    viewer = make_napari_viewer()
    start = len(notification_manager.records)
    viewer.open(str(tmp_path), plugin="napari-dcmix")
    assert len(viewer.layers) == 0
    errors = [str(n.message) for n in notification_manager.records[start:] if n.severity == NotificationSeverity.ERROR]
    assert errors and "could be read; the files may be corrupt" in errors[-1] and "napari-dcmix could not open" in errors[-1]
