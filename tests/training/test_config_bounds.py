"""Every numeric training setting has bounds in the field spec, which the CLI and the Train dock both
enforce: never clamped, NaN and infinity refused, a percentage recognised as one."""

from __future__ import annotations

import math

import pytest

from napari_dcmix.errors import DcmixError
from napari_dcmix.training import TrainConfig
from napari_dcmix.training.config import check_config, check_settings, check_value, config_fields


def test_every_numeric_field_has_finite_bounds():
    numeric = [f for f in config_fields() if f.type in (int, float)]
    assert {f.name for f in numeric} >= {"steps", "epochs", "eval_every", "patience", "tile", "batch_size", "lr",
                                         "mixing_lr", "probe_fraction", "weight_decay", "val_fraction",
                                         "test_fraction", "seed"}
    for f in numeric:
        assert f.min is not None and f.max is not None and math.isfinite(f.min) and math.isfinite(f.max), f.name
        assert f.min <= (f.default if f.default is not None else f.min) <= f.max, f.name


def test_the_defaults_pass():
    assert check_config(TrainConfig()) == TrainConfig()


@pytest.mark.parametrize("name", [f.name for f in config_fields() if f.type is float])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(name, value):
    with pytest.raises(DcmixError, match="is not a finite number"):
        check_settings({name: value})


@pytest.mark.parametrize("f", [f for f in config_fields() if f.type in (int, float)], ids=lambda f: f.name)
def test_just_outside_the_bounds_is_refused_inside_passes(f):
    below = f.min - (1 if f.type is int else abs(f.min) * 0.01 + 1e-9)
    above = f.max + (1 if f.type is int else abs(f.max) * 0.01 + 1e-9)
    for value in (below, above):
        with pytest.raises(DcmixError, match=f"^{f.flag} "):
            check_value(f, f.type(value) if f.type is int else value)
    check_value(f, f.min)
    check_value(f, f.max)


def test_a_percentage_and_the_dock_labels():
    with pytest.raises(DcmixError, match=r"--val-fraction 20 looks like a percentage; use 0\.2"):
        check_settings({"val_fraction": 20})
    with pytest.raises(DcmixError, match="^validation fraction 0.5 and test fraction 0.5 leave no well"):
        check_config(TrainConfig(val_fraction=0.5, test_fraction=0.5), name=lambda spec: spec.label)
