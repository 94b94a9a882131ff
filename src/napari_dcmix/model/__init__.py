"""Channel-importance models (pure torch + numpy; no Qt, no napari): DCMIX and its baselines."""

from .backbones import BACKBONES, build_backbone
from .checkpoint import FORMAT_VERSION, load_checkpoint, match_channels, save_checkpoint
from .classifier import MODEL_KINDS, ChannelClassifier, count_parameters
from .mixing import ChannelMixing, composite

__all__ = [
    "BACKBONES",
    "FORMAT_VERSION",
    "MODEL_KINDS",
    "ChannelClassifier",
    "ChannelMixing",
    "build_backbone",
    "composite",
    "count_parameters",
    "load_checkpoint",
    "match_channels",
    "save_checkpoint",
]
