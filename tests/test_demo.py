"""The demo's viewer: four docks, the plate open in the browser and shared with the other docks."""

from napari_dcmix.demo import DOCKS, open_viewer
from napari_dcmix.widgets.session import get_session


def test_demo_opens_the_plate_with_all_docks(make_napari_viewer, imagexpress_plate, qtbot):
    viewer = make_napari_viewer()
    viewer, docks = open_viewer(str(imagexpress_plate), viewer=viewer)
    assert set(docks) == set(DOCKS)
    session = get_session(viewer)
    assert session.plate is not None and session.plate.root == imagexpress_plate
    assert [layer.name for layer in viewer.layers][:3] == ["w1", "w2", "w3"]
    browser = docks["Plate browser"]
    qtbot.waitUntil(lambda: not browser.busy(), timeout=20000)
    browser.stop_workers()
    del docks, browser, session  # napari's leak check runs after the test
