"""Fixtures shared by the dock tests."""

import pytest

from napari_dcmix.widgets.plate_dock import PlateBrowserWidget


@pytest.fixture
def browser(make_napari_viewer, tmp_path, monkeypatch):
    """A factory for a shown viewer with the plate dock; HOME is a temporary folder (labels are
    saved there). A factory, because a fixture value holding the viewer would outlive napari's
    viewer teardown and count as a leaked viewer."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def make():
        viewer = make_napari_viewer(show=True)
        dock = PlateBrowserWidget(viewer)
        viewer.window.add_dock_widget(dock, name="Plate browser")
        return viewer, dock

    return make
