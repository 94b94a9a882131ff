"""The settings forms are magicgui widgets made from the field spec: every field's widget has the
spec's default, bounds, step, decimals, choices and help, for the Train dock (TrainConfig) and the
Explain dock (FOLDS, SEEDS, STEPS_PER_MODEL), and a form can be built from ExplainConfig the same way."""

from __future__ import annotations

import dataclasses

import pytest
from magicgui.widgets import ComboBox, FloatSpinBox, SpinBox

from napari_dcmix.training import TrainConfig
from napari_dcmix.training.config import ADVANCED, BASIC, config_fields
from napari_dcmix.training.explain import FOLDS, SEEDS, STEPS_PER_MODEL, ExplainConfig
from napari_dcmix.widgets.forms import ConfigForm, make_widget

SPECS = config_fields((BASIC, ADVANCED)) + [FOLDS, SEEDS, STEPS_PER_MODEL]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.name}[{s.min}-{s.max}]")
def test_each_widget_has_the_spec(qtbot, spec):
    widget = make_widget(spec)
    assert widget.name == spec.name and widget.label == spec.label
    assert widget.value == spec.default and widget.tooltip == spec.help
    assert widget.native.toolTip() == spec.help
    if spec.choices:
        assert isinstance(widget, ComboBox) and widget.choices == tuple(spec.choices)
        return
    assert isinstance(widget, SpinBox if spec.type is int else FloatSpinBox)
    native = widget.native
    assert (widget.min, widget.max) == (spec.min, spec.max)
    assert (native.minimum(), native.maximum()) == (spec.min, spec.max)
    assert native.value() == spec.default
    if spec.type is int:
        assert widget.step == (spec.step or 1)
    else:
        assert widget.step == pytest.approx(spec.step)
        if spec.decimals is not None:
            assert native.decimals() == spec.decimals


def test_explain_fields_keep_their_bounds_in_the_native_spin_box(qtbot):
    """The Explain dock drives ``.native`` (a Qt spin box): it clamps to the spec's bounds."""
    folds = make_widget(dataclasses.replace(FOLDS, help="another help"))
    assert folds.native.toolTip() == "another help" and folds.native.value() == 3
    folds.native.setValue(1)
    assert folds.native.value() == FOLDS.min == 2
    folds.native.setValue(1000)
    assert folds.native.value() == FOLDS.max == 50
    steps = make_widget(STEPS_PER_MODEL)
    steps.native.setValue(5)
    assert steps.value == STEPS_PER_MODEL.min == 20


def test_train_form_reads_back_a_train_config(qtbot):
    form = ConfigForm(notes={"device": lambda value: f"→ {value}"})
    assert set(form.widgets) == {s.name for s in config_fields((BASIC, ADVANCED))}
    assert form.config() == TrainConfig() and form.notes["device"].value == "→ auto"
    form.set_values(steps=300, lr=0.01234, device="cpu")
    assert form["lr"].value == pytest.approx(0.01234) and form.notes["device"].value == "→ cpu"
    config = form.config(TrainConfig(label_column="phenotype"), seed=4)
    assert (config.steps, config.device, config.label_column, config.seed) == (300, "cpu", "phenotype", 4)
    form.load(TrainConfig())
    assert form.values() == {name: getattr(TrainConfig(), name) for name in form.widgets}
    form.enabled = False
    assert not form.enabled and not form["probe_fraction"].enabled
    assert not form.collapsible.isExpanded()


def test_explain_config_form(qtbot):
    form = ConfigForm(of=ExplainConfig)
    assert list(form.widgets) == ["folds"]  # seeds is CLI-only
    assert form["folds"].value == FOLDS.default and (form["folds"].min, form["folds"].max) == (FOLDS.min, FOLDS.max)
    assert form["folds"].tooltip == FOLDS.help
    assert form.config() == ExplainConfig()
    form.set_values(folds=5)
    assert form.config(ExplainConfig(reference="DMSO")) == ExplainConfig(reference="DMSO", folds=5)
    assert not form.collapsible.isVisibleTo(form.native)  # no advanced field
