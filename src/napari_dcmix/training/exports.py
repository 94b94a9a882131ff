"""Prediction tables other tools join on, and the per-site results figures are drawn from.

``pycytominer_rows`` writes CellProfiler/pycytominer's image-level keys (``Metadata_Plate``,
``Metadata_Well``, ``Metadata_Site``) so predictions merge with profiles without renaming columns.
"""

from __future__ import annotations

import numpy as np

from ..plate import Plate, SiteKey
from ..plate.wells import well_position
from .predictor import predict_sites
from .trained import TrainedModel

FORMATS = ("csv", "pycytominer")


def predict_site_probabilities(trained: TrainedModel, plate: Plate, device: str = "cpu",
                               progress=None) -> dict[SiteKey, np.ndarray]:
    """Every readable site -> class probabilities; ``progress(SitePrediction)`` per site.

    Under torchrun every rank predicts its shard of the sites; the shards are merged on every rank.
    """
    from .device import resolve_device
    from .distributed import setup

    ctx, dev = setup(resolve_device(device))
    results: dict[SiteKey, np.ndarray] = {}
    for pred in predict_sites(trained, plate, keys=plate.sites[ctx.rank::ctx.world_size], device=str(dev)):
        results[pred.key] = pred.probabilities
        if progress is not None:
            progress(pred)
    if ctx.active:
        results = {k: v for shard in ctx.gather(results) for k, v in shard.items()}
    return results


def pycytominer_rows(classes: list[str], site_probs: dict[SiteKey, np.ndarray], plate: Plate) -> list[dict]:
    """One row per site: Metadata_Plate/Well/Site, the prediction, then ``DCMIX_p_<class>`` features.

    Metadata_Plate is never empty (single-plate folders use the plate's name): merges need it.
    """
    rows = []
    for key in sorted(site_probs, key=lambda k: (k.plate, well_position(k.well), k.site)):
        probs = site_probs[key]
        best = int(np.argmax(probs))
        row = {"Metadata_Plate": key.plate or plate.name, "Metadata_Well": key.well, "Metadata_Site": key.site,
               "Metadata_DCMIX_Prediction": classes[best], "Metadata_DCMIX_Confidence": f"{probs[best]:.6f}"}
        row.update({f"DCMIX_p_{c}": f"{p:.6f}" for c, p in zip(classes, probs)})
        rows.append(row)
    return rows
