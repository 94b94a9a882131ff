"""TrainConfig's field spec: the one source of the CLI's training flags and the Train dock's form."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from napari_dcmix.cli import _train_config, build_parser
from napari_dcmix.model.backbones import BACKBONES
from napari_dcmix.model.classifier import MODEL_KINDS
from napari_dcmix.training import TrainConfig, config_fields
from napari_dcmix.training.config import ADVANCED, BASIC, CLI_ONLY, NORMALIZATIONS, parse_classes
from napari_dcmix.training.device import DEVICES

FLAGS = ("--steps --epochs --eval-every --patience --tile --batch-size --lr --mixing-lr --exploration --val-fraction "
         "--test-fraction --normalization --backbone --device --seed --classes").split()


def _parse(*argv):
    return build_parser().parse_args(list(argv))


def test_every_spec_field_is_a_train_config_field_with_its_default_and_type():
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    hints = typing.get_type_hints(TrainConfig)
    defaults = TrainConfig()
    specs = config_fields()
    assert len({s.name for s in specs}) == len(specs)
    for spec in specs:
        assert spec.name in fields
        assert spec.default == getattr(defaults, spec.name)
        assert spec.type.__name__ in str(hints[spec.name])  # int for ``int | None``, list for ``list[str] | None``
        assert spec.default is None or isinstance(spec.default, spec.type)
        assert spec.help and spec.where in (BASIC, ADVANCED, CLI_ONLY)
        if spec.in_form and not spec.choices:
            assert spec.type in (int, float) and spec.min <= spec.default <= spec.max, spec.name
    by_name = {s.name: s for s in specs}
    assert by_name["model"].choices == MODEL_KINDS and by_name["backbone"].choices == tuple(BACKBONES)
    assert by_name["device"].choices == DEVICES and by_name["normalization"].choices == NORMALIZATIONS
    assert {s.name for s in config_fields((ADVANCED,))} >= {"eval_every", "patience", "exploration", "test_fraction",
                                                            "normalization", "weight_decay"}
    assert {s.name for s in config_fields((CLI_ONLY,))} == {"epochs", "classes"}  # not in the dock's form


@pytest.mark.parametrize("command", ["train", "explain"])
def test_cli_flags_come_from_the_spec_with_train_config_defaults(command, tmp_path):
    argv = [command, str(tmp_path), "--labels", "l.csv"] + (["--out", "m.pt"] if command == "train" else [])
    args = _parse(*argv)
    defaults = TrainConfig()
    for spec in config_fields():
        assert getattr(args, spec.name) == getattr(defaults, spec.name), spec.name
    options = {o for a in build_parser()._subparsers._group_actions[0].choices[command]._actions
               for o in a.option_strings}
    assert set(FLAGS) <= options and {s.flag for s in config_fields() if s.name != "model"} <= options
    assert ("--model" in options) == (command == "train")  # explain always trains DCMIX
    labels = type("L", (), {"column": "phenotype"})()
    assert _train_config(args, labels) == dataclasses.replace(defaults, label_column="phenotype")


def test_cli_values_reach_the_config(tmp_path):
    args = _parse("train", str(tmp_path), "--labels", "l.csv", "--out", "m.pt", "--steps", "7", "--lr", "0.01",
                  "--classes", "a, b,", "--device", "cuda:1", "--model", "all-channels", "--epochs", "2",
                  "--normalization", "model", "--weight-decay", "0")
    config = _train_config(args, type("L", (), {"column": "label"})())
    assert (config.steps, config.lr, config.classes, config.device) == (7, 0.01, ["a", "b"], "cuda:1")
    assert (config.model, config.epochs, config.normalization, config.weight_decay) == ("all-channels", 2, "model", 0)
    assert parse_classes("") is None


def test_train_help_shows_the_spec(capsys, tmp_path):
    with pytest.raises(SystemExit):
        _parse("train", "--help")
    text = " ".join(capsys.readouterr().out.split())
    for spec in config_fields():
        assert spec.flag in text
        if spec.default is not None:
            assert f"(default: {spec.default})" in text
    assert "{dcmix,all-channels,se-attention}" in text and "{plate,model}" in text
