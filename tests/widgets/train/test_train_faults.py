"""The Train dock when the plate's sites go away mid-run (issue 22): the run stops, one error notification
says why, and the best model so far is kept as if Stop had been clicked (published, savable)."""

from __future__ import annotations

import pytest
from qtpy.QtCore import Qt

from dcmix_dock_helpers import errors_since, fast_settings, publish_signal_plate
from napari.utils.notifications import notification_manager
from napari_dcmix.errors import SourceUnavailable
from napari_dcmix.training import TrainedModel
from test_train_dock import TIMEOUT_MS, dock  # noqa: F401 - the fixture


@pytest.mark.parametrize("fault", ["sites deleted", "storage gone"])
def test_a_run_its_data_stops_keeps_the_best_model(dock, qtbot, tmp_path, monkeypatch, fault):  # noqa: F811
    viewer, widget = dock
    session, plate, _ = publish_signal_plate(viewer, tmp_path)
    fast_settings(widget, rounds=50)
    widget.form.set_values(probe_fraction=0.0)  # a checkpoint is chosen at the first evaluation
    damaged = []

    def on_update(update):
        trainer = widget._job.trainer
        if update.kind != "epoch" or damaged:
            return
        damaged.append(update.step)
        trainer.source.cache_bytes = 0  # as on a plate larger than memory: read from disk at every pass
        trainer.source._cache.clear()
        trainer.plate._cache.max_sites = 0
        trainer.plate._cache._items.clear()
        if fault == "sites deleted":
            for key in trainer.train_keys[:4]:  # 4 of 32 sites
                (plate.root / f"{key.well}_s{key.site}_ch1.tif").unlink()
        else:
            def read_site(key):
                raise SourceUnavailable("the plate server stopped answering")
            monkeypatch.setattr(plate, "read_site", read_site)

    start = len(notification_manager.records)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    widget.worker.yielded.connect(on_update)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    errors = errors_since(start)
    assert len(errors) == 1 and errors[0].startswith("training stopped "), errors
    assert ("4 of its 32 labelled sites" if fault == "sites deleted" else "storage stopped answering") in errors[0]
    model = session.model
    assert isinstance(model, TrainedModel) and model.metadata["cancelled"] is True
    assert model.metadata["best_step"] == damaged[0]
    assert "stopped: kept the best model so far" in widget.status_label.text()
    assert widget.save_button.isEnabled() and widget.save_model(tmp_path / "kept.pt")
    assert TrainedModel.load(tmp_path / "kept.pt").channels == model.channels
