"""What every CLI command refuses before any work (exit 2, one ``error:`` line, nothing touched).

Numbers outside their bounds: the training flags by ``TrainConfig``'s field spec (the Train dock's
form has the same bounds), the others here. Paths: an output that is one of the command's own inputs
(``predict --out`` naming the model file, ``train --out`` naming the labels CSV) or another of its
outputs would destroy data (``_io.check_not_an_input``).
"""

from __future__ import annotations

from pathlib import Path

from ._io import check_distinct_outputs, check_not_an_input
from .errors import DcmixError

# flag -> (lowest, highest) for the flags that are not training settings
# (sample-plate's --sites/--size/--seed: plate/sample.py; explain's --folds/--seeds: training/explain.py)
BOUNDS = {"montage_k": (1, 100), "n": (1, 10_000)}  # n: suggest --n (training/suggest.MAX_SUGGESTIONS)

EXPLAIN_FILES = ("importance_per_phenotype.csv", "importance_per_phenotype.png")
STAINS_FILES = ("stains.csv", "stains.png")  # explain --stains


def _inputs(args) -> dict[str, str | None]:
    """The files a command reads, by the name the user gave them (flag or argument)."""
    model_reader = args.command in ("predict", "importance", "suggest")
    found = {"the model file given as MODEL": getattr(args, "model", None) if model_reader else None,
             "the labels file given as --labels": getattr(args, "labels", None),
             "the model file given as --init": getattr(args, "init", None)}
    return {name: path for name, path in found.items() if path}


def _outputs(args) -> dict[str, str | Path | None]:
    """The files a command writes, by flag."""
    if args.command in ("train", "predict"):
        outputs = {f"--out {'model' if args.command == 'train' else 'predictions'}": args.out}
        if args.command == "predict":
            outputs.update({"--plate-map": args.plate_map, "--montage": args.montage})
        return outputs
    if args.command == "suggest":
        return {"--out suggestions": args.out}
    if args.command == "explain" and args.out:
        names = EXPLAIN_FILES + (STAINS_FILES if getattr(args, "stains", False) else ())
        return {f"--out ({name})": Path(args.out).expanduser() / name for name in names}
    return {}


def check_command_paths(args) -> None:
    """DcmixError (exit 2, nothing touched) if an output of ``args.command`` is one of its inputs or
    two of its outputs are one file."""
    inputs, outputs = _inputs(args), _outputs(args)
    for what, path in outputs.items():
        if path:
            check_not_an_input(path, inputs, what)
    check_distinct_outputs(outputs)


def check_command_args(args) -> None:
    """DcmixError for a number out of bounds (training settings by their field spec) or an unknown device."""
    from .training.config import check_settings, config_fields
    from .training.device import check_device_name

    if args.command in ("train", "explain"):  # sample-plate's --seed is not a training setting
        check_settings({f.name: getattr(args, f.name) for f in config_fields() if hasattr(args, f.name)})
    for name, (low, high) in BOUNDS.items():
        value = getattr(args, name, None)
        if value is not None and not low <= value <= high:
            flag = "--" + name.replace("_", "-")
            raise DcmixError(f"{flag} {value} is out of range; give a whole number between {low} and {high}")
    if getattr(args, "device", None) is not None:
        try:
            check_device_name(args.device)
        except DcmixError as err:
            raise DcmixError(f"--device: {err}") from None


def _given(args, name: str, default=None) -> bool:
    value = getattr(args, name, None)
    return value is not None and value != default and value is not False


# per command: flag -> (the flags any of which makes it do something, its default in cli_parser)
NEEDS = {"predict": {"plate_map_value": (("plate_map",), "prediction"), "montage_k": (("montage",), 6),
                     "label_column": (("labels",), None)},
         "inspect": {"label_column": (("labels",), None)},
         "importance": {name: (("permutation",), None) for name in ("labels", "label_column", "pattern",
                                                                       "channel_names", "cache_size", "disk_cache",
                                                                       "s3_endpoint", "s3_signed")}}


def check_flags_used(args) -> None:
    """DcmixError for a flag that would do nothing (``--plate-map-value`` without ``--plate-map``…):
    silently ignoring it would let the user believe it took effect."""
    for name, (needs, default) in NEEDS.get(args.command, {}).items():
        if _given(args, name, default) and not any(_given(args, need) for need in needs):
            flag, wanted = "--" + name.replace("_", "-"), " or ".join("--" + n.replace("_", "-") for n in needs)
            raise DcmixError(f"{flag} does nothing without {wanted}; add {wanted}, or leave {flag} out")


def preflight(args) -> None:
    """Everything about ``args`` that can be refused before the plate is opened."""
    check_command_args(args)
    check_flags_used(args)
    check_command_paths(args)
