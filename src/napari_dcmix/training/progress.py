"""How a training run is shown, without Qt: its live curves, its status line, the device a choice means
(the label checks are plate.label_book's; where a model is saved, _io's)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import NO_PLATE
from ..plate.label_book import labels_problem

MAX_CURVE_POINTS = 1500  # per-step loss is thinned beyond this, so long runs stay cheap to draw


def start_problem(plate, labels: dict, counts: dict[str, int]) -> str | None:
    """Why training cannot start yet, in words a biologist can act on (None if it can)."""
    if plate is None:
        return NO_PLATE
    return labels_problem(labels, counts)


def device_text(choice: str) -> str:
    """'auto → cpu' style text: the device a choice resolves to here."""
    from ..errors import DcmixError
    from . import resolve_device

    try:
        device = resolve_device(choice)
    except DcmixError:
        return f"{choice}: not available here"
    name = device.type
    if name == "cuda":
        try:
            import torch

            name = f"cuda ({torch.cuda.get_device_name(device)})"
        except Exception:  # noqa: BLE001 - the name is cosmetic
            pass
    return f"{choice} → {name}"


def format_seconds(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _pct(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.0f}%"


def status_text(event) -> str:
    """One line under the curves: where training is, how good it is, how long it has left."""
    if event.kind == "start":
        return event.message
    if event.kind == "done":
        return (f"done in {format_seconds(event.elapsed)}: {event.message}, "
                f"validation accuracy {_pct(event.best_val_accuracy)}")
    text = (f"step {event.step}/{event.total_steps} · round {event.epoch}/{event.epochs} · loss {event.loss:.3f}"
            f" · train acc {_pct(event.train_accuracy)}")
    if event.kind == "epoch":
        text += f" · val acc {_pct(event.val_accuracy)}"
    return text + probing_text(event) + f" · ETA {format_seconds(event.eta)}"


def probing_text(event) -> str:
    """Why α does not move yet: the first steps try each channel alone (``training/probe.py``)."""
    if event.step < getattr(event, "probe_until", 0):
        return f" · each channel alone first (α starts at step {event.probe_until})"
    return ""


@dataclass
class Curves:
    """Live training curves: loss per step (x in epochs) and accuracies per epoch."""

    steps_per_epoch: float = 1.0
    step_x: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    def add(self, event) -> bool:
        """Record an event; True if the curves changed."""
        if event.kind == "start":
            self.steps_per_epoch = max(1.0, event.total_steps / max(event.epochs, 1))
            return False
        if event.kind == "step":
            self.step_x.append(event.step / self.steps_per_epoch)
            self.step_loss.append(float(event.loss))
            if len(self.step_x) > MAX_CURVE_POINTS:  # keep every other point: bounded cost, same shape
                self.step_x, self.step_loss = self.step_x[::2], self.step_loss[::2]
            return True
        if event.kind == "epoch":
            self.epochs.append(event.epoch)
            self.epoch_loss.append(float(event.loss))
            self.train_accuracy.append(float(event.train_accuracy))
            self.val_accuracy.append(float(event.val_accuracy))
            return True
        return False
