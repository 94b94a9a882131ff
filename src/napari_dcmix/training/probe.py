"""How well each channel alone answers each blend's question, measured inside one training run.

For the first part of a run the mixing layer *probes*: every sample's blend k is one channel drawn at
random and α is left alone (``ChannelMixing.probing``). The network thereby learns every channel's
structures. Then each channel alone is put to every blend's question on the validation wells (held
out, so a network that memorised its training tiles shows no evidence); without validation wells, the
probing samples' own losses stand in. α then starts from that evidence (:meth:`ChannelProbe.weights`)
and is trained end to end as plain DCMIX. Without it α starts uniform: a phenotype in one channel of many is
diluted in the blend, the network never learns its structure and α never moves to it; with noise on α
(the annealed Gumbel exploration of earlier versions) α moved on gradients that were noise while the
network knew nothing yet.
"""

from __future__ import annotations

import numpy as np
import torch

#: weight of a channel that showed no evidence, against 1 for one that answered perfectly: every channel
#: stays reachable, and the end-to-end training decides between the channels that showed some
FLOOR = 0.05

class ChannelProbe:
    """Summed per-sample losses by (blend k, channel c, true class), from the probing samples."""

    def __init__(self, n_outputs: int, n_channels: int, n_classes: int):
        self.sums = np.zeros((n_outputs, n_channels, n_classes))
        self.counts = np.zeros((n_outputs, n_channels, n_classes))

    def add(self, choice: torch.Tensor, losses: torch.Tensor, y: torch.Tensor) -> None:
        """``choice`` (B, K) channel of each sample's blend, ``losses`` (B, K) (NaN: the sample does not
        take part in blend k's question), ``y`` (B,) true classes."""
        choice, losses, y = choice.cpu().numpy(), losses.detach().float().cpu().numpy(), y.cpu().numpy()
        b, k = losses.shape
        outputs = np.broadcast_to(np.arange(k), (b, k))
        classes = np.broadcast_to(y[:, None], (b, k))
        keep = np.isfinite(losses)
        np.add.at(self.sums, (outputs[keep], choice[keep], classes[keep]), losses[keep])
        np.add.at(self.counts, (outputs[keep], choice[keep], classes[keep]), 1)

    def add_every_channel(self, losses: torch.Tensor, y: torch.Tensor) -> None:
        """``losses`` (B, K, C): every sample's loss on blend k's question with channel c alone."""
        b, k, c = losses.shape
        choice = torch.arange(c).repeat(b)[:, None].expand(-1, k)  # rows (sample, channel), channel-minor
        self.add(choice, losses.permute(0, 2, 1).reshape(b * c, k), y.repeat_interleave(c))

    def mean_losses(self) -> np.ndarray:
        """(K, C): the loss of blend k with channel c alone, each class weighing the same (NaN: unseen)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = self.sums / self.counts
        seen = self.counts > 0
        out = np.full(self.sums.shape[:2], np.nan)
        for k in range(out.shape[0]):
            for c in range(out.shape[1]):
                if seen[k, c].any():
                    out[k, c] = per_class[k, c][seen[k, c]].mean()
        return out

    def weights(self) -> np.ndarray:
        """(K, C) start weights of the blends: FLOOR + the share of the chance-level loss that channel c
        alone removed from blend k's question (0 when it did no better than guessing)."""
        losses = self.mean_losses()
        classes_seen = (self.counts.sum(axis=1) > 0).sum(axis=1)  # (K,) classes in each blend's question
        chance = np.log(np.maximum(classes_seen, 2))[:, None]
        gain = np.clip(1.0 - losses / chance, 0.0, 1.0)
        return FLOOR + np.nan_to_num(gain, nan=0.0)

    def merged(self, all_reduce) -> "ChannelProbe":
        """Summed over the ranks of a data-parallel run (``all_reduce``: list of floats -> summed list)."""
        flat = all_reduce(np.concatenate([self.sums.ravel(), self.counts.ravel()]).tolist())
        n = self.sums.size
        out = ChannelProbe(*self.sums.shape)
        out.sums = np.asarray(flat[:n], np.float64).reshape(self.sums.shape)
        out.counts = np.asarray(flat[n:], np.float64).reshape(self.counts.shape)
        return out

    def describe(self, channels: list[str]) -> str:
        w = self.weights()
        return "; ".join(", ".join(f"{c} {v:.2f}" for c, v in zip(channels, row)) for row in w)

class AlphaSchedule:
    """α's schedule over one run, for the trainer and the digits benchmark alike: until ``until`` every
    blend is one channel at a time and α waits; the second half of that phase gathers the evidence α then
    starts from. Nothing to do for a model without a mixing layer or with one channel, or when
    ``fraction`` is 0 (plain DCMIX from a uniform α)."""

    def __init__(self, model, fraction: float, total: int, n_classes: int, all_reduce=None, optimizer=None,
                 held_out=None):
        self.model, self.mixing, self.optimizer = model, getattr(model, "mixing", None), optimizer
        #: () -> iterable of (x, y) held-out batches for the evidence (None, or nothing: the probing losses)
        self.held_out = held_out
        self.all_reduce = all_reduce or (lambda values: values)
        self.result: ChannelProbe | None = None  # the evidence α started from
        probing = self.mixing is not None and self.mixing.n_channels > 1 and fraction > 0
        self.until = int(fraction * total) if probing else 0
        self.probe = ChannelProbe(self.mixing.n_outputs, self.mixing.n_channels, n_classes) if self.until else None

    def started(self, step: int) -> bool:
        """Has α started (trained on blends) after ``step`` optimiser steps? Before, no checkpoint is
        chosen and early stopping waits: the network has only seen single channels."""
        return self.until == 0 or step > self.until

    def before_step(self, step: int) -> None:
        """Probe until ``until``; at ``until`` α starts from the evidence."""
        if self.probe is not None:
            self.mixing.probing = step < self.until
            if not self.mixing.probing:
                self._start()

    def after_forward(self, step: int, logits, y) -> None:
        """Record the probing samples' losses (second half of the phase: the network has learned a little)."""
        if self.probe is not None and self.mixing.probing and step >= self.until // 2:
            self.probe.add(self.mixing.last_choice, self.model.question_losses(logits.detach().float(), y), y)

    def _start(self) -> None:
        measured = self._measure() if self.held_out is not None else None
        self.result = (measured if measured is not None else self.probe).merged(self.all_reduce)
        self.probe = None
        self.mixing.start_from(self.result.weights())
        if self.optimizer is not None:  # α's optimiser starts afresh: its zero gradients while probing are no history
            self.optimizer.state.pop(self.mixing.logits, None)

    def _measure(self) -> "ChannelProbe | None":
        """Every channel alone on the held-out batches (None when there were none on any rank)."""
        probe = ChannelProbe(*self.probe.sums.shape)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for x, y in self.held_out():
                    probe.add_every_channel(self.model.channel_losses(x, y), y)
        finally:
            self.model.train(was_training)
        seen = self.all_reduce([float(probe.counts.sum())])[0]
        return probe if seen > 0 else None

    def finish(self) -> None:
        """The run ended (or was stopped): no probing, whatever the step."""
        if self.mixing is not None:
            self.mixing.probing = False
