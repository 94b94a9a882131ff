"""Background work for the docks: generators that run in napari's thread workers, and clean stopping.

Two traps of superqt's GeneratorWorker are handled here:

* ``quit()`` only stops pulling from the generator; it never closes it, so the Trainer's ``finally``
  (which keeps the best model) would not run. :class:`ClosingGeneratorWorker` closes the generator in
  the worker thread after it stops.
* a ``RuntimeError`` from the generator (most torch errors, CUDA out-of-memory) makes the worker end
  silently: no ``errored``, no ``finished``. :func:`guarded` turns it into :class:`WorkerFailure`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
from superqt.utils import GeneratorWorker

from ..errors import DcmixError

#: threads torch may use while the GUI is up: one core stays free so napari never stalls
TORCH_THREADS = max(1, (os.cpu_count() or 2) - 1)


class WorkerFailure(Exception):
    """A RuntimeError raised in a worker, carried out under a type superqt reports."""

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


def guarded(generator: Iterator) -> Iterator:
    """Re-raise RuntimeErrors as WorkerFailure; closing this closes ``generator``."""
    try:
        return (yield from generator)
    except RuntimeError as err:
        raise WorkerFailure(err) from err


class ClosingGeneratorWorker(GeneratorWorker):
    """A GeneratorWorker whose generator is always closed in its own thread, and that says when it is done."""

    def __init__(self, *args, **kwargs):
        self.done = threading.Event()
        super().__init__(*args, **kwargs)

    def work(self):
        try:
            return super().work()
        finally:
            try:
                self._gen.close()  # runs the generator's finally blocks (the Trainer keeps its best model)
            except Exception as err:  # noqa: BLE001 - closing must not hide the real outcome
                self.errored.emit(err)
            finally:
                self.done.set()


def start_worker(func, *args, **kwargs) -> ClosingGeneratorWorker:
    """A ClosingGeneratorWorker for generator ``func`` (registered with napari's task status), not started."""
    from napari.qt.threading import create_worker

    return create_worker(func, *args, _worker_class=ClosingGeneratorWorker, _ignore_errors=True,
                         _start_thread=False, **kwargs)


def stop_worker(worker, timeout_s: float = 20.0) -> bool:
    """Ask ``worker`` to stop and wait (without an event loop) until its generator is closed."""
    if worker is None:
        return True
    worker.quit()
    done = getattr(worker, "done", None)
    if done is None:
        return not worker.is_running
    return done.wait(timeout_s)


def disconnect_all(worker) -> None:
    """Cut the worker's signals (its dock is being deleted); the thread still ends on its own."""
    for name in ("yielded", "returned", "errored", "finished", "started", "aborted"):
        signal = getattr(worker, name, None)
        if signal is None:
            continue
        try:
            signal.disconnect()
        except (TypeError, RuntimeError):
            pass


class RunningJob:
    """A dock's worker and progress bar, reachable (and stoppable) after the dock is deleted."""

    def __init__(self, session=None):
        self.worker = None
        self.pbar = None
        self.session = session  # told when training stops (set_training(False))

    def shutdown(self, detach: bool = False) -> None:
        """Stop the worker and wait for its generator to close (dock closed, napari quitting)."""
        worker, self.worker = self.worker, None
        if worker is not None:
            if detach:
                disconnect_all(worker)
            stop_worker(worker)
        self.close_progress()
        if worker is not None and self.session is not None:
            try:
                self.session.set_training(False)
            except RuntimeError:  # session already deleted with its viewer
                pass

    def close_progress(self) -> None:
        pbar, self.pbar = self.pbar, None
        if pbar is not None:
            pbar.close()


# --- training -------------------------------------------------------------------------------------
@dataclass
class TrainUpdate:
    """One TrainEvent plus the (K, C) α at that moment (start, epoch and done events only)."""

    event: Any
    alpha: np.ndarray | None = None


@dataclass
class TrainJob:
    """What the dock needs after the worker stops: the trainer (its ``result``) and the run's token."""

    token: object = field(default_factory=object)
    trainer: Any = None


_warm_up_started = False


def warm_up_torch():
    """Import what torch's optimizers pull in on first use (torch._dynamo: ~800 modules, seconds, parts
    of it holding the GIL for 100-200 ms) ahead of the first Start, so training starts without those
    stalls. A generator so it runs in a worker; once per process."""
    global _warm_up_started
    if _warm_up_started:
        return
    _warm_up_started = True
    yield "importing torch"
    import torch._dynamo  # noqa: F401


def _alpha_now(trainer) -> np.ndarray | None:
    mixing = getattr(trainer.model, "mixing", None)
    if mixing is None:
        return None
    return mixing.alpha().detach().float().cpu().numpy()


def training_updates(job: TrainJob, plate, labels: dict, config, init=None,
                     torch_threads: int | None = None) -> Iterator[TrainUpdate]:
    """Build the Trainer (reads plate statistics) and run it, all in the worker thread."""
    import torch

    from ..training import Trainer

    previous_threads = torch.get_num_threads()  # per pool thread (OpenMP): restore for the next job
    if torch_threads:
        torch.set_num_threads(torch_threads)
    try:
        trainer = Trainer(plate, labels, config, init=init)
        job.trainer = trainer
        run = trainer.run()
        try:
            for event in run:
                alpha = None
                if event.kind in ("start", "epoch"):
                    alpha = _alpha_now(trainer)
                elif event.kind == "done" and trainer.result is not None:
                    alpha = trainer.result.alpha_matrix()
                yield TrainUpdate(event, alpha)
        finally:
            run.close()  # on Stop: Trainer.run's finally keeps the best model in trainer.result
    except RuntimeError as err:
        raise WorkerFailure(err) from err
    finally:
        torch.set_num_threads(previous_threads)
    return trainer.result


def load_model(path) -> Iterator:
    """Load a TrainedModel in a worker (big checkpoints take a while); returns it, yields nothing."""
    from ..training import TrainedModel

    if False:  # a generator, so it runs in a ClosingGeneratorWorker like every other job
        yield
    try:
        return TrainedModel.load(path)
    except RuntimeError as err:
        raise WorkerFailure(err) from err


def permutation_updates(trained, plate, labels: dict, device: str = "auto") -> Iterator:
    """Permutation importance on a private copy of the model: the session's model is shared with other
    docks, and an SE-attention model updates its running importance on every forward pass, even in eval."""
    import copy

    from ..training import permutation_importance

    private = copy.copy(trained)
    private.model = copy.deepcopy(trained.model)
    return (yield from guarded(permutation_importance(private, plate, labels, device=device)))
