"""The one job helper of the docks: failures are reported, cancelling closes the generator in its own
thread, nothing outlives the interpreter, and a finished job keeps nothing alive."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest
from qtpy.QtCore import QObject

from napari_dcmix.errors import DcmixError
from napari_dcmix.widgets.jobs import Job, JobSet, WorkerFailure, stop_every_job, user_message

ROOT = Path(__file__).resolve().parents[2]


def test_runtime_error_is_reported_and_the_job_finishes(qtbot):
    errors, finished = [], []

    def failing():
        yield 1
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

    job = Job(failing, on_error=errors.append, on_finish=lambda: finished.append(True))
    qtbot.waitUntil(lambda: not job.running, timeout=5000)
    assert finished == [True] and isinstance(job.failed, WorkerFailure)
    assert [type(e) for e in errors] == [WorkerFailure]
    assert user_message(errors[0]).startswith("not enough memory")


def test_plain_functions_and_errors_of_the_product(qtbot):
    results, errors = [], []
    Job(lambda a, b: a + b, 2, 3, on_return=results.append)
    job = Job(lambda: (_ for _ in ()).throw(DcmixError("choose a plate folder")), on_error=errors.append)
    qtbot.waitUntil(lambda: bool(results) and not job.running, timeout=5000)
    assert results == [5] and user_message(errors[0]) == "choose a plate folder"


def test_cancel_closes_the_generator_in_its_thread(qtbot):
    closed_in, steps = [], []

    def endless():
        try:
            while True:
                steps.append(1)
                yield len(steps)
                time.sleep(0.005)
        finally:
            closed_in.append(threading.current_thread() is threading.main_thread())

    jobs = JobSet()
    job = jobs.run(endless)
    qtbot.waitUntil(lambda: len(steps) > 3, timeout=5000)
    assert jobs.stop_all() and job.cancelled and job.thread_done
    assert closed_in == [False]  # the job's finally ran, in the worker thread


def test_stop_every_job_ends_running_jobs_without_an_event_loop():
    started = threading.Event()

    def endless():
        started.set()
        while True:
            yield
            time.sleep(0.005)

    job = Job(endless)
    assert started.wait(5)
    assert stop_every_job(timeout_s=5) and job.thread_done


def test_a_finished_job_does_not_keep_its_owner_alive(qtbot):
    class Owner(QObject):
        def done(self):
            self.seen = True

    owner = Owner()
    jobs = JobSet()
    owner.jobs = jobs
    job = jobs.run(lambda: 1, on_finish=owner.done)
    qtbot.waitUntil(lambda: not job.running, timeout=5000)
    assert owner.seen
    ref = weakref.ref(owner)
    del owner
    gc.collect()
    assert ref() is None


EXIT_SCRIPT = r'''
import sys, time
sys.path.insert(0, {tests!r})
import napari
from qtpy.QtWidgets import QApplication
from conftest import SIGNAL_PATTERN, write_signal_plate
from napari_dcmix.widgets.apply.dock import ApplyWidget
from napari_dcmix.widgets.importance.dock import ImportanceWidget
from napari_dcmix.widgets.plate_browser.dock import PlateBrowserWidget
from napari_dcmix.widgets.train.dock import TrainWidget

plate_dir, labels_csv = write_signal_plate(__import__("pathlib").Path({tmp!r}), signal_channel=1, channels=3,
                                           wells_per_class=24)
viewer = napari.Viewer(show=False)
docks = [PlateBrowserWidget(viewer), TrainWidget(viewer), ImportanceWidget(viewer), ApplyWidget(viewer)]
for dock in docks:
    viewer.window.add_dock_widget(dock)
browser, train, importance, apply = docks
app = QApplication.instance()
mode = {mode!r}
if mode == "thumbnails":  # slow reads: the sweep is still going when Python exits
    from napari_dcmix.plate import Plate
    real_read = Plate.read_preview
    def slow_read(*args, **kwargs):
        time.sleep(0.2)
        return real_read(*args, **kwargs)
    Plate.read_preview = slow_read
browser.open_plate(str(plate_dir), pattern=SIGNAL_PATTERN, labels_csv=str(labels_csv), column="phenotype")
if mode == "train":
    train.form["steps"].value = 100000
    train.form["tile"].value = 16  # the test plate's sites are 32 px: the default 64 px tile is refused
    train.start()
    running = lambda: train.is_training
elif mode == "predict":
    from napari_dcmix.training import TrainConfig, Trainer
    apply.session.set_model(Trainer(browser.plate, dict(apply.session.labels),
                                    TrainConfig(tile=16, batch_size=16, steps=5, device="cpu")).fit())
    import napari_dcmix.training.predictor as apply_logic
    real = apply_logic.predict_sites
    def slow(*args, **kwargs):
        for pred in real(*args, **kwargs):
            time.sleep(0.2)
            yield pred
    apply_logic.predict_sites = slow
    apply.predict_plate()
    running = lambda: apply.job is not None
else:
    browser.set_thumbnails(True)
    running = lambda: browser.thumbnails_running
deadline = time.time() + 60
while time.time() < deadline and not running():
    app.processEvents(); time.sleep(0.01)
for _ in range(20):
    app.processEvents(); time.sleep(0.02)
print("RUNNING" if running() else "IDLE", flush=True)
'''


@pytest.mark.parametrize("mode", ["train", "predict", "thumbnails"])
def test_exiting_python_with_docks_open_and_work_running(tmp_path, mode):
    """A script (or notebook) that ends without closing the viewer: exit code 0, no abort, no Qt warning."""
    script = tmp_path / "script.py"
    script.write_text(EXIT_SCRIPT.format(tests=str(ROOT / "tests"), tmp=str(tmp_path / "plate"), mode=mode))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "RUNNING" in done.stdout, output[-3000:]  # the work was still going when Python exited
    for bad in ("QThread: Destroyed", "Aborted", "has been deleted", "Traceback"):
        assert bad not in output, output[-3000:]

