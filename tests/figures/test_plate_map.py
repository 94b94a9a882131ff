"""Plate heat maps: every well where the plate has it, coloured by class or probability, empty
wells visibly empty, 96/384/1536 layouts, and atomic PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import to_rgb

from napari_dcmix.colors import CLASS_PALETTE
from napari_dcmix.errors import DcmixError
from napari_dcmix.figures.plate_map import plate_map_figure, plate_map_paths, save_plate_map
from napari_dcmix.plate.wells import FORMATS, PlateFormat, well_position

CLASSES = ["negative", "hit"]


def fmt(n: int) -> PlateFormat:
    return PlateFormat(n, *FORMATS[n])


def well_colour(fig, well: str) -> np.ndarray:
    """RGB (0..1) of the rendered pixel at a well's centre."""
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    ax = fig.axes[0]
    r, c = well_position(well)
    x, y = ax.transData.transform((c, r))
    return pixels[int(round(pixels.shape[0] - y)), int(round(x))]


@pytest.mark.parametrize("n", [96, 384, 1536])
def test_classes_are_coloured_and_missing_wells_empty(n):
    probs = {"A01": np.array([0.9, 0.1]), "B02": np.array([0.2, 0.8])}
    fig = plate_map_figure(probs, CLASSES, fmt(n), plate_id="P1", model_name="m.pt", dpi=60)
    np.testing.assert_allclose(well_colour(fig, "A01"), to_rgb(CLASS_PALETTE[0]), atol=0.02)
    np.testing.assert_allclose(well_colour(fig, "B02"), to_rgb(CLASS_PALETTE[1]), atol=0.02)
    np.testing.assert_allclose(well_colour(fig, "A02"), to_rgb("#f4f4f4"), atol=0.02)
    assert fig._suptitle.get_text() == "P1 · predicted class"
    assert "m.pt" in fig.axes[0].get_title(loc="left") and f"2 of {n} wells" in fig.axes[0].get_title(loc="left")
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == CLASSES  # the colour bar names classes


def test_probability_of_a_chosen_class():
    probs = {"C03": np.array([0.25, 0.75]), "D04": np.array([1.0, 0.0])}
    fig = plate_map_figure(probs, CLASSES, fmt(96), value="hit", plate_id="P1", dpi=60)
    viridis = colormaps["viridis"]
    np.testing.assert_allclose(well_colour(fig, "C03"), viridis(0.75)[:3], atol=0.03)
    np.testing.assert_allclose(well_colour(fig, "D04"), viridis(0.0)[:3], atol=0.03)
    assert fig.axes[1].get_ylabel() == "p(hit)"
    with pytest.raises(DcmixError, match="'mitotic' is not a class of the model"):
        plate_map_figure(probs, CLASSES, fmt(96), value="mitotic")


def test_png_is_written_atomically(tmp_path):
    from PIL import Image

    out = tmp_path / "map.png"
    save_plate_map(out, {"A01": np.array([0.5, 0.5])}, CLASSES, fmt(384), plate_id="P1", dpi=50)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > im.height
    assert [p.name for p in tmp_path.iterdir()] == ["map.png"]


def test_one_file_per_plate(tmp_path):
    assert plate_map_paths(tmp_path / "m.png", [""]) == [tmp_path / "m.png"]
    assert plate_map_paths(tmp_path / "m.png", ["HUVEC-01/Plate1", "HUVEC-01/Plate2"]) == [
        tmp_path / "m_HUVEC-01_Plate1.png", tmp_path / "m_HUVEC-01_Plate2.png"]
