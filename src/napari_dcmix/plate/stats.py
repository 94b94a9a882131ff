"""Per-channel robust intensity statistics: one normalisation shared by the model, the composite
and the contrast limits of the channel layers, so what a person sees is what the model sees."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: Percentiles mapped to 0 and 1 after normalisation (robust to hot pixels and empty fields).
LOW_PERCENTILE, HIGH_PERCENTILE = 1.0, 99.5


@dataclass
class ChannelStats:
    channels: list[str]
    low: np.ndarray
    high: np.ndarray
    n_sites: int = 0

    def __post_init__(self):
        self.low = np.asarray(self.low, dtype=np.float32)
        self.high = np.asarray(self.high, dtype=np.float32)
        # a flat channel (high == low) must not divide by zero: widen it by a gap float32 can hold
        # (``60000 + 1e-6`` is 60000 in float32, so the gap scales with the intensity)
        gap = np.maximum(np.abs(self.low) * 1e-4, 1e-6).astype(np.float32)
        self.high = np.where(self.high > self.low, self.high, self.low + gap).astype(np.float32)

    def normalize(self, site: np.ndarray) -> np.ndarray:
        """(C, Y, X) raw intensities -> float32 where each channel's low..high maps to 0..1.

        A non-finite pixel (a float image's mask) becomes 0, the channel's low percentile: the network
        is never fed NaN or Inf, whoever read the pixels.
        """
        site = np.asarray(site, dtype=np.float32)
        shape = (-1,) + (1,) * (site.ndim - 1)
        with np.errstate(invalid="ignore", over="ignore"):
            out = (site - self.low.reshape(shape)) / (self.high - self.low).reshape(shape)
        if not np.isfinite(out).all():
            out = np.where(np.isfinite(out), out, np.float32(0.0)).astype(np.float32)
        return out

    def contrast_limits(self, channel: int) -> tuple[float, float]:
        return float(self.low[channel]), float(self.high[channel])

    def subset(self, order: list[int]) -> "ChannelStats":
        return ChannelStats([self.channels[i] for i in order], self.low[order], self.high[order], self.n_sites)

    def to_dict(self) -> dict:
        return {"channels": list(self.channels), "low": self.low.tolist(), "high": self.high.tolist(), "n_sites": self.n_sites}

    @classmethod
    def from_dict(cls, data: dict) -> "ChannelStats":
        return cls(list(data["channels"]), data["low"], data["high"], int(data.get("n_sites", 0)))


def compute_stats(channels: list[str], sites: list[np.ndarray], max_pixels: int = 250_000) -> ChannelStats:
    """Percentiles per channel over a sample of sites, subsampling pixels to bound the cost."""
    if not sites:
        raise ValueError("no site could be read to compute intensity statistics")
    per_site = max(1, max_pixels // len(sites))
    samples = []
    for site in sites:
        flat = site.reshape(site.shape[0], -1)
        step = max(1, flat.shape[1] // per_site)
        samples.append(flat[:, ::step].astype(np.float32))
    data = np.concatenate(samples, axis=1)
    if not np.isfinite(data).all():  # float images with NaN/Inf (masked) pixels: ignore those pixels
        data = np.where(np.isfinite(data), data, np.float32(np.nan))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN channel: 0 below
            low = np.nanpercentile(data, LOW_PERCENTILE, axis=1)
            high = np.nanpercentile(data, HIGH_PERCENTILE, axis=1)
        low, high = np.nan_to_num(low), np.nan_to_num(high)
    else:
        low = np.percentile(data, LOW_PERCENTILE, axis=1)
        high = np.percentile(data, HIGH_PERCENTILE, axis=1)
    return ChannelStats(list(channels), low, high, len(sites))
