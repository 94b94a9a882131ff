"""What the docks' background jobs run (each in a :class:`~napari_dcmix.widgets.jobs.Job`): training,
loading a model, permutation importance, warming torch up. Plain generators and functions, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np


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
    finally:
        torch.set_num_threads(previous_threads)
    return trainer.result


def load_model(path):
    """Load a TrainedModel in a job (big checkpoints take a while)."""
    from ..training import TrainedModel

    return TrainedModel.load(path)


def permutation_updates(trained, plate, labels: dict, device: str = "auto") -> Iterator:
    """Permutation importance on a private copy of the model: the session's model is shared with other
    docks, and an SE-attention model updates its running importance on every forward pass, even in eval."""
    import copy

    from ..training import permutation_importance

    private = copy.copy(trained)
    private.model = copy.deepcopy(trained.model)
    return (yield from permutation_importance(private, plate, labels, device=device))
