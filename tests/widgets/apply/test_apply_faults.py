"""The Apply dock when the plate's storage stops answering mid-predict (issue 22): the prediction stops,
the wells predicted so far stay in the grid, table and export, and one error notification says where
it stopped; the storage is never taken for damaged sites."""

from __future__ import annotations

from qtpy.QtCore import Qt

from napari_dcmix.errors import SourceUnavailable
from test_apply_dock import WAIT_MS, no_threads_left, notes, open_dock, setup  # noqa: F401 - fixtures


def test_a_storage_that_stops_answering_keeps_what_was_predicted(open_dock, qtbot, monkeypatch, notes):  # noqa: F811
    viewer, widget, session = open_dock()
    plate = session.plate
    plate.channel_stats()  # as the plate browser does when the plate opens: the server answered then
    real, order = plate.read_site, {key: i for i, key in enumerate(plate.sites)}

    def read_site(key):
        if order[key] >= 9:  # the 5th well's second site
            raise SourceUnavailable("HTTP 503 from the plate server after 5 tries")
        return real(key)

    monkeypatch.setattr(plate, "read_site", read_site)
    qtbot.mouseClick(widget.plate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.job is None, timeout=WAIT_MS)
    errors = [n for n in notes() if "stopped" in n]
    assert errors == [f"prediction stopped at {plate.sites[9].label()} (9 of {len(plate.sites)} sites predicted): "
                      "HTTP 503 from the plate server after 5 tries; the predictions shown so far are kept; "
                      "predict again when the server answers"]
    assert not [n for n in notes() if "could not be read and were skipped" in n]  # no site taken for damaged
    assert len(session.predictions) == 5 and widget.results.well_probs  # 4 complete wells, the 5th with 1 site
    assert list(plate.problems) == []
