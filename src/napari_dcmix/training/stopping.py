"""Stopping a run from outside it, at an optimiser step every rank agrees on.

The CLI turns SIGTERM (a scheduler ending the job, ``kill``) into :func:`request_stop`; the docks never
do (their Stop closes the generator). Each step, :func:`agree_step` puts the request, the sites each
rank lost and a storage that stopped answering into the one all-reduce the step already makes (the
loss, whose finiteness every rank must agree on), so that under torchrun every rank leaves at the same
step, before its backward pass: none is left waiting in a collective for a rank that has gone. The run
then ends as on Ctrl-C: the generator's clean-up keeps the best model so far, and rank 0 saves it.
"""

from __future__ import annotations

import threading

import torch

from .distributed import DistContext
from .site_losses import SiteLosses

#: set by the CLI's SIGTERM handler and read at every optimiser step; module state because a signal
#: handler has no other way to reach the run in progress (one command per CLI process; cleared per command)
_STOP = threading.Event()
#: set at the first optimiser step of the process: from then on a stop waits for a step boundary
#: (module state for the same reason: the signal handler asks it)
_STEPPED = threading.Event()


def request_stop() -> None:
    """Ask the run in progress to stop at its next optimiser step (keeping its best model)."""
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def training_started() -> bool:
    """Whether an optimiser step was taken in this process (a stop then waits for the next step)."""
    return _STEPPED.is_set()


def clear_stop() -> None:
    """A new command: no stop asked for, no step taken yet."""
    _STOP.clear()
    _STEPPED.clear()


class StopRequested(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM): it ends as on Ctrl-C, keeping the best model so far."""


def agree_step(dist: DistContext, value: float, device: torch.device, losses: SiteLosses | None,
               step: int) -> float:
    """The step's loss summed over the ranks (for the finiteness check), after the decisions every rank
    takes together: stop when one was asked to (:class:`StopRequested`), or when the sites lost or the
    storage say so (``losses.check``)."""
    _STEPPED.set()
    fresh = losses.take_fresh() if losses is not None else []
    down = losses is not None and losses.down
    if not dist.active:
        total = value
        stop = stop_requested()
    else:
        total, stop, n_fresh, n_down = dist.all_reduce_sum([value, float(stop_requested()), len(fresh), float(down)],
                                                            device)
        if n_fresh or n_down:  # rare: every rank learns what the others lost, then each decides the same
            shared = dist.gather((fresh, str(losses.unavailable) if down else None, _site(losses)))
            for other_fresh, message, site in shared:
                losses.merge(other_fresh)
                if message is not None and not losses.down:
                    losses.note_unavailable(message, site)
    if stop:
        raise StopRequested(f"asked to stop at step {step + 1}")
    if losses is not None:
        losses.check(f"at step {step + 1}")
    return total


def _site(losses: SiteLosses | None):
    unavailable = losses.unavailable if losses is not None else None
    return getattr(unavailable, "site_key", None)
