"""What a training run yields (:class:`TrainEvent`) and what its loop carries between events.

``Trainer.run`` (``trainer.py``) is the only producer of both; ``TrainEvent`` is re-exported there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .gate import Verdict
from .pipeline import TileStream
from .snapshot import ImportanceSnapshot


@dataclass
class TrainEvent:
    kind: str  # "start", "step", "epoch" (one held-out evaluation), "notice" (say it, go on), "done"
    epoch: int  # evaluation round
    epochs: int  # evaluation rounds planned
    step: int
    total_steps: int
    loss: float = math.nan
    train_accuracy: float = math.nan
    val_accuracy: float = math.nan
    best_val_accuracy: float = math.nan
    importance: dict[str, float] | None = None
    elapsed: float = 0.0
    eta: float = math.nan
    device: str = "cpu"
    message: str = ""
    verdict: Verdict | None = None  # on "done": judged on the test wells
    snapshot: ImportanceSnapshot | None = None  # α with its verdict: on "start", "epoch" and "done"
    #: while > step: the network still sees one channel at a time and α waits until this step
    probe_until: int = 0


@dataclass
class RunState:
    """One run's optimiser, budget and progress: what ``Trainer.run``'s helpers share from step to step,
    and its clean-up reads when the run is closed part-way (internal to the trainer)."""

    stream: TileStream
    net: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    weights: torch.Tensor  # class weights of the loss
    amp: torch.dtype | None
    total: int  # optimiser steps planned (cut to the current step by early stopping)
    every: int  # steps between evaluations
    base: dict  # fields every event carries
    start: float
    token: object = field(default_factory=object)  # names this run to the live importance chart
    history: list = field(default_factory=list)  # the run's α, round by round, for the live chart
    step: int = 0
    round_: int = 0
    stale: int = 0  # evaluations since the held-out loss last improved
    seen: int = 0  # images, right answers and summed loss since the last evaluation
    correct: int = 0
    loss_sum: float = 0.0
    message: str = ""  # why the run stopped early, if it did
    alpha: object = None  # the run's AlphaSchedule (each channel probed alone, then α from that)
