"""36 summary numbers per channel of a site: intensity, texture (grey-level co-occurrence) and
granularity, computed on the plate-normalised image (0 = the plate's low percentile, 1 = its high).

Numpy and scipy only; a site larger than ``MAX_SIDE`` is block-averaged first, so a 2160² site costs
what a 256² one does (texture and granularity are measured at that scale).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MAX_SIDE = 256
LEVELS = 16                        # grey levels of the co-occurrence matrices
DISTANCES = (1, 3)                 # co-occurrence offsets in pixels (right and down, averaged)
GRANULARITY_RADII = tuple(range(1, 11))
_PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
_TEXTURE = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "entropy")

FEATURE_NAMES: tuple[str, ...] = (
    ("mean", "std", "skewness", "kurtosis") + tuple(f"p{q}" for q in _PERCENTILES)
    + tuple(f"{name}_d{d}" for d in DISTANCES for name in _TEXTURE)
    + tuple(f"granularity_{r}" for r in GRANULARITY_RADII)
    + ("gradient_mean", "laplacian_var", "coverage")
)


def _shrink(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    f = int(np.ceil(max(image.shape) / max_side))
    if f <= 1:
        return image
    h, w = image.shape[0] // f, image.shape[1] // f
    return image[:h * f, :w * f].reshape(h, f, w, f).mean(axis=(1, 3))


def _intensity(image: np.ndarray) -> list[float]:
    mean, std = float(image.mean()), float(image.std())
    z = (image - mean) / std if std > 1e-12 else np.zeros_like(image)
    return [mean, std, float((z ** 3).mean()), float((z ** 4).mean() - 3.0),
            *map(float, np.percentile(image, _PERCENTILES))]


def _cooccurrence(levels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Symmetric, normalised grey-level co-occurrence matrix of one offset."""
    a = levels[:levels.shape[0] - dy, :levels.shape[1] - dx]
    b = levels[dy:, dx:]
    counts = np.bincount((a * LEVELS + b).ravel(), minlength=LEVELS * LEVELS).reshape(LEVELS, LEVELS)
    counts = counts + counts.T
    return counts / max(1, counts.sum())


def _texture(image: np.ndarray) -> list[float]:
    """Haralick-style statistics of the co-occurrence matrices, right and down offsets averaged."""
    levels = np.clip((np.clip(image, 0.0, 1.0) * LEVELS).astype(np.int64), 0, LEVELS - 1)
    i, j = np.mgrid[:LEVELS, :LEVELS]
    out = []
    for d in DISTANCES:
        values = []
        for dy, dx in ((0, d), (d, 0)):
            if levels.shape[0] <= dy or levels.shape[1] <= dx:
                values.append([0.0] * len(_TEXTURE))
                continue
            p = _cooccurrence(levels, dy, dx)
            mu_i, mu_j = (i * p).sum(), (j * p).sum()
            sd_i, sd_j = np.sqrt(((i - mu_i) ** 2 * p).sum()), np.sqrt(((j - mu_j) ** 2 * p).sum())
            correlation = ((i - mu_i) * (j - mu_j) * p).sum() / (sd_i * sd_j) if sd_i * sd_j > 1e-12 else 0.0
            nonzero = p[p > 0]
            values.append([(p * (i - j) ** 2).sum(), (p * np.abs(i - j)).sum(), (p / (1.0 + (i - j) ** 2)).sum(),
                           (p ** 2).sum(), correlation, -(nonzero * np.log(nonzero)).sum()])
        out += [float(v) for v in np.mean(values, axis=0)]
    return out


def _granularity(image: np.ndarray) -> list[float]:
    """CellProfiler's granularity spectrum: the share of the image's signal removed by each further
    grey opening (structures of about that radius), relative to the background-corrected total."""
    background = ndimage.grey_opening(image, size=(2 * GRANULARITY_RADII[-1] + 1,) * 2)
    signal = np.clip(image - background, 0.0, None)
    total = float(signal.sum()) or 1.0
    out, previous = [], signal
    for r in GRANULARITY_RADII:
        opened = ndimage.grey_opening(signal, size=(2 * r + 1,) * 2)
        out.append(float((previous - opened).sum()) / total)
        previous = opened
    return out


def _edges(image: np.ndarray) -> list[float]:
    gy, gx = ndimage.sobel(image, axis=0), ndimage.sobel(image, axis=1)
    return [float(np.hypot(gx, gy).mean()), float(ndimage.laplace(image).var()), float((image > 0.5).mean())]


def channel_features(image: np.ndarray) -> np.ndarray:
    """The ``FEATURE_NAMES`` of one plate-normalised channel (Y, X)."""
    image = _shrink(np.nan_to_num(np.asarray(image, np.float32)))
    return np.array(_intensity(image) + _texture(image) + _granularity(image) + _edges(image), np.float64)


def site_features(normalised: np.ndarray) -> np.ndarray:
    """(C, Y, X) plate-normalised site -> (C, len(FEATURE_NAMES)) features."""
    return np.stack([channel_features(channel) for channel in normalised])
