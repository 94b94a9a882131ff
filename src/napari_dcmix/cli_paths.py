"""Which files each CLI command reads and writes, checked before any work: an output that is one of
the command's own inputs (``predict --out`` naming the model file, ``train --out`` naming the labels
CSV) or another of its outputs would destroy data, so it is refused (``_io.check_not_an_input``).
"""

from __future__ import annotations

from pathlib import Path

from ._io import check_distinct_outputs, check_not_an_input

EXPLAIN_FILES = ("importance_per_phenotype.csv", "importance_per_phenotype.png")


def _inputs(args) -> dict[str, str | None]:
    """The files a command reads, by the name the user gave them (flag or argument)."""
    found = {"the model file given as MODEL": getattr(args, "model", None) if args.command in ("predict", "importance")
             else None,
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
    if args.command == "explain" and args.out:
        return {f"--out ({name})": Path(args.out).expanduser() / name for name in EXPLAIN_FILES}
    return {}


def check_command_paths(args) -> None:
    """DcmixError (exit 2, nothing touched) if an output of ``args.command`` is one of its inputs or
    two of its outputs are one file."""
    inputs, outputs = _inputs(args), _outputs(args)
    for what, path in outputs.items():
        if path:
            check_not_an_input(path, inputs, what)
    check_distinct_outputs(outputs)
