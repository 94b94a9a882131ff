"""The CLI's input matrix: every flag's bounds and every output path that names an input, one bad
thing per row. Each row is refused with exit code 2 and one exact ``error: …`` line (no traceback),
or accepted with a named ``warning:``; and no file that existed before (plate, labels CSV, model) has
changed, and a refused command leaves no file behind."""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest
import tifffile
import torch
from conftest import SIGNAL_PATTERN, write_imagexpress, write_signal_plate

from napari_dcmix.cli import main
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import ChannelStats
from napari_dcmix.training import TrainedModel


def snapshot(root) -> dict[str, str]:
    """Every file under ``root`` (links too, by what they point at) with the SHA-256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_signal_plate(tmp_path_factory.mktemp("matrix") / "plate", wells_per_class=3, sites=1, size=32)


@pytest.fixture
def paths(pristine, tmp_path):
    """tmp/plate (3 channels ch0-ch2, 6 wells of 32 px), tmp/labels.csv, tmp/model.pt (untrained)."""
    shutil.copytree(pristine[0], tmp_path / "plate")
    shutil.copy(pristine[1], tmp_path / "labels.csv")
    torch.manual_seed(0)
    stats = ChannelStats(["ch0", "ch1", "ch2"], [900] * 3, [1100] * 3)
    TrainedModel(ChannelClassifier("dcmix", 3, 2).eval(), ["ch0", "ch1", "ch2"], ["negative", "positive"], stats,
                 16).save(tmp_path / "model.pt")
    return {"plate": tmp_path / "plate", "labels": tmp_path / "labels.csv", "model": tmp_path / "model.pt",
            "tmp": tmp_path}


def expand(argv, paths) -> list[str]:
    return [str(a).format(**{k: str(v) for k, v in paths.items()}) for a in argv]


PLATE = ["--pattern", SIGNAL_PATTERN]
LABELS = ["--labels", "{labels}", "--label-column", "phenotype"]
TRAIN = ["train", "{plate}", *PLATE, *LABELS, "--out", "{tmp}/m.pt", "--tile", "16", "--steps", "3", "--device", "cpu"]
EXPLAIN = ["explain", "{plate}", *PLATE, *LABELS, "--steps", "3", "--tile", "16", "--device", "cpu"]
PREDICT = ["predict", "{model}", "{plate}", *PLATE, "--out", "{tmp}/p.csv", "--device", "cpu"]
INSPECT = ["inspect", "{plate}", *PLATE]
SUGGEST = ["suggest", "{model}", "{plate}", *PLATE, *LABELS, "--device", "cpu"]
SAMPLE = ["sample-plate", "{tmp}/sample", "--size", "48", "--sites", "1"]
COLLIDE = "path {path} is {name}; it would be overwritten — choose another file name"

# row id -> (argv, the error line after "error: "; "..." ends a prefix, else the whole line)
ERRORS = {
    # --- an output that is an input ------------------------------------------------------------------
    "predict --out is the model": (PREDICT + ["--out", "{model}"], "--out predictions " + COLLIDE.format(
        path="{model}", name="the model file given as MODEL")),
    "predict --plate-map is the model": (PREDICT + ["--plate-map", "{model}"], "--plate-map " + COLLIDE.format(
        path="{model}", name="the model file given as MODEL")),
    "predict --montage is the model": (PREDICT + ["--montage", "{model}"], "--montage " + COLLIDE.format(
        path="{model}", name="the model file given as MODEL")),
    "predict --out is a symlink to the model": (PREDICT + ["--out", "{tmp}/link.pt"], "--out predictions " +
                                                COLLIDE.format(path="{model}", name="the model file given as MODEL")),
    "predict --out is a hard link to the model": (PREDICT + ["--out", "{tmp}/hard.pt"], "--out predictions path "
                                                  "{tmp}/hard.pt is the model file given as MODEL; it would be "
                                                  "overwritten — choose another file name"),
    "predict --out through ../ is the model": (PREDICT + ["--out", "{plate}/../model.pt"], "--out predictions " +
                                               COLLIDE.format(path="{model}", name="the model file given as MODEL")),
    "predict --plate-map is --out": (PREDICT + ["--out", "{tmp}/p.png", "--plate-map", "{tmp}/p.png"],
                                     "--plate-map and --out predictions are both {tmp}/p.png; one would overwrite "
                                     "the other — give each output its own file name"),
    "predict --montage is --plate-map": (PREDICT + ["--plate-map", "{tmp}/f.png", "--montage", "{tmp}/f.png"],
                                         "--montage and --plate-map are both {tmp}/f.png; ..."),
    "train --out is the labels": (TRAIN + ["--out", "{labels}"], "--out model " + COLLIDE.format(
        path="{labels}", name="the labels file given as --labels")),
    "train --out is --init": (TRAIN + ["--out", "{model}", "--init", "{model}"], "--out model " + COLLIDE.format(
        path="{model}", name="the model file given as --init")),
    "explain --out holds the labels as its CSV": (EXPLAIN + ["--labels", "{tmp}/ex/importance_per_phenotype.csv",
                                                             "--out", "{tmp}/ex"],
                                                  "--out (importance_per_phenotype.csv) path "
                                                  "{tmp}/ex/importance_per_phenotype.csv is the labels file given as "
                                                  "--labels; ..."),
    "train --out inside the plate": (TRAIN + ["--out", "{plate}/m.pt"], "{plate}/m.pt is inside the plate folder ..."),
    # --- training settings: the field spec's bounds ----------------------------------------------------
    "--seed -1": (TRAIN + ["--seed", "-1"], "--seed -1 is out of range; give a value between 0 and 2147483647 ..."),
    "--seed 2**31": (TRAIN + ["--seed", str(2**31)], "--seed 2147483648 is out of range; ..."),
    "--val-fraction 20": (TRAIN + ["--val-fraction", "20"], "--val-fraction 20 looks like a percentage; use 0.2 "
                          "(fractions are between 0 and 0.5)"),
    "--test-fraction 30": (TRAIN + ["--test-fraction", "30"], "--test-fraction 30 looks like a percentage; use 0.3 ..."),
    "--val-fraction -0.1": (TRAIN + ["--val-fraction", "-0.1"], "--val-fraction -0.1 is out of range; ..."),
    "--val-fraction nan": (TRAIN + ["--val-fraction", "nan"], "--val-fraction nan is not a finite number; ..."),
    "fractions sum to 1": (TRAIN + ["--val-fraction", "0.5", "--test-fraction", "0.5"],
                           "--val-fraction 0.5 and --test-fraction 0.5 leave no well to train on; together they "
                           "must be below 1"),
    "--steps 0": (TRAIN + ["--steps", "0"], "--steps 0 is out of range; give a value between 1 and 1000000 ..."),
    "--steps abc": (TRAIN + ["--steps", "abc"], "argument --steps: invalid int value: 'abc' ..."),
    "--epochs 0": (TRAIN + ["--epochs", "0"], "--epochs 0 is out of range; ..."),
    "--eval-every 0": (TRAIN + ["--eval-every", "0"], "--eval-every 0 is out of range; ..."),
    "--patience 0": (TRAIN + ["--patience", "0"], "--patience 0 is out of range; ..."),
    "--tile 8": (TRAIN + ["--tile", "8"], "--tile 8 is out of range; give a value between 16 and 1024 ..."),
    "--tile 4096": (TRAIN + ["--tile", "4096"], "--tile 4096 is out of range; ..."),
    "--tile 64 on 32 px sites": (TRAIN + ["--tile", "64"], "the tile (64 px) is larger than the sites (32×32 px): 75% "
                                 "of every tile is padding, so the model would learn mostly from padding; choose a "
                                 "tile of 32 px or less (--tile in the CLI, tile size in the Train dock)"),
    "--batch-size 0": (TRAIN + ["--batch-size", "0"], "--batch-size 0 is out of range; ..."),
    "--lr 0": (TRAIN + ["--lr", "0"], "--lr 0 is out of range; give a value between 1e-05 and 1 ..."),
    "--lr inf": (TRAIN + ["--lr", "inf"], "--lr inf is not a finite number; ..."),
    "--lr 1e38": (TRAIN + ["--lr", "1e38"], "--lr 1e+38 is out of range; ..."),
    "--mixing-lr nan": (TRAIN + ["--mixing-lr", "nan"], "--mixing-lr nan is not a finite number; ..."),
    "--mixing-lr 100": (TRAIN + ["--mixing-lr", "100"], "--mixing-lr 100 is out of range; ..."),
    "--probe-fraction -1": (TRAIN + ["--probe-fraction", "-1"], "--probe-fraction -1 is out of range; ..."),
    "--weight-decay 2": (TRAIN + ["--weight-decay", "2"], "--weight-decay 2 is out of range; ..."),
    "--model bogus": (TRAIN + ["--model", "bogus"], "argument --model: invalid choice: 'bogus' ..."),
    "--normalization bogus": (TRAIN + ["--normalization", "bogus"], "argument --normalization: invalid choice: 'bogus' ..."),
    "--device tpu": (TRAIN + ["--device", "tpu"], "--device: unknown device 'tpu'; choose one of: auto, cpu, cuda, "
                     "mps or cuda:N (N a GPU number)"),
    "--device cuda:x": (PREDICT + ["--device", "cuda:x"], "--device: unknown device 'cuda:x'; ..."),
    "importance --device tpu": (["importance", "{model}", "--device", "tpu"], "--device: unknown device 'tpu'; ..."),
    "--classes naming one class": (TRAIN + ["--classes", "negative"], "only one class (negative) is labeled; a "
                                   "classifier needs at least two classes"),
    "--classes naming no labeled class": (TRAIN + ["--classes", "negative,DMSO"], "no labeled well has class DMSO; "
                                          "check the class names or the label column"),
    "--backbone bogus": (TRAIN + ["--backbone", "bogus"], "argument --backbone: invalid choice: 'bogus' ..."),
    "importance --permutation without labels": (["importance", "{model}", "--permutation", "{plate}", *PLATE],
                                                "--permutation needs --labels CSV ..."),
    # --- plate and labels flags ----------------------------------------------------------------------
    "--channel-names with ;": (INSPECT + ["--channel-names", "ch0=DNA;ch1=ER"], "channel rename 'ch0=DNA;ch1=ER' holds "
                               "several renames; separate them with commas (';' is not a separator): write it like "
                               "w1=DNA,w2=ER"),
    "--channel-names with spaces": (INSPECT + ["--channel-names", "ch0=DNA ch1=ER"], "channel rename 'ch0=DNA ch1=ER' "
                                    "holds several renames; separate them with commas (not spaces): ..."),
    "--channel-names unknown old name": (INSPECT + ["--channel-names", "w9=DNA"], "channel 'w9' is not on this plate "
                                         "(channels: ch0, ch1, ch2); ..."),
    "--channel-names duplicate new names": (INSPECT + ["--channel-names", "ch0=A,ch1=A"], "after renaming, several "
                                            "channels are called A; give every channel its own name"),
    "--channel-names empty new name": (INSPECT + ["--channel-names", "ch0="], "channel rename 'ch0=' needs a name on "
                                       "both sides; ..."),
    "--channel-names without =": (INSPECT + ["--channel-names", "DNA"], "channel rename 'DNA' has no '='; ..."),
    "--pattern not a regex": (INSPECT[:2] + ["--pattern", "(?P<well>[A-Z]"], "..."),
    "--pattern without groups": (INSPECT[:2] + ["--pattern", r".*\.tif"], "..."),
    "--label-column missing": (INSPECT + ["--labels", "{labels}", "--label-column", "dose"],
                               "labels.csv has no column 'dose'; choose one of: well, phenotype"),
    "--labels missing file": (INSPECT + ["--labels", "{tmp}/nope.csv"], "..."),
    # --- explain ---------------------------------------------------------------------------------------
    "explain --folds 1": (EXPLAIN + ["--folds", "1"], "1 folds: explain holds out every well once, so it needs 2 to 50 "
                          "folds (3 or more are recommended)"),
    "explain --folds 10 on 3 wells a class": (EXPLAIN + ["--folds", "10"], "10 folds need at least 10 wells of every "
                                              "class, but reference negative has 3 wells, phenotype positive has 3 "
                                              "wells: some folds would hold out none of its wells; use at most 3 folds"),
    "explain --seeds 0": (EXPLAIN + ["--seeds", "0"], "0 seeds: give 1 to 50 seeds per fold (repeats = folds x seeds)"),
    "explain --engine (gone)": (EXPLAIN + ["--engine", "pairs"], "unrecognized arguments: --engine pairs (see 'napari-dcmix --help')"),
    "explain --reference not a class": (EXPLAIN + ["--reference", "DMSO"], "reference class 'DMSO' is not among the "
                                        "labeled classes (negative, positive); choose one of them"),
    "explain --out is a file": (EXPLAIN + ["--out", "{labels}"], "..."),
    "explain --stains --keep not a channel": (EXPLAIN + ["--stains", "--keep", "DNA"],
                                              "--keep names DNA, not a channel of the plate; choose among ch0, ch1, ch2"),
    "explain --keep without --stains": (EXPLAIN + ["--keep", "ch0"],
                                        "--keep names the stains the --stains search keeps; add --stains"),
    "explain --stains --out holds the labels as stains.csv": (
        EXPLAIN + ["--stains", "--labels", "{tmp}/ex/stains.csv", "--out", "{tmp}/ex"],
        "--out (stains.csv) path {tmp}/ex/stains.csv is the labels file given as --labels; ..."),
    # --- predict -------------------------------------------------------------------------------------
    "predict --montage-k 0": (PREDICT + ["--montage", "{tmp}/m.png", "--montage-k", "0"],
                              "--montage-k 0 is out of range; give a whole number between 1 and 100"),
    "predict --montage-k 1000": (PREDICT + ["--montage-k", "1000"], "--montage-k 1000 is out of range; ..."),
    "predict --plate-map-value not a class": (PREDICT + ["--plate-map", "{tmp}/map.png", "--plate-map-value", "DMSO"],
                                              "'DMSO' is not a class of the model (negative, positive); colour by "
                                              "'prediction' or by one of these classes"),
    "predict --plate-map not a PNG": (PREDICT + ["--plate-map", "{tmp}/map.pdf"], "map.pdf: figures are written as "
                                      "PNG; give a file name ending in .png"),
    "predict --format bogus": (PREDICT + ["--format", "xlsx"], "argument --format: invalid choice: 'xlsx' ..."),
    "predict model is not a model": (["predict", "{labels}", "{plate}", *PLATE, "--out", "{tmp}/p.csv"], "..."),
    # --- suggest ---------------------------------------------------------------------------------------
    "suggest --n 0": (SUGGEST + ["--n", "0"], "--n 0 is out of range; give a whole number between 1 and 10000"),
    "suggest --n 20000": (SUGGEST + ["--n", "20000"], "--n 20000 is out of range; ..."),
    "suggest --n abc": (SUGGEST + ["--n", "abc"], "argument --n: invalid int value: 'abc' ..."),
    "suggest --out is the model": (SUGGEST + ["--out", "{model}"], "--out suggestions " + COLLIDE.format(
        path="{model}", name="the model file given as MODEL")),
    "suggest --out is the labels": (SUGGEST + ["--out", "{labels}"], "--out suggestions " + COLLIDE.format(
        path="{labels}", name="the labels file given as --labels")),
    "suggest --out through a symlink to the model": (SUGGEST + ["--out", "{tmp}/link.pt"], "--out suggestions " +
                                                     COLLIDE.format(path="{model}", name="the model file given as MODEL")),
    "suggest --out inside the plate": (SUGGEST + ["--out", "{plate}/s.csv"], "{plate}/s.csv is inside the plate "
                                       "folder ..."),
    "suggest model channels not on the plate": (SUGGEST + ["--channel-names", "ch0=DNA"], "model expects channels ch0, "
                                                "ch1, ch2; plate is missing: ch0; plate has extra: DNA; ..."),
    "suggest without --labels": (SUGGEST[:5] + ["--device", "cpu"], "the following arguments are required: --labels ..."),
    "suggest on a fully labelled plate": (SUGGEST, "every well with images is labelled already, so there is nothing "
                                          "to suggest; unlabel some wells or open another plate"),
    "suggest --device tpu": (SUGGEST + ["--device", "tpu"], "--device: unknown device 'tpu'; ..."),
    "suggest model is not a model": (["suggest", "{labels}", "{plate}", *PLATE, *LABELS], "..."),
    # --- flags that would do nothing -------------------------------------------------------------------
    "predict --plate-map-value without --plate-map": (PREDICT + ["--plate-map-value", "positive"],
                                                      "--plate-map-value does nothing without --plate-map; add "
                                                      "--plate-map, or leave --plate-map-value out"),
    "predict --montage-k without --montage": (PREDICT + ["--montage-k", "3"], "--montage-k does nothing without "
                                              "--montage; ..."),
    "inspect --label-column without --labels": (INSPECT + ["--label-column", "phenotype"], "--label-column does "
                                                "nothing without --labels; ..."),
    "importance --labels without --permutation": (["importance", "{model}", "--labels", "{labels}"],
                                                  "--labels does nothing without --permutation; ..."),
    # --- plates at a URL: their flags with a plate folder, an output that is a URL ----------------------
    "--cache-size with a plate folder": (INSPECT + ["--cache-size", "2GiB"], "--cache-size does nothing for a plate "
                                         "folder; it applies to plates at a URL: leave it out"),
    "--disk-cache with a plate folder": (INSPECT + ["--disk-cache"], "--disk-cache does nothing for a plate folder; ..."),
    "--s3-endpoint with a plate folder": (TRAIN + ["--s3-endpoint", "https://s3.example.org"],
                                          "--s3-endpoint does nothing for a plate folder; ..."),
    "--s3-signed with a plate folder": (PREDICT + ["--s3-signed"], "--s3-signed does nothing for a plate folder; ..."),
    "importance --cache-size without --permutation": (["importance", "{model}", "--cache-size", "1GiB"],
                                                      "--cache-size does nothing without --permutation; ..."),
    "train --out is a URL": (TRAIN + ["--out", "https://example.org/m.pt"], "https://example.org/m.pt is a URL: "
                             "napari-dcmix writes its outputs to files on this computer, never to a server; ..."),
    # --- sample-plate ----------------------------------------------------------------------------------
    "sample-plate --sites 0": (SAMPLE + ["--sites", "0"], "sites=0 must be a whole number from 1 to 16"),
    "sample-plate --sites 100": (SAMPLE + ["--sites", "100"], "sites=100 must be a whole number from 1 to 16"),
    "sample-plate --size 10": (SAMPLE + ["--size", "10"], "size=10 must be a whole number from 48 to 2048"),
    "sample-plate --size 100000": (SAMPLE + ["--size", "100000"], "size=100000 must be a whole number from 48 to 2048"),
    "sample-plate --seed -1": (SAMPLE + ["--seed", "-1"], "seed=-1 must be a whole number from 0 to 4294967295"),
    "sample-plate --wells 48": (SAMPLE + ["--wells", "48"], "argument --wells: invalid choice: 48 ..."),
    "sample-plate into the labels file": (["sample-plate", "{labels}", "--size", "48", "--sites", "1"],
                                          "{labels} is a file; choose a folder for the sample plate"),
    "sample-plate into the plate folder": (["sample-plate", "{plate}", "--size", "48", "--sites", "1"],
                                           "{plate} is not empty and holds no sample plate; ..."),
}


def _links(paths) -> None:
    (paths["tmp"] / "link.pt").symlink_to(paths["model"])
    os.link(paths["model"], paths["tmp"] / "hard.pt")
    (paths["tmp"] / "ex").mkdir()
    shutil.copy(paths["labels"], paths["tmp"] / "ex" / "importance_per_phenotype.csv")
    shutil.copy(paths["labels"], paths["tmp"] / "ex" / "stains.csv")


@pytest.mark.parametrize("case", list(ERRORS))
def test_refused_with_one_exact_error_line(paths, capsys, case):
    _links(paths)
    argv, expected = ERRORS[case]
    before = snapshot(paths["tmp"])
    code = main(expand(argv, paths))
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err, err
    assert lines and lines[-1].startswith("error: ") and not any(line.startswith("error") for line in lines[:-1]), err
    expected = "error: " + expand([expected], paths)[0]
    if expected.endswith("..."):
        assert lines[-1].startswith(expected[:-3]), (lines[-1], expected)
    else:
        assert lines[-1] == expected
    assert snapshot(paths["tmp"]) == before  # nothing changed, nothing written, no temporary file left


def test_every_flag_of_every_command_is_in_the_matrix():
    """A new flag must get a bounds row (or be a path, a switch or a free text covered by a row)."""
    from napari_dcmix.cli import build_parser

    covered = {a for argv, _ in ERRORS.values() for a in argv if str(a).startswith("--")}
    switches = {"--json", "--check", "--per-site", "--no-all", "--help", "--version"}
    free = {"--permutation", "--screenshots", "--plate", "--init", "--label-column", "--labels", "--out"}
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    missing = {}
    for name, sub in commands.items():
        if name == "demo":
            continue
        flags = {o for a in sub._actions for o in a.option_strings if o.startswith("--")}
        left = flags - covered - switches - free
        if left:
            missing[name] = sorted(left)
    assert not missing, missing


# --- accepted with a named warning -------------------------------------------------------------------
def test_a_tile_somewhat_larger_than_the_sites_is_a_warning(paths, capsys):
    before = snapshot(paths["plate"]), paths["labels"].read_bytes()
    code = main(expand(TRAIN + ["--tile", "40"], paths))
    err = capsys.readouterr().err
    assert code == 0, err
    assert [w for w in err.splitlines() if w.startswith("warning: the tile (40 px) is larger than the sites "
                                                       "(32×32 px): 36% of every tile is padding")]
    assert (snapshot(paths["plate"]), paths["labels"].read_bytes()) == before


@pytest.mark.parametrize("shape", [(1, 4096), (4, 256), (6, 6), (16, 200)])
def test_strip_and_tiny_sites_are_named_by_inspect_check(tmp_path, capsys, shape):
    root = tmp_path / "strip"
    root.mkdir()
    for well in ("B02", "C02"):
        for c in range(3):
            tifffile.imwrite(root / f"{well}_s1_ch{c}.tif", np.full(shape, 1000 + c, np.uint16))
    code = main(["inspect", str(root), "--pattern", SIGNAL_PATTERN, "--check"])
    err = capsys.readouterr().err
    assert code == 0
    h, w = shape
    named = [line for line in err.splitlines() if line.startswith(f"warning: B02 s1 is {h}×{w} px (")]
    assert len(named) == 1 and "mostly padding" in named[0], err  # once per shape, not per site
    assert not [line for line in err.splitlines() if "C02 s1 is" in line]


def test_ordinary_sites_raise_no_shape_warning(paths, capsys):
    assert main(expand(INSPECT + ["--check"], paths)) == 0
    assert "warning" not in capsys.readouterr().err


HTD = '"HTSInfoFile", Version 1.0\n"Waves", TRUE\n"NWavelengths", {n}\n{names}"EndFile"\n'


@pytest.mark.parametrize("n, expected", [
    (4, "warning: Plate1.HTD names 4 wavelengths but no file of the plate has w4 (Mito)"),
    (5, "warning: Plate1.HTD names 5 wavelengths but no file of the plate has w4 (Mito), w5 (AGP)"),
    (2, "warning: Plate1.HTD does not name w3, which files of the plate have"),
])
def test_htd_and_files_disagree_on_the_wavelengths(tmp_path, capsys, n, expected):
    root = write_imagexpress(tmp_path / "ixm", wells=["B02", "B03"], sites=1, channels=3, size=8)
    names = ["DAPI", "FITC", "Cy5", "Mito", "AGP"][:n]
    (root / "Plate1.HTD").write_text(HTD.format(n=n, names="".join(f'"WaveName{i}", "{x}"\n' for i, x in
                                                                   enumerate(names, 1))), encoding="latin-1")
    code = main(["inspect", str(root)])
    err = capsys.readouterr().err
    assert code == 0
    assert [line for line in err.splitlines() if line.startswith(expected)], err
    assert "check that the export is complete" in err


def test_htd_matching_the_files_says_nothing(tmp_path, capsys):
    root = write_imagexpress(tmp_path / "ixm", wells=["B02", "B03"], sites=1, channels=3, size=8)
    (root / "Plate1.HTD").write_text(HTD.format(n=3, names='"WaveName1", "DAPI"\n'), encoding="latin-1")
    assert main(["inspect", str(root)]) == 0
    assert "warning" not in capsys.readouterr().err
