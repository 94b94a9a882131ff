"""What the docks' background jobs run (each in a :class:`~napari_dcmix.widgets.jobs.Job`): training,
loading a model, permutation importance, warming torch up. Plain generators and functions, no Qt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Iterator


# --- training -------------------------------------------------------------------------------------
@dataclass
class TrainJob:
    """What the dock needs after the job stops: the trainer (its ``result``); and ``view_ready``, set by
    the dock once its composite layer and charts exist, so that one-off GUI work runs before the
    training loop competes with it for the interpreter."""

    trainer: Any = None
    view_ready: threading.Event = field(default_factory=threading.Event)

#: longest the run waits for the dock's first draw (a dock that is gone never sets it)
VIEW_READY_TIMEOUT_S = 5.0


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


def training_updates(job: TrainJob, plate, labels: dict, config, init=None,
                     torch_threads: int | None = None) -> Iterator:
    """Build the Trainer (reads plate statistics) and run it, all in the worker thread."""
    import torch

    from . import Trainer

    previous_threads = torch.get_num_threads()  # per pool thread (OpenMP): restore for the next job
    if torch_threads:
        torch.set_num_threads(torch_threads)
    try:
        trainer = Trainer(plate, labels, config, init=init)
        job.trainer = trainer
        run = trainer.run()
        try:
            for event in run:  # TrainEvents; start/epoch/done carry the ImportanceSnapshot
                yield event
                if event.kind == "start":
                    job.view_ready.wait(VIEW_READY_TIMEOUT_S)
        finally:
            run.close()  # on Stop: Trainer.run's finally keeps the best model in trainer.result
    finally:
        torch.set_num_threads(previous_threads)
    return trainer.result


def load_model(path):
    """Load a TrainedModel in a job (big checkpoints take a while)."""
    from . import TrainedModel

    return TrainedModel.load(path)


def permutation_updates(trained, plate, labels: dict, device: str = "auto") -> Iterator:
    """Permutation importance on a private copy of the model: it is moved to the job's device and put in
    eval mode, while the session's model is shared with docks that may be predicting at the same time."""
    import copy

    from . import permutation_importance

    private = copy.copy(trained)
    private.model = copy.deepcopy(trained.model)
    return (yield from permutation_importance(private, plate, labels, device=device))
