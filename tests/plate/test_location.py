"""Where a plate lives (plate/location.py): a folder or a URL, its name, what lies inside it, and
where its outputs go by default."""

import pytest

from napari_dcmix.errors import PlateError
from napari_dcmix.plate.location import PlateLocation, is_url


def test_locations_name_folders_and_urls(tmp_path):
    folder = PlateLocation.of(tmp_path / "p.zarr")
    assert not folder.is_remote and folder.name == "p.zarr" and folder.stem == "p"
    assert folder.output_folder() == tmp_path and folder.contains(tmp_path / "p.zarr" / "x.csv")
    assert PlateLocation.of("file://" + str(tmp_path / "p.zarr")).same_as(folder)
    url = PlateLocation.of("https://uk1s3.embassy.ebi.ac.uk/idr/zarr/v0.4/idr0001A/2551.zarr/")
    assert url.is_remote and url.url.endswith("2551.zarr") and url.name == "2551.zarr" and url.stem == "2551"
    assert not url.contains(tmp_path) and url.same_as(url.url + "/")
    assert url.output_folder(cwd=tmp_path) == tmp_path / "2551-dcmix"
    assert PlateLocation.of("s3://bucket/screen.zarr").scheme == "s3"
    assert is_url("https://x/y.zarr") and not is_url(str(tmp_path)) and not is_url("C:\\plates\\p")
    with pytest.raises(PlateError, match="not ftp://"):
        PlateLocation.of("ftp://host/plate.zarr")
    with pytest.raises(PlateError, match="names no bucket"):
        PlateLocation.of("s3:///plate.zarr")
