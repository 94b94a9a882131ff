"""The bodies of the docks' background jobs: training, explain, prediction, suggesting wells to label,
loading a model, permutation importance, warming torch up. Plain generators and functions, no Qt: a dock runs them in
a :class:`~napari_dcmix.widgets.jobs.Job`, and nothing here writes the docks' session (workers
yield; the dock writes on the GUI thread).
"""

from __future__ import annotations

import logging
import threading
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import DcmixError

log = logging.getLogger(__name__)

#: longest a training run waits for the dock's first draw (a dock that is gone never sets it)
VIEW_READY_TIMEOUT_S = 5.0
#: explain's step events forwarded to the GUI thread: enough for a smooth bar, cheap
STEP_EVENTS_EVERY = 10


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads (per pool thread: OpenMP), restored afterwards for the
    next job of the same pool thread; ``None`` leaves torch's setting alone."""
    import torch

    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_warm_up_started = False  # once per process: importing is what it warms


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


# --- training -------------------------------------------------------------------------------------
@dataclass
class TrainJob:
    """What the dock needs after the job stops: the trainer (its ``result``); and ``view_ready``, set by
    the dock once its composite layer and charts exist, so that one-off GUI work runs before the
    training loop competes with it for the interpreter."""

    trainer: Any = None
    view_ready: threading.Event = field(default_factory=threading.Event)


def training_updates(job: TrainJob, plate, labels: dict, config, init=None,
                     threads: int | None = None) -> Iterator:
    """Build the Trainer (reads plate statistics) and run it, all in the worker thread."""
    from . import Trainer

    with torch_threads(threads):
        trainer = Trainer(plate, labels, config, init=init)
        job.trainer = trainer
        with closing(trainer.run()) as run:  # on Stop: Trainer.run's finally keeps the best model
            for event in run:  # TrainEvents; start/epoch/done carry the ImportanceSnapshot
                yield event
                if event.kind == "start":
                    job.view_ready.wait(VIEW_READY_TIMEOUT_S)
    return trainer.result


# --- explain --------------------------------------------------------------------------------------
@dataclass
class ExplainJob:
    """What the Explain dock needs after the worker stops: the explainer (its partial ``result``, its
    ``panel``)."""

    token: object = field(default_factory=object)
    explainer: Any = None


def explain_updates(job: ExplainJob, plate, labels: dict, config, threads: int | None = None) -> Iterator:
    """Build the Explainer and run it; closing this closes it (finished rows are kept)."""
    from .explain import Explainer

    with torch_threads(threads):
        job.explainer = Explainer(plate, labels, config)
        with closing(job.explainer.run()) as run:
            for event in run:
                inner = event.train_event
                if inner is not None and inner.kind == "step" and inner.step % STEP_EVENTS_EVERY:
                    continue
                yield event


@dataclass
class StainsJob:
    """What the Explain dock needs after the stain search stops: the search (its partial ``result``)."""

    token: object = field(default_factory=object)
    search: Any = None


def stains_updates(job: StainsJob, plate, labels: dict, config, explained=None, threads: int | None = None) -> Iterator:
    """Build the StainSearch (reusing ``explained``, a finished Explainer of the same plate, when it
    matches) and run it; closing this closes it (finished runs are kept)."""
    from .stains import StainSearch

    with torch_threads(threads):
        job.search = StainSearch(plate, labels, config, full=explained)
        with closing(job.search.run()) as run:
            for event in run:
                inner = event.explain_event.train_event if event.explain_event is not None else None
                if inner is not None and inner.kind == "step" and inner.step % STEP_EVENTS_EVERY:
                    continue
                yield event


# --- prediction, models, importance -----------------------------------------------------------------
def stream_predictions(run_id, trained, plate, keys, device):
    """Yields (run_id, SitePrediction), returns (run_id, error message or None).

    It never raises (an error becomes one notification, not a traceback); cancelling the job closes
    it, which closes the site generator (and torch's per-thread no_grad state) in the worker thread.
    """
    from ..errors import SourceUnavailable
    from .predictor import predict_sites

    done = 0
    try:
        with closing(predict_sites(trained, plate, keys, device=device)) as predictions:
            for pred in predictions:
                done += 1
                yield run_id, pred
    except SourceUnavailable as err:  # the storage, not a site: stop, keep what is shown, say where
        site = getattr(err, "site_key", None)
        return run_id, (f"prediction stopped{f' at {site.label()}' if site is not None else ''} ({done} of "
                        f"{len(keys)} sites predicted): {err}; the predictions shown so far are kept; predict "
                        "again when the server answers")
    except DcmixError as err:
        return run_id, str(err)
    except Exception as err:  # noqa: BLE001 - an unexpected failure must not take napari down
        log.exception("prediction failed")
        return run_id, (f"prediction stopped by an unexpected error ({type(err).__name__}: {err}); "
                        "the results so far are kept; please report this with the napari log")
    return run_id, None


def suggestion_updates(trained, plate, labels: dict, n: int, device: str = "auto", threads: int | None = None) -> Iterator:
    """Rank the unlabelled wells to label next (``suggest.suggest_wells``); yields its SuggestEvents,
    the last one carrying the ranking. Cancelling the job closes it after the site in hand."""
    from .suggest import suggest_wells

    with torch_threads(threads):
        with closing(suggest_wells(trained, plate, labels, n, device=device)) as events:
            yield from events


def load_model(path):
    """Load a TrainedModel in a job (big checkpoints take a while)."""
    from .trained import TrainedModel

    return TrainedModel.load(path)


def permutation_updates(trained, plate, labels: dict, device: str = "auto") -> Iterator:
    """Permutation importance on a private copy of the model: it is moved to the job's device and put in
    eval mode, while the session's model is shared with docks that may be predicting at the same time."""
    import copy

    from .importance import permutation_importance

    private = copy.copy(trained)
    private.model = copy.deepcopy(trained.model)
    return (yield from permutation_importance(private, plate, labels, device=device))
