"""The ``napari-dcmix`` command line: subcommands, their flags and help. The training flags come from
``TrainConfig``'s field spec (``training/config.py``), the same spec that builds the Train dock's form;
explain's --folds/--seeds from ``ExplainConfig``'s.
What each command does lives in ``cli``.
"""

from __future__ import annotations

import argparse

from . import __version__
from .errors import DcmixError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other user error
        raise DcmixError(f"{message} (see '{self.prog} --help')")


def build(commands: dict) -> argparse.ArgumentParser:
    """``commands``: subcommand name -> the function that runs it (``cli.cmd_*``)."""
    p = _Parser(prog="napari-dcmix", description="DCMIX channel importance for high-content screens.")
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_sample_plate, _add_inspect, _add_train, _add_explain, _add_predict, _add_suggest, _add_importance,
                _add_demo):
        add(sub, commands)  # in this order: the order --help lists them
    return p


def _channel_names_arg(q) -> None:
    """--channel-names, shared by every command that reads a plate."""
    q.add_argument("--channel-names", metavar="OLD=NEW,…", help="rename channels, e.g. w1=DNA,w2=ER: the names layers, CSVs and models use")


def _plate_args(q, labels_required=False, labels_help="CSV with a well column and a label column") -> None:
    """How to read a plate and its labels: the same flags for every command that opens one."""
    q.add_argument("--pattern", help="regex with named groups well (or row+col), channel, optional site, plate")
    _channel_names_arg(q)
    _remote_args(q)
    q.add_argument("--labels", required=labels_required, help=labels_help)
    q.add_argument("--label-column", help="column of the labels CSV holding the classes")
    q.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _remote_args(q) -> None:
    """How a plate at a URL (http(s)://, s3://) is read; the NAPARI_DCMIX_* environment variables set the same."""
    r = q.add_argument_group("plates at a URL (OME-Zarr over http(s):// or s3://)")
    r.add_argument("--cache-size", metavar="SIZE", help="memory kept for fetched chunks while the plate is open, "
                   "e.g. 512MiB, 4GiB; 0: none (default: 1GiB, or NAPARI_DCMIX_CACHE_SIZE)")
    r.add_argument("--disk-cache", nargs="?", const="default", metavar="DIR",
                   help="also keep fetched chunks on disk, in DIR (default folder: $XDG_CACHE_HOME/napari-dcmix/remote), "
                        "so a second run fetches nothing; never beside the data")
    r.add_argument("--s3-endpoint", metavar="URL", help="an S3-compatible server for s3:// plates, e.g. "
                   "https://uk1s3.embassy.ebi.ac.uk (IDR)")
    r.add_argument("--s3-signed", action="store_true", help="sign s3:// requests with your AWS credentials "
                   "(a private bucket); default: anonymous, for public buckets")


class _InBounds(argparse.Action):
    """Stores a setting's value once its field spec (``of``) accepts it: out of bounds is refused while
    parsing, before any work, with the spec's one-line message (``check_settings``)."""

    def __init__(self, *args, of: type, **kwargs):
        super().__init__(*args, **kwargs)
        self.of = of

    def __call__(self, parser, namespace, values, option_string=None):
        from .training.config import check_settings

        check_settings({self.dest: values}, of=self.of)
        setattr(namespace, self.dest, values)


def _setting_args(q, of: type | None = None, skip=(), check: bool = False, specs: dict | None = None) -> None:
    """The flags of a settings dataclass's field spec (``of``: TrainConfig by default): the docks' forms
    show the same defaults. ``check``: refuse out-of-range numbers while parsing (the training flags are
    checked by ``cli_checks.preflight`` instead); ``specs``: fields a command declares its own way
    (explain's steps per model)."""
    from .training import config_fields

    for f in config_fields(of=of):
        if f.name in skip:
            continue
        f = (specs or {}).get(f.name, f)
        default = "" if f.default is None else f" (default: {f.default})"
        kwargs = dict(default=f.default, help=f.help + default, metavar=f.metavar)
        if f.parse is not None or f.type is not str:
            kwargs["type"] = f.parse or f.type
        if f.choices and f.cli_choices:
            kwargs["choices"] = list(f.choices)
            kwargs.pop("metavar")
        if check and f.type in (int, float) and f.min is not None and f.max is not None:
            kwargs.update(action=_InBounds, of=of)
        q.add_argument(f.flag, **kwargs)


def _train_args(q, skip=(), specs: dict | None = None) -> None:
    """The training flags, from TrainConfig's field spec: the dock's form shows the same defaults."""
    _setting_args(q, skip=skip, specs=specs)


def _add_sample_plate(sub, commands: dict) -> None:
    """``sample-plate``: write the synthetic plate."""
    s = sub.add_parser("sample-plate", help="write the synthetic Cell Painting plate with a known answer")
    s.add_argument("out")
    s.add_argument("--wells", type=int, default=96, choices=[96, 384])
    s.add_argument("--sites", type=int, default=2)
    s.add_argument("--size", type=int, default=160, help="site size in pixels")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=commands["sample-plate"])


def _add_inspect(sub, commands: dict) -> None:
    """``inspect``: report what is on a plate."""
    s = sub.add_parser("inspect", help="what is on a plate: layout, wells, sites, channels, labels, problems")
    s.add_argument("plate")
    _plate_args(s)
    s.add_argument("--check", action="store_true", help="read every site: the full data-quality report")
    s.set_defaults(func=commands["inspect"])


def _add_train(sub, commands: dict) -> None:
    """``train``: one classifier on a labeled plate."""
    s = sub.add_parser("train", help="train a DCMIX (or baseline) classifier on a labeled plate")
    s.add_argument("plate")
    _plate_args(s, labels_required=True)
    s.add_argument("--out", required=True, help="model file to write (.pt)")
    _train_args(s)
    s.add_argument("--init", help="fine-tune from this model file (channels matched by name)")
    s.set_defaults(func=commands["train"])


def _add_explain(sub, commands: dict) -> None:
    """``explain``: per-phenotype importance against the negative control (always the DCMIX model)."""
    s = sub.add_parser("explain", help="channel importance per phenotype: each phenotype against the negative control")
    s.add_argument("plate")
    _plate_args(s, labels_required=True)
    s.add_argument("--reference", help="the negative-control class (default: guessed from names like control, DMSO, NT)")
    s.add_argument("--out", help="folder for importance_per_phenotype.csv and .png (outside the plate folder)")
    _explain_args(s)
    s.add_argument("--no-all", action="store_true", help="leave out the 'all phenotypes' row (the fold models judged on every class at once)")
    s.add_argument("--stains", action="store_true",
                   help="then retrain to ask which stains can be dropped: each channel alone, without it, the smallest "
                        "panel per phenotype and for the plate, and the feature forest's second opinion (many models)")
    s.add_argument("--keep", default="", metavar="CH,…",
                   help="with --stains: stains every panel keeps whatever the answer (e.g. DNA for segmentation)")
    from .training.explain import STEPS_PER_MODEL

    _train_args(s, skip=("model",), specs={"steps": STEPS_PER_MODEL})
    s.set_defaults(func=commands["explain"], model="dcmix")


def _explain_args(q) -> None:
    """--folds and --seeds, from ExplainConfig's field spec (the Explain dock's folds field has the same
    default and bounds); out of bounds is refused while parsing."""
    from .training.explain import ExplainConfig

    _setting_args(q, of=ExplainConfig, check=True)


def _add_predict(sub, commands: dict) -> None:
    """``predict``: apply a model to a plate, with its optional Z′, plate map and montage."""
    s = sub.add_parser("predict", help="class probabilities per well (or site) of a plate")
    s.add_argument("model")
    s.add_argument("plate")
    s.add_argument("--out", required=True, help="CSV to write")
    _plate_args(s, labels_help="labels CSV (well and label columns): also report each phenotype's Z′ against "
                               "the negative control, on the per-well predicted P(phenotype)")
    s.add_argument("--reference", help="the negative-control class of --labels for Z′ (default: guessed from "
                                       "names like control, DMSO, NT)")
    s.add_argument("--per-site", action="store_true")
    s.add_argument("--format", default="csv", choices=["csv", "pycytominer"],
                   help="pycytominer: one row per site with Metadata_Plate/Well/Site and DCMIX_p_<class>")
    s.add_argument("--plate-map", metavar="FILE.png", help="also draw a plate heat map of the predictions")
    s.add_argument("--plate-map-value", default="prediction", metavar="prediction|CLASS",
                   help="colour wells by the predicted class (default) or by one class's probability")
    s.add_argument("--montage", metavar="FILE.png", help="also draw the most confident sites per class")
    s.add_argument("--montage-k", type=int, default=6, metavar="K", help="sites per class in the montage")
    s.add_argument("--device", default="auto")
    s.set_defaults(func=commands["predict"])


def _add_suggest(sub, commands: dict) -> None:
    """``suggest``: the unlabelled wells whose labels would teach the model most."""
    s = sub.add_parser("suggest", help="which unlabelled wells to label next: uncertain, disputed between the "
                                       "panel's members, and unlike each other")
    s.add_argument("model")
    s.add_argument("plate")
    _plate_args(s, labels_required=True, labels_help="labels CSV (well and label columns): its labelled wells are "
                                                     "never suggested")
    s.add_argument("--n", type=int, default=8, metavar="N", help="how many wells to suggest (default: 8)")
    s.add_argument("--out", help="CSV to write (rank, well, score, uncertainty, disagreement, prediction, reason)")
    s.add_argument("--device", default="auto")
    s.set_defaults(func=commands["suggest"])


def _add_importance(sub, commands: dict) -> None:
    """``importance``: a model's α, optionally with permutation importance on a plate."""
    s = sub.add_parser("importance", help="channel importance of a model (α), optionally with permutation importance")
    s.add_argument("model")
    s.add_argument("--permutation", metavar="PLATE", help="also measure permutation importance on this plate")
    _plate_args(s)
    s.add_argument("--device", default="auto")
    s.set_defaults(func=commands["importance"])


def _add_demo(sub, commands: dict) -> None:
    """``demo``: napari with the docks (or unattended screenshots)."""
    s = sub.add_parser("demo", help="open napari with the docks and the sample plate")
    s.add_argument("--plate", help="plate folder (or an OME-Zarr plate's URL) to open instead of the sample plate")
    s.add_argument("--screenshots", metavar="DIR", help="run the workflow unattended and save screenshots here")
    s.set_defaults(func=commands["demo"])
