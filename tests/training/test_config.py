"""TrainConfig's field spec: the one source of the CLI's training flags and the Train dock's form."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from napari_dcmix.cli import _train_config, build_parser
from napari_dcmix.model.backbones import BACKBONES
from napari_dcmix.model.classifier import MODEL_KINDS
from napari_dcmix.training.explain import ExplainConfig
from napari_dcmix.training import TrainConfig, config_fields
from napari_dcmix.training.config import ADVANCED, BASIC, CLI_ONLY, NORMALIZATIONS, parse_classes
from napari_dcmix.training.device import DEVICES

FLAGS = ("--steps --epochs --eval-every --patience --tile --batch-size --lr --mixing-lr --probe-fraction --val-fraction "
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
    assert {s.name for s in config_fields((ADVANCED,))} >= {"eval_every", "patience", "probe_fraction", "test_fraction",
                                                            "normalization", "weight_decay"}
    assert {s.name for s in config_fields((CLI_ONLY,))} == {"epochs", "classes"}  # not in the dock's form


@pytest.mark.parametrize("command", ["train", "explain"])
def test_cli_flags_come_from_the_spec_with_train_config_defaults(command, tmp_path):
    argv = [command, str(tmp_path), "--labels", "l.csv"] + (["--out", "m.pt"] if command == "train" else [])
    args = _parse(*argv)
    defaults = TrainConfig() if command == "train" else ExplainConfig().train  # explain: 1000 steps per model
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


# --- ExplainConfig: --folds and --seeds come from its field spec the same way ---------------------------

def _explain_specs():
    """The numeric ExplainConfig settings (folds, seeds)."""
    from napari_dcmix.training.explain import ExplainConfig

    return [s for s in config_fields(of=ExplainConfig) if s.type is int]


def test_explain_spec_defaults_are_the_dataclass_and_cli_defaults(tmp_path):
    from napari_dcmix.training.explain import FOLDS, SEEDS, ExplainConfig

    specs = _explain_specs()
    assert [s.name for s in specs] == ["folds", "seeds"] and (FOLDS, SEEDS) == tuple(specs)
    assert [s.name for s in config_fields(of=ExplainConfig)] == ["folds", "seeds"]  # one engine: no --engine
    args = _parse("explain", str(tmp_path), "--labels", "l.csv")
    defaults = ExplainConfig()
    actions = {a.dest: a for a in build_parser()._subparsers._group_actions[0].choices["explain"]._actions}
    for spec in specs:
        assert spec.default == getattr(defaults, spec.name) == getattr(args, spec.name), spec.name
        assert spec.type is int and spec.min <= spec.default <= spec.max, spec.name
        action = actions[spec.name]
        assert action.option_strings == [spec.flag] and action.default == spec.default
        assert action.help == f"{spec.help} (default: {spec.default})"
    assert (args.folds, args.seeds) == (3, 1)
    assert _parse("explain", str(tmp_path), "--labels", "l.csv", "--folds", "5", "--seeds", "2").folds == 5


@pytest.mark.parametrize("argv, message", [
    (["--folds", "1"], "1 folds: explain holds out every well once, so it needs 2 to 50 folds (3 or more are "
                       "recommended)"),
    (["--folds", "51"], "51 folds: explain holds out every well once, so it needs 2 to 50 folds (3 or more are "
                        "recommended)"),
    (["--seeds", "0"], "0 seeds: give 1 to 50 seeds per fold (repeats = folds x seeds)"),
    (["--seeds", "51"], "51 seeds: give 1 to 50 seeds per fold (repeats = folds x seeds)"),
])
def test_explain_bounds_are_refused_before_any_work(argv, message, tmp_path, capsys):
    from napari_dcmix.cli import main

    # the plate does not exist: refused while parsing, before anything is opened
    code = main(["explain", str(tmp_path / "no-plate"), "--labels", str(tmp_path / "no.csv"), *argv])
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err and not out
    assert err.strip().splitlines() == [f"error: {message}"]


def test_explain_bounds_are_those_of_the_spec():
    from napari_dcmix.errors import DcmixError
    from napari_dcmix.training.config import check_settings
    from napari_dcmix.training.explain import ExplainConfig

    for spec in _explain_specs():
        check_settings({spec.name: spec.min}, of=ExplainConfig)
        check_settings({spec.name: spec.max}, of=ExplainConfig)
        for value in (spec.min - 1, spec.max + 1):
            with pytest.raises(DcmixError, match=f"{value:g} {spec.name}: .*{spec.min:g} to {spec.max:g}"):
                check_settings({spec.name: value}, of=ExplainConfig)
