"""Every background job of the docks: one :class:`Job` on napari's ``create_worker``, one way to cancel
(``Job.cancel``), one way to end (``JobSet.stop_all``), and no job that outlives the interpreter.

superqt's GeneratorWorker has two traps, handled here once for every job:

* ``quit()`` stops pulling from a generator but never closes it, so a ``finally`` in the job (the
  Trainer keeps its best model there) would not run: the generator is closed in its own thread.
* a ``RuntimeError`` from the job (most torch errors, CUDA out-of-memory) ends the worker silently,
  with neither ``errored`` nor ``finished``: it is re-raised as :class:`WorkerFailure`.
"""

from __future__ import annotations

import atexit
import inspect
import os
import threading
import time
from typing import Callable

from superqt.utils import GeneratorWorker

from ..errors import DcmixError

def usable_cores() -> int:
    """The cores this process may run on (a cluster job's or container's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 2


#: threads torch may use for one model while the viewer is up: one core stays free, since a model's
#: threads wait for each other at every operation and napari's redraws would hold them up (the demo's
#: Train dock: 50 s on 1 thread of 2 cores, 52–61 s on 2)
TORCH_THREADS = max(1, usable_cores() - 1)
#: explain and the stain search train their fold models side by side, one thread each, so no thread
#: waits for another: they take every core (the demo's Explain dock: 149 s → 94–108 s on 2 cores)
FOLD_THREADS = usable_cores()
#: how long ending a dock (or Python) waits for one job's thread
STOP_TIMEOUT_S = 30.0
#: how long interpreter exit also waits for the thread pool (jobs that were still queued)
QUEUED_WAIT_S = 5.0


class WorkerFailure(Exception):
    """A RuntimeError raised in a job, carried out under a type superqt reports."""

    def __init__(self, original: BaseException):
        super().__init__(str(original))
        self.original = original


def user_message(err: BaseException) -> str:
    """What a biologist reads in the notification: the DcmixError text, or a hint for known failures."""
    original = getattr(err, "original", err)
    if isinstance(original, DcmixError):
        return str(original)
    text = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    if "out of memory" in text.lower() or isinstance(original, MemoryError):
        return f"not enough memory ({text[:120]}); try a smaller batch size or tile size"
    return f"{type(original).__name__}: {text[:300]}"


def notify_error(err: BaseException) -> None:
    """Show ``err`` as a napari notification (with the traceback in the details if it is a bug)."""
    from napari.utils.notifications import notification_manager, show_error

    original = getattr(err, "original", err)
    if isinstance(original, DcmixError) or "out of memory" in str(original).lower():
        show_error(user_message(err))
    else:
        notification_manager.receive_error(type(original), original, original.__traceback__)


def _body(func: Callable, args: tuple, kwargs: dict):
    """Run ``func`` as a generator whatever it is (one worker class for every job)."""
    try:
        result = func(*args, **kwargs)
        if inspect.isgenerator(result):
            return (yield from result)  # closing this generator closes the job's
        return result
    except RuntimeError as err:
        raise WorkerFailure(err) from err


class _ClosingWorker(GeneratorWorker):
    """Closes its generator in its own thread when it stops, and says when its thread is done."""

    def __init__(self, *args, **kwargs):
        self.thread_done = threading.Event()
        self.thread_started = threading.Event()
        self.on_thread_end = None  # called in the worker thread once it ends (the Job forgets itself)
        super().__init__(*args, **kwargs)

    def work(self):
        self.thread_started.set()
        try:
            return super().work()
        finally:
            try:
                self._gen.close()  # the job's finally blocks run here, in the worker thread
            except Exception as err:  # noqa: BLE001 - closing must not hide the real outcome
                self.errored.emit(err)
            finally:
                self.thread_done.set()
                if self.on_thread_end is not None:
                    self.on_thread_end()


# by design for the whole process: the jobs whose thread may still run, what interpreter exit waits for
# (a script that exits with training running must end its threads before Python tears Qt down)
_ACTIVE: "set[Job]" = set()
_atexit_registered = False  # stop_every_job is registered with atexit / aboutToQuit once per process


class Job:
    """One background job of a dock. Callbacks run on the GUI thread; a failure is a notification
    unless ``on_error`` is given. ``progress`` (a title) shows a napari progress bar; with
    ``count_yields`` every yield advances it, else the owner calls :meth:`advance_to`."""

    def __init__(self, func: Callable, *args, on_yield=None, on_return=None, on_error=None, on_finish=None,
                 progress: str | None = None, total: int = 0, count_yields: bool = False, **kwargs):
        from napari.qt.threading import create_worker

        self.worker = create_worker(_body, func, args, kwargs, _worker_class=_ClosingWorker,
                                    _ignore_errors=True, _start_thread=False)
        self.cancelled = False
        self._detached = False
        self.failed: BaseException | None = None
        self.delivered = False  # finished, and everything it emitted handled on the GUI thread
        self.pbar = None
        self._in_progress_update = False
        if progress:
            from napari.utils import progress as napari_progress

            self.pbar = napari_progress(total=total, desc=progress)
        # The Job's own slots call the owner's callbacks, so their order is fixed (failed is set before
        # on_finish runs, delivered before anyone looks). Qt holds these bound methods weakly; the Job
        # holds the callbacks, and nothing in Qt holds the Job: a finished job never keeps a dock alive.
        self._on_error, self._on_finish = on_error or notify_error, on_finish
        worker = self.worker
        worker.errored.connect(self._errored)
        worker.finished.connect(self._finished)  # queued behind the worker's other signals
        if on_yield is not None:
            worker.yielded.connect(on_yield)
        if count_yields and self.pbar is not None:
            worker.yielded.connect(self._count_yield)
        if on_return is not None:
            worker.returned.connect(on_return)
        worker.on_thread_end = self._thread_ended
        _track(self)
        worker.start()

    # --- state ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True until the job ended and everything it emitted was handled on the GUI thread."""
        return not self.delivered

    @property
    def thread_done(self) -> bool:
        return self.worker.thread_done.is_set()

    def cancel(self) -> None:
        """Stop after the current step (the job's own ``finally`` still runs)."""
        self.cancelled = True
        self.worker.quit()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S, detach: bool = False) -> bool:
        """Cancel and wait (without an event loop) for the thread; True if it ended or never started.
        ``detach`` first cuts the signals: nothing is delivered to a dock being deleted."""
        if detach:
            self.detach()
        self.cancel()
        self.close_progress()
        worker = self.worker
        if not worker.thread_started.is_set():
            return True  # queued, not running: it sees the quit request and ends at once
        ended = worker.thread_done.wait(timeout_s)
        if ended:
            _ACTIVE.discard(self)
        return ended

    def _thread_ended(self) -> None:
        """In the worker thread: nothing of this job runs any more, so interpreter exit need not wait."""
        if not self._detached:
            return  # the GUI thread's finished handler forgets it, after delivering its results
        _ACTIVE.discard(self)

    def detach(self) -> None:
        """Cut the worker's signals and the owner's callbacks: nothing reaches (or keeps) its dock."""
        self._detached = True
        self._on_finish, self._on_error = None, notify_error
        for name in ("yielded", "returned", "errored", "finished", "started", "aborted"):
            try:
                getattr(self.worker, name).disconnect()
            except (TypeError, RuntimeError, AttributeError):
                pass

    # --- progress -------------------------------------------------------------------------------
    def advance_to(self, n: int, total: int | None = None, desc: str | None = None) -> None:
        """Move the progress bar (napari's bar runs ``processEvents``: never re-entered)."""
        pbar = self.pbar
        if pbar is None or self._in_progress_update:
            return
        self._in_progress_update = True
        try:
            if total is not None and pbar.total != total:
                pbar.total = total
            if desc is not None:
                pbar.set_description(desc)
            if n > pbar.n:
                pbar.update(n - pbar.n)
        finally:
            self._in_progress_update = False

    def close_progress(self) -> None:
        pbar, self.pbar = self.pbar, None
        if pbar is not None:
            try:
                pbar.close()
            except RuntimeError:  # its Qt side went with the viewer
                pass

    # --- signals --------------------------------------------------------------------------------
    def _count_yield(self, *_args) -> None:
        if self.pbar is not None:
            self.advance_to(self.pbar.n + 1)

    def _errored(self, err) -> None:
        self.failed = err
        _call_if_alive(self._on_error, err)

    def _finished(self) -> None:
        self.delivered = True
        _ACTIVE.discard(self)
        on_finish = self._on_finish
        self.detach()  # drops the owner's callbacks too: a finished job keeps nothing alive
        self.close_progress()  # napari's bar may run processEvents: state is final before it
        if on_finish is not None:
            _call_if_alive(on_finish)


def _call_if_alive(callback, *args) -> None:
    """Call ``callback`` unless it is a method of a Qt object already deleted (its dock was closed):
    Qt skips those for connected slots, and the Job's callbacks must behave the same."""
    owner = getattr(callback, "__self__", None)
    if owner is not None and hasattr(owner, "objectName"):
        try:
            owner.objectName()
        except RuntimeError:
            return
    callback(*args)


class JobSet:
    """The jobs one dock owns. Holds no reference to the dock, so it can end them while Qt deletes it."""

    def __init__(self):
        self._jobs: list[Job] = []

    def run(self, func: Callable, *args, **kwargs) -> Job:
        job = Job(func, *args, **kwargs)
        self._jobs = [j for j in self._jobs if j.running] + [job]
        return job

    @property
    def running(self) -> list[Job]:
        return [j for j in self._jobs if j.running]

    def stop_all(self, detach: bool = False, *_args) -> bool:
        """Cancel every job, then wait for each thread; True if all ended."""
        jobs, self._jobs = list(self._jobs), []
        return stop_jobs(jobs, detach)


def stop_jobs(jobs, detach: bool = False, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Ask every job to stop first (their threads wind down together), then wait for each, within
    ``timeout_s`` in all; ``detach`` cuts their signals first. True if every thread ended."""
    jobs = list(jobs)
    for job in jobs:
        if detach:
            job.detach()
        job.cancel()
    deadline = time.monotonic() + timeout_s
    return all([job.stop(max(0.0, deadline - time.monotonic())) for job in jobs])


def _track(job: Job) -> None:
    global _atexit_registered
    _ACTIVE.add(job)
    if not _atexit_registered:
        atexit.register(stop_every_job)  # registered after Qt's and napari's: runs before them
        from qtpy.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:  # the application quitting (napari's File > Exit) ends every job too
            app.aboutToQuit.connect(stop_every_job)
        _atexit_registered = True


def stop_every_job(timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """End every job of the process before Python tears Qt down (a script that exits with docks
    open and training running). True if every thread ended within ``timeout_s``."""
    jobs = list(_ACTIVE)
    deadline = time.monotonic() + timeout_s
    ended = stop_jobs(jobs, detach=True, timeout_s=timeout_s)
    if jobs:  # a job still queued when asked to stop starts, sees the request and ends: wait for it too
        from qtpy.QtCore import QThreadPool

        left = min(QUEUED_WAIT_S, max(0.0, deadline - time.monotonic()))  # the pool may hold others' work too
        ended = QThreadPool.globalInstance().waitForDone(int(1000 * left)) and ended
    _ACTIVE.clear()
    return ended
