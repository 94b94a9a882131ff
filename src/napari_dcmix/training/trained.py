"""A trained model with everything needed to apply it: channels, normalisation, classes, history."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model import ChannelClassifier, load_checkpoint, match_channels, save_checkpoint
from ..plate import ChannelStats


@dataclass
class TrainedModel:
    model: ChannelClassifier
    channels: list[str]
    classes: list[str]
    stats: ChannelStats
    tile: int
    metadata: dict[str, Any] = field(default_factory=dict)  # history, label column, config, scores
    source: str = field(default="", compare=False)  # the file it was loaded from (figures name it); not saved

    @property
    def display_name(self) -> str:
        """What figures call the model: its file name and kind, or its kind if it was never saved."""
        from pathlib import Path

        return f"{Path(self.source).name} ({self.kind})" if self.source else f"{self.kind} (trained in this session)"

    def summary(self) -> str:
        """What a biologist checks before predicting: kind, channels, classes, validation accuracy."""
        acc = self.metadata.get("val_accuracy")
        acc_text = f"{acc:.0%}" if isinstance(acc, (int, float)) and acc == acc else "not measured"
        verdict = self.metadata.get("verdict")
        gate = ""
        if isinstance(verdict, dict) and verdict.get("n_wells"):
            gate = (f" · held-out test accuracy: {verdict['accuracy']:.0%}"
                    + ("" if verdict.get("learned") else " (NOT LEARNED: do not trust its calls)"))
            z = self.metadata.get("z_prime")  # the phenotype panel's out-of-fold Z′ per phenotype
            if isinstance(z, dict) and z:
                gate += " · held-out Z′: " + ", ".join(
                    f"{k} {v:.2f}" if isinstance(v, (int, float)) else f"{k} n/a" for k, v in z.items())
        return (f"{self.kind} model · channels: {', '.join(self.channels)} · classes: {', '.join(self.classes)}"
                f" · validation accuracy: {acc_text}{gate}")

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def normalization(self) -> str:
        """"plate": every plate is normalised on its own statistics; "model": on the training plate's
        (models saved before per-plate normalisation)."""
        return str(self.metadata.get("normalization", "model"))

    @property
    def learned(self) -> bool | None:
        """Whether the model beat chance on its held-out test wells (None: not known, an older model)."""
        value = self.metadata.get("learned")
        return None if value is None else bool(value)

    def site_source(self, plate, cache_bytes: int = 0):
        """Sites of ``plate`` in the model's channel order, normalised as the model was trained."""
        from .data import SiteSource

        order = self.channel_order(plate.channels)
        return SiteSource(plate, "plate" if self.normalization == "plate" else self.stats, order, cache_bytes)

    def importance(self) -> dict[str, float] | None:
        """Channel name -> importance (α for DCMIX), or None for the all-channels baseline."""
        values = self.model.importance()
        return None if values is None else {c: float(v) for c, v in zip(self.channels, values)}

    def alpha_matrix(self) -> np.ndarray | None:
        """(K, C) α of a DCMIX model (K mixed outputs), for composites."""
        if self.model.mixing is None:
            return None
        return self.model.mixing.alpha().detach().cpu().numpy().astype(np.float32)

    def channel_order(self, plate_channels: list[str]) -> list[int]:
        """Indices into the plate's channels giving the model's order; CheckpointError on mismatch."""
        return match_channels(self.channels, plate_channels)

    def save(self, path: str | os.PathLike) -> None:
        meta = dict(self.metadata)
        meta.update({
            "channels": self.channels,
            "classes": self.classes,
            "stats": self.stats.to_dict(),
            "tile": self.tile,
            "importance": self.importance(),
        })
        save_checkpoint(path, self.model, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> "TrainedModel":
        model, meta = load_checkpoint(path, map_location=device)
        from ..errors import CheckpointError

        try:
            stats = ChannelStats.from_dict(meta["stats"])
            return cls(model.eval(), list(meta["channels"]), list(meta["classes"]), stats, int(meta["tile"]), meta,
                       source=str(path))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path} lacks model metadata ({err}); choose a model saved by napari-dcmix") from None
