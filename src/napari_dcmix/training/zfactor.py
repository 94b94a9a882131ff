"""Z′-factor of a screen's controls: is the assay window wide enough to trust hits?

Z′ = 1 − 3(σp + σn) / |μp − μn| (Zhang, Chung & Oldenburg 1999), here on the model's predicted
probability of the positive class in wells labeled as positive and negative controls. Pure numpy so
the dock, scripts and tests share one definition.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..errors import DcmixError


def z_prime(pos_values: Iterable[float], neg_values: Iterable[float]) -> float:
    """Z′ from per-well values of positive and negative controls (sample standard deviations).

    Identical means give ``-inf`` (no separation at all). Fewer than 2 wells per control, or a value
    that is not a finite number, is a ``DcmixError`` saying what to do.
    """
    pos = np.asarray(list(pos_values), dtype=np.float64)
    neg = np.asarray(list(neg_values), dtype=np.float64)
    for name, values in (("positive", pos), ("negative", neg)):
        if values.size < 2:
            raise DcmixError(f"Z′ needs at least 2 {name} control wells with predictions (have {values.size}); "
                             f"label more {name} control wells and predict them")
        if not np.all(np.isfinite(values)):
            raise DcmixError(f"Z′ got a value that is not a number among the {name} controls; "
                             "predict those wells again")
    spread = 3.0 * (pos.std(ddof=1) + neg.std(ddof=1))
    window = abs(pos.mean() - neg.mean())
    if window == 0.0:
        return -math.inf
    return float(1.0 - spread / window)


def z_prime_quality(z: float) -> str:
    """The usual reading of a Z′ value, in words a biologist reports."""
    if z >= 0.5:
        return "excellent (≥ 0.5): controls are well separated"
    if z >= 0.0:
        return "marginal (0–0.5): controls separate, but hits near the threshold are uncertain"
    return "overlapping (< 0): controls are not separated; the screen cannot call hits reliably"
