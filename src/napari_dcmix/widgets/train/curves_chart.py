"""The Train dock's live curves: loss per step and per round above train/validation accuracy."""

from __future__ import annotations

import math

from ..charts import Blitter, ChartColors, style_axes


class CurvesChart:
    """Loss per step (line) and per epoch (dots) above train/validation accuracy per epoch."""

    def __init__(self, canvas, colors: ChartColors):
        fig = canvas.figure
        self.loss_ax, self.acc_ax = fig.subplots(2, 1, sharex=True)
        fig.subplots_adjust(left=0.15, right=0.97, top=0.96, bottom=0.15, hspace=0.12)
        self.blitter = Blitter(canvas)
        kw = dict(animated=True)
        self.step_line, = self.loss_ax.plot([], [], color="#7fb3ff", lw=1, **kw)
        self.epoch_dots, = self.loss_ax.plot([], [], "o", color="#7fb3ff", ms=3, **kw)
        self.train_line, = self.acc_ax.plot([], [], "o-", color="#2ecc40", ms=3, label="train", **kw)
        self.val_line, = self.acc_ax.plot([], [], "s-", color="#ffdc00", ms=3, label="validation", **kw)
        self.blitter.artists = [self.step_line, self.epoch_dots, self.train_line, self.val_line]
        self.loss_ax.set_ylabel("train loss", fontsize=8)
        self.acc_ax.set_ylabel("accuracy", fontsize=8)
        self.acc_ax.set_xlabel("held-out evaluation round", fontsize=8)
        self.acc_ax.set_ylim(0, 1.02)
        self.acc_ax.legend(loc="upper left", fontsize=7, ncols=2)
        self.reset(1)
        self.restyle(colors)

    def restyle(self, colors: ChartColors) -> None:
        style_axes(self.loss_ax.figure, (self.loss_ax, self.acc_ax), colors)
        self.blitter.full()

    def reset(self, epochs: int, loss_top: float = 1.0) -> None:
        """A new run: empty curves, x axis over all its epochs, loss axis up to ``loss_top`` (≈ the
        first loss, so the axes need no re-layout while the loss falls)."""
        for line in self.blitter.artists:
            line.set_data([], [])
        self.acc_ax.set_xlim(0, max(1, epochs))
        self.loss_ax.set_ylim(0, loss_top)
        self.blitter.full()

    def update(self, curves) -> None:
        self.step_line.set_data(curves.step_x, curves.step_loss)
        self.epoch_dots.set_data(curves.epochs, curves.epoch_loss)
        self.train_line.set_data(curves.epochs, curves.train_accuracy)
        self.val_line.set_data(curves.epochs, [v if math.isfinite(v) else math.nan for v in curves.val_accuracy])
        finite = [v for v in curves.step_loss + curves.epoch_loss if math.isfinite(v)]
        top = max(finite) if finite else 1.0
        low, high = self.loss_ax.get_ylim()
        last_x = max(curves.step_x[-1:] + curves.epochs[-1:] + [0])
        if top > high or top < 0.4 * high or last_x > self.acc_ax.get_xlim()[1]:
            self.loss_ax.set_ylim(0, top * 1.15 or 1.0)  # outgrown (or far too loose): re-layout once
            self.acc_ax.set_xlim(0, max(self.acc_ax.get_xlim()[1], math.ceil(last_x)))
            self.blitter.full()
        else:
            self.blitter.fast()
