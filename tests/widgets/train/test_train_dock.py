"""Train dock: training through its own buttons, live α, Stop, fine-tuning, saving, errors, lifecycle."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from napari.utils import progress
from qtpy.QtCore import Qt

from dcmix_dock_helpers import errors_since, fast_settings, no_threads_left, publish_signal_plate
from napari.utils.notifications import notification_manager
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import ChannelStats
from napari_dcmix.errors import DcmixError
from napari_dcmix.training import TrainConfig, TrainedModel, Trainer
from napari_dcmix.widgets.session import TRAIN_RUN
from napari_dcmix.widgets.session import get_session
from napari_dcmix.widgets.train.dock import TrainWidget

TIMEOUT_MS = 60_000


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    yield viewer, widget
    widget.shutdown()
    assert no_threads_left()


def click_start_and_wait(qtbot, widget, timeout=TIMEOUT_MS):
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.worker is not None, "Start did not start a worker"
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def fake_model(channels, kind="dcmix") -> TrainedModel:
    """A tiny untrained model with the given channels (fine-tune and mismatch tests)."""
    net = ChannelClassifier(kind, len(channels), 2, "small").eval()
    stats = ChannelStats(list(channels), np.full(len(channels), 900.0), np.full(len(channels), 1100.0))
    return TrainedModel(net, list(channels), ["negative", "positive"], stats, 16, {})


def test_train_through_buttons_publishes_model_live_alpha_and_saves(dock, qtbot, tmp_path):
    viewer, widget = dock
    session, plate, _ = publish_signal_plate(viewer, tmp_path)
    assert "negative (8 wells)" in widget.labels_label.text() and "positive (8 wells)" in widget.labels_label.text()
    assert widget.device_label.text() == "auto → cpu"  # no GPU on the test machine
    fast_settings(widget, rounds=2)
    assert widget.device_label.text() == "cpu → cpu"
    payloads, models, training = [], [], []
    session.events.importance.connect(payloads.append)
    session.events.model.connect(models.append)
    session.events.running.connect(training.append)
    start = len(notification_manager.records)

    progress_seen = []
    session.events.importance.connect(lambda _p: progress_seen.append(
        (not widget.progress_bar.isHidden(), widget.progress_bar.value())))
    click_start_and_wait(qtbot, widget)

    assert errors_since(start) == []
    assert all(shown for shown, _ in progress_seen[:-1]) and progress_seen[-2][1] > 0  # the dock's own bar moves…
    assert widget.progress_bar.isHidden()  # …and goes when the run ends
    assert not progress._all_instances  # no napari progress (its spinner costs a core under software GL)
    live = [p for p in payloads if p is not None and not p.final]
    assert [p.epoch for p in live] == [0, 1, 2]  # start + every epoch
    assert all(p.alpha.shape == (1, 3) and p.verdict is None for p in live)  # never judged while training
    assert len(live[-1].history) == 2
    assert training == [TRAIN_RUN, None]
    trained = session.model
    assert isinstance(trained, TrainedModel) and models[-1] is trained and trained.channels == plate.channels
    final = payloads[-1]
    assert final.final and final.importance == pytest.approx(trained.importance()) and final.verdict
    assert widget.save_button.isEnabled() and widget.start_button.isEnabled() and not widget.stop_button.isEnabled()
    assert widget.job is None and widget.jobs.running == []  # progress bar closed with its job
    assert len(widget.curves.step_loss) > 0 and widget.curves.epochs == [1, 2]
    assert widget.loss_ax.lines and widget.acc_ax.lines  # curves drawn in the dock
    assert "done" in widget.status_label.text()
    verdict = widget.verdict_label.text()  # the held-out test accuracy and the gate, beside α
    assert not widget.verdict_label.isHidden() and f"{100 * trained.metadata['test_accuracy']:.0f}%" in verdict
    assert ("NOT LEARNED" in verdict) == (trained.learned is False) and "α ch" in verdict

    path = tmp_path / "models" / "m.pt"
    path.parent.mkdir()
    assert widget.save_model(path)
    loaded = TrainedModel.load(path)
    assert loaded.channels == trained.channels
    np.testing.assert_allclose(loaded.model.importance(), trained.model.importance())
    start = len(notification_manager.records)
    assert not widget.save_model(plate.root / "inside.pt")
    assert any("inside the plate folder" in m for m in errors_since(start))
    assert not (plate.root / "inside.pt").exists()


def test_stop_mid_epoch_keeps_best_model(dock, qtbot, tmp_path):
    viewer, widget = dock
    session, _, _ = publish_signal_plate(viewer, tmp_path)
    fast_settings(widget, rounds=200)
    stepped, locked = [], []

    def on_update(update):
        if update.kind == "step" and not stepped:
            stepped.append(update.step)
            locked.append((widget.form.enabled, widget.form["steps"].enabled, widget.form["patience"].enabled))
            qtbot.mouseClick(widget.stop_button, Qt.MouseButton.LeftButton)

    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    widget.worker.yielded.connect(on_update)
    worker = widget.worker
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)

    assert stepped and not worker.is_running
    assert locked == [(False, False, False)]  # every field, basic and advanced, is locked while training
    assert widget.form.enabled and widget.form["patience"].enabled
    trained = session.model
    assert isinstance(trained, TrainedModel)
    assert trained.metadata["cancelled"] is True
    assert len(trained.metadata["history"]) < 200
    assert sum(trained.importance().values()) == pytest.approx(1.0)
    assert "stopped" in widget.status_label.text()
    assert widget.save_button.isEnabled() and widget.start_button.isEnabled()


def test_the_form_is_the_config(dock):
    viewer, widget = dock
    session = get_session(viewer)
    session.set_labels({}, "phenotype")
    assert widget.config() == replace(TrainConfig(), label_column="phenotype")  # the CLI's defaults
    form = widget.form
    form["model"].value = "se-attention"
    form["tile"].value = 32
    form["lr"].value = 0.0012
    form["device"].value = "cpu"
    form["eval_every"].value = 7  # an advanced field, in the collapsed section
    form["normalization"].value = "model"
    widget.base_config = TrainConfig(coverage=2.0)  # what the form does not set stays
    config = widget.config()
    assert (config.model, config.tile, config.lr, config.device) == ("se-attention", 32, pytest.approx(0.0012), "cpu")
    assert (config.eval_every, config.normalization, config.coverage) == (7, "model", 2.0)
    assert widget.device_label.text() == "cpu → cpu"
    assert not form.collapsible.isExpanded() and form["tile"].min == 16  # bounds from the spec
    form.load(TrainConfig())
    assert widget.config() == replace(TrainConfig(coverage=2.0), label_column="phenotype")


def test_errors_are_notifications_and_dock_stays_usable(dock, qtbot, tmp_path, monkeypatch):
    viewer, widget = dock
    start = len(notification_manager.records)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.worker is None and any("no plate is open" in m for m in errors_since(start))

    session, plate, labels = publish_signal_plate(viewer, tmp_path)
    one_class = {k: v for k, v in labels.items() if v == "positive"}
    session.set_labels(one_class)
    assert "only one class" in widget.warning_label.text()
    start = len(notification_manager.records)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.worker is None and any("only one class" in m for m in errors_since(start))

    few = dict(list(one_class.items())[:2]) | {k: v for k, v in labels.items() if v == "negative"}
    session.set_labels(few)
    assert "positive: only 2 wells" in widget.warning_label.text()

    session.set_labels({})
    start = len(notification_manager.records)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    assert widget.worker is None and any("no wells are labeled" in m for m in errors_since(start))
    assert widget.start_button.isEnabled()

    # errors raised in the worker (a DcmixError, or a torch RuntimeError that superqt would swallow)
    session.set_labels(labels)
    fast_settings(widget, rounds=1)
    for error in (DcmixError("the plate statistics could not be read; check the files"),
                  RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")):
        def broken(self, *args, _error=error, **kwargs):
            raise _error

        monkeypatch.setattr(Trainer, "__init__", broken)
        start = len(notification_manager.records)
        click_start_and_wait(qtbot, widget)
        messages = errors_since(start)
        assert any("statistics could not be read" in m or "smaller batch size" in m for m in messages), messages
        assert widget.start_button.isEnabled() and session.model is None and not session.training


def test_fine_tune_channel_mismatch_is_a_notification(dock, qtbot, tmp_path):
    viewer, widget = dock
    session, _, _ = publish_signal_plate(viewer, tmp_path)
    path = tmp_path / "other.pt"
    fake_model(["ch0", "ch1", "ch2", "Mito"]).save(path)
    start = len(notification_manager.records)
    widget.load_init_model(path)
    qtbot.waitUntil(lambda: not widget.files.loading, timeout=TIMEOUT_MS)
    messages = errors_since(start)
    assert any("Mito" in m and "missing" in m for m in messages), messages
    assert widget.init_model is None and session.model is None
    assert widget.files.init_label.text() == "from scratch"

    start = len(notification_manager.records)
    widget.load_init_model(tmp_path / "nothing.pt")
    qtbot.waitUntil(lambda: not widget.files.loading, timeout=TIMEOUT_MS)
    assert any("does not exist" in m for m in errors_since(start))
    assert widget.init_model is None and widget.start_button.isEnabled()


def test_fine_tune_continues_from_a_model(dock, qtbot, tmp_path):
    viewer, widget = dock
    session, plate, _ = publish_signal_plate(viewer, tmp_path)
    path = tmp_path / "init.pt"
    init = fake_model(["CH2", "ch0", "ch1"], kind="se-attention")  # other order and case: matched by name
    init.save(path)
    widget.load_init_model(path)
    qtbot.waitUntil(lambda: not widget.files.loading, timeout=TIMEOUT_MS)
    assert widget.init_model is not None and "init.pt" in widget.files.init_label.text()
    assert session.model is widget.init_model
    fast_settings(widget, rounds=1, model="dcmix")  # the model kind comes from the checkpoint
    start = len(notification_manager.records)
    click_start_and_wait(qtbot, widget)
    assert errors_since(start) == []
    assert session.model.kind == "se-attention" and session.model.channels == ["CH2", "ch0", "ch1"]
    widget.clear_init_model()
    assert widget.init_model is None and widget.files.init_label.text() == "from scratch"


def test_closing_the_dock_mid_training_stops_the_worker(dock, qtbot, tmp_path):
    viewer, widget = dock
    session, _, _ = publish_signal_plate(viewer, tmp_path)
    fast_settings(widget, rounds=500)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    worker = widget.worker
    qtbot.waitUntil(lambda: len(widget.curves.step_loss) > 0, timeout=TIMEOUT_MS)
    viewer.window.remove_dock_widget(widget)
    assert worker.thread_done.is_set()  # closing waited for the generator to close
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert not worker.is_running and no_threads_left()
    assert isinstance(session.model, TrainedModel) and not session.training


def test_closing_napari_mid_training_stops_the_worker(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    publish_signal_plate(viewer, tmp_path)
    fast_settings(widget, rounds=500)
    qtbot.mouseClick(widget.start_button, Qt.MouseButton.LeftButton)
    worker = widget.worker
    qtbot.waitUntil(lambda: len(widget.curves.step_loss) > 0, timeout=TIMEOUT_MS)
    viewer.close()
    qtbot.waitUntil(worker.thread_done.is_set, timeout=TIMEOUT_MS)
    assert no_threads_left()


def test_docks_from_the_plugins_menu_share_the_session(make_napari_viewer, qtbot, tmp_path, recwarn):
    """napari builds the docks from napari.yaml with a PublicOnlyProxy viewer: no private access warnings."""
    viewer = make_napari_viewer()
    _, train = viewer.window.add_plugin_dock_widget("napari-dcmix", "Train")
    _, importance = viewer.window.add_plugin_dock_widget("napari-dcmix", "Channel importance")
    assert isinstance(train, TrainWidget) and train.session is importance.session
    session, plate, _ = publish_signal_plate(viewer, tmp_path)
    fast_settings(train, rounds=1)
    click_start_and_wait(qtbot, train)
    qtbot.wait(100)
    assert session.model is not None and importance.bar_heights()
    assert [layer.name for layer in viewer.layers] == ["DCMIX composite"]
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning) and "Private attribute" in str(w.message)]
    train.shutdown()
    assert no_threads_left()


def test_stop_before_the_first_step_publishes_no_model(dock, qtbot, tmp_path):
    """Stop while the plate is still being read: no untrained model becomes the session's answer."""
    viewer, widget = dock
    session, _, _ = publish_signal_plate(viewer, tmp_path)
    fast_settings(widget, rounds=500)
    widget.start()
    widget.stop()  # at once: before the first optimiser step
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert session.model is None and widget.trained is None and not session.training
    assert "no model" in widget.status_label.text() and widget.start_button.isEnabled()
