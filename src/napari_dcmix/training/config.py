"""Training settings and the one description of the user-settable ones (no Qt).

Each user-settable :class:`TrainConfig` field carries its help text, bounds, choices and where it is
shown in ``dataclasses.field(metadata=...)``; :func:`config_fields` reads them back. The CLI's
``train``/``explain`` flags (``cli_parser.py``) and the docks' forms (``widgets/forms.py``) are
generated from it, so their defaults, bounds, choices and help cannot drift apart; ExplainConfig
declares its own fields (folds, seeds) the same way.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
import math
from typing import Any, Callable

from ..errors import DcmixError
from ..model.backbones import BACKBONES
from ..model.classifier import MODEL_KINDS
from .device import DEVICES

NORMALIZATIONS = ("plate", "model")

BASIC, ADVANCED, CLI_ONLY = "basic", "advanced", "cli"  # the dock's form, its "Advanced" section, the CLI alone


def parse_classes(text: str | None) -> list[str] | None:
    """``--classes a,b`` -> ["a", "b"]; empty -> None (all labeled classes)."""
    names = [c.strip() for c in (text or "").split(",") if c.strip()]
    return names or None


def _ui(help: str, label: str = "", where: str = BASIC, *, min: float | None = None, max: float | None = None,
        step: float | None = None, decimals: int | None = None, choices: tuple[str, ...] | None = None,
        cli_choices: bool = True, parse: Callable[[str], Any] | None = None, metavar: str | None = None,
        out_of_range: str | None = None) -> dict:
    return {"dcmix": dict(help=help, label=label, where=where, min=min, max=max, step=step, decimals=decimals,
                          choices=choices, cli_choices=cli_choices, parse=parse, metavar=metavar,
                          out_of_range=out_of_range)}


def setting(default, **ui):
    """A user-settable field: its default and what the CLI flag and the dock's widget are made from."""
    return field(default=default, metadata=_ui(**ui))


@dataclass
class TrainConfig:
    model: str = setting("dcmix", help="classifier: DCMIX (learned channel mixing) or a baseline",
                          choices=MODEL_KINDS)
    backbone: str = setting("small", help="the CNN after the channel mixing", choices=tuple(BACKBONES))
    # optimiser steps: the budget, whatever the plate's size (converged runs stop earlier)
    steps: int = setting(1500, help="optimiser steps: the budget, whatever the plate's size; training stops "
                          "earlier when the held-out loss stops improving", min=1, max=1_000_000, step=100)
    epochs: int | None = setting(None, help="expert: passes over the training tiles instead of --steps",
                                  where=CLI_ONLY, min=1, max=100_000)
    eval_every: int = setting(50, help="steps between held-out evaluations (one point of the curves)",
                               label="evaluate every (steps)", where=ADVANCED, min=1, max=100_000, step=10)
    patience: int = setting(6, help="evaluations without a better held-out loss before stopping early",
                             where=ADVANCED, min=1, max=100_000)
    tile: int = setting(64, help="tile size in pixels", label="tile size (px)", min=16, max=1024, step=16)
    batch_size: int = setting(32, help="tiles per optimiser step", label="batch size", min=1, max=1024)
    lr: float = setting(3e-3, help="learning rate of the network", label="learning rate", min=1e-5, max=1.0,
                         step=5e-4, decimals=5)
    # α's own lr: 0.1 locked onto bright channels, the backbone's barely moves α
    mixing_lr: float = setting(0.05, help="learning rate of the α logits", label="α learning rate", min=1e-4,
                                max=10.0, step=0.01, decimals=4)
    # α starts from what every channel alone answered in the first part of the run (training/probe.py); 0.3:
    # on the sample plate's ER and Mito phenotypes single-channel evidence appears after 300-500 steps
    probe_fraction: float = setting(0.3, help="share of the budget in which each channel is tried alone before α "
                                     "starts from what each one showed (0: α starts uniform, plain DCMIX)",
                                     label="probe channels alone (share of steps)", where=ADVANCED, min=0.0, max=0.9,
                                     step=0.05, decimals=2)
    weight_decay: float = setting(1e-4, help="weight decay of the optimiser", label="weight decay",
                                   where=ADVANCED, min=0.0, max=1.0, step=1e-4, decimals=6)
    val_fraction: float = setting(0.2, help="wells that choose the checkpoint", label="validation fraction",
                                   min=0.0, max=0.5, step=0.05, decimals=2)
    test_fraction: float = setting(0.2, help="wells never trained on, that judge whether the model learned "
                                    "anything", label="test fraction", where=ADVANCED, min=0.0, max=0.5,
                                    step=0.05, decimals=2)
    seed: int = setting(0, help="random seed (well split, tiles, initial weights)", min=0, max=2**31 - 1)
    device: str = setting("auto", help=f"where to train: {', '.join(DEVICES)} or cuda:N", choices=DEVICES,
                           cli_choices=False)
    coverage: float = 1.0  # random tiles per site cover its area this many times per pass
    classes: list[str] | None = setting(None, help="comma-separated classes to use (default: all labeled)",
                                         where=CLI_ONLY, parse=parse_classes, metavar="CLASS,…")
    temperature: float = 1.0
    n_mix_outputs: int = 0  # 0: one blend for two classes, else one per phenotype up to 3
    label_column: str = "label"
    reference: str | None = None  # the reference class of a dcmix-coupled model (explain sets it)
    #: the channels the model sees (None: all): the others are never read into its input, so a model
    #: trained without a stain cannot use it (``training/stains.py`` retrains on channel subsets)
    input_channels: list[str] | None = None
    #: share of the budget after which a run whose held-out loss never left the chance level stops
    #: (None: it gets the whole budget); the stain search's many single-channel runs use it
    chance_stop: float | None = None
    normalization: str = setting("plate", help="plate: every plate on its own statistics; model: the training "
                                  "plate's", where=ADVANCED, choices=NORMALIZATIONS)


@dataclass(frozen=True)
class ConfigField:
    """One user-settable field (of TrainConfig, ExplainConfig…): what the CLI flag and the dock's widget
    are made from."""

    name: str
    type: type  # int, float or str (``int | None`` -> int)
    default: Any
    help: str
    label: str
    where: str  # BASIC, ADVANCED or CLI_ONLY
    min: float | None = None
    max: float | None = None
    step: float | None = None
    decimals: int | None = None
    choices: tuple[str, ...] | None = None
    cli_choices: bool = True  # argparse restricts the value to ``choices`` (not for device: cuda:1 is fine)
    parse: Callable[[str], Any] | None = None  # CLI text -> value, when not just ``type``
    metavar: str | None = None
    # the refusal of a value outside [min, max] when the generic one would not say why the bounds are what
    # they are: a format string with {value}, {min}, {max} and {name} (the flag or the dock's label)
    out_of_range: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def in_form(self) -> bool:
        return self.where in (BASIC, ADVANCED)


def _base_type(hint) -> type:
    """``int | None`` -> int, ``list[str] | None`` -> list."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def config_fields(where: tuple[str, ...] = (BASIC, ADVANCED, CLI_ONLY), of: type | None = None) -> list[ConfigField]:
    """The user-settable fields of ``of`` (TrainConfig, or another settings dataclass declared with
    ``setting``, e.g. ExplainConfig) in their order, optionally only those shown ``where``."""
    of = of or TrainConfig
    hints = typing.get_type_hints(of)
    out = []
    for f in dataclasses.fields(of):
        ui = f.metadata.get("dcmix")
        if ui is None or ui["where"] not in where:
            continue
        out.append(ConfigField(name=f.name, type=_base_type(hints[f.name]), default=f.default,
                               **{**ui, "label": ui["label"] or f.name.replace("_", " ")}))
    return out


def field_spec(name: str, of: type | None = None) -> ConfigField:
    for spec in config_fields(of=of):
        if spec.name == name:
            return spec
    raise KeyError(name)


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_value(spec: ConfigField, value, name: str | None = None) -> None:
    """DcmixError if ``value`` is outside ``spec``'s bounds (or NaN/infinite), saying what to give.

    ``name`` is how the user knows the field (the CLI flag by default; the docks pass the label).
    Values are never clamped: a fraction of 20 is a percentage, not "as much as allowed".
    """
    name = name or spec.flag
    if value is None or spec.type not in (int, float) or isinstance(value, bool):
        return
    if spec.min is None or spec.max is None:
        return
    span = f"between {_text(spec.min)} and {_text(spec.max)}"
    if isinstance(value, float) and not math.isfinite(value):
        raise DcmixError(f"{name} {_text(value)} is not a finite number; give a value {span} ({spec.help})")
    if spec.min <= value <= spec.max:
        return
    if spec.name.endswith("_fraction") and 1 < value <= 100:
        raise DcmixError(f"{name} {_text(value)} looks like a percentage; use {_text(value / 100)} (fractions are "
                         f"{span})")
    if spec.out_of_range:
        raise DcmixError(spec.out_of_range.format(value=_text(value), min=_text(spec.min), max=_text(spec.max),
                                                  name=name))
    raise DcmixError(f"{name} {_text(value)} is out of range; give a value {span} ({spec.help})")


def check_settings(values: dict, name: Callable[[ConfigField], str] = lambda spec: spec.flag,
                   of: type | None = None) -> None:
    """Check the user-settable fields present in ``values`` (CLI arguments or a dock's form) against
    the field spec of ``of`` (TrainConfig by default), and the rules between fields; DcmixError naming
    the first bad one."""
    specs = {spec.name: spec for spec in config_fields(of=of)}
    for key, value in values.items():
        if key in specs:
            check_value(specs[key], value, name(specs[key]))
    if of not in (None, TrainConfig):
        return
    val, test = values.get("val_fraction"), values.get("test_fraction")
    if val is not None and test is not None and val + test >= 1:
        raise DcmixError(f"{name(specs['val_fraction'])} {_text(val)} and {name(specs['test_fraction'])} "
                         f"{_text(test)} leave no well to train on; together they must be below 1")


def check_config(config: TrainConfig, name: Callable[[ConfigField], str] = lambda spec: spec.flag) -> TrainConfig:
    """``config`` itself if every user-settable field is within bounds (:func:`check_settings`)."""
    check_settings({spec.name: getattr(config, spec.name) for spec in config_fields()}, name)
    return config
