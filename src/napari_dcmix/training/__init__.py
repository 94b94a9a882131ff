"""Training, prediction and importance on plates (torch; no Qt). Long work is a generator of events."""

from .config import ConfigField, config_fields
from .device import resolve_device
from .importance import permutation_importance, run_permutation_importance
from .predictor import predict_sites, prediction_record, well_probabilities
from .trained import TrainedModel
from .config import TrainConfig
from .events import TrainEvent
from .trainer import Trainer

__all__ = [
    "ConfigField", "TrainConfig", "config_fields", "TrainEvent", "TrainedModel", "Trainer", "permutation_importance",
    "predict_sites", "prediction_record", "resolve_device", "run_permutation_importance", "well_probabilities",
]
