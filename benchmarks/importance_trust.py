"""Can a biologist trust the channel importance at the defaults? Issue 8's benchmark, one command.

Sections, each run side by side in this one process on 2 CPU cores, every model at the plugin's
defaults (``TrainConfig()``, 800 optimiser steps, early stopping) unless the section compares recipes:

* ``sample``   the sample plate (v3), ``explain`` per phenotype for 3 seeds: top α vs the true channel,
               held-out well accuracy (out of fold), seconds per model;
* ``dim``      a plate whose phenotypes live in one channel each, one of them a dim DNA stain among
               bright ER/Mito (nuclear fragmentation, stress fibres): the chosen recipe (annealed α
               probing each channel alone first, α lr 0.05) against no probing, 3 seeds;
* ``pilot``    a 60-well, 2-class pilot plate (192 px fields): calls on its unlabeled wells and on every
               well of a replicate plate, and the exposure shift (x0.6 and x1.6 + 300 re-imaging);
* ``shuffled`` 20 runs with the pilot plate's well labels shuffled: the share the gate flags as not
               learned (goal >= 95 %), and, over every real-label model above, the share wrongly flagged
               (goal <= 5 %).

    python benchmarks/importance_trust.py                  # everything (~40 min on 2 idle cores)
    python benchmarks/importance_trust.py --sections dim   # one section
    python benchmarks/importance_trust.py --quick          # smoke run (small budgets, a few minutes)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.plate.sample import LABEL_COLUMN, NEGATIVE, write_sample_plate
from napari_dcmix.training import TrainConfig, Trainer, predict_sites, well_probabilities
from napari_dcmix.training.explain import ExplainConfig, Explainer

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("sample", "dim", "pilot", "shuffled")
RECIPES = {  # the chosen default first
    "explore (default)": {},
    "no probing": {"probe_fraction": 0.0},
}


def config(args, **changes) -> TrainConfig:
    base = dict(device="cpu", label_column=LABEL_COLUMN)
    if args.quick:
        base.update(steps=200)
    base.update(changes)
    return TrainConfig(**base)


def load(plate_dir: Path):
    plate = open_plate(plate_dir)
    labels = read_labels(plate_dir / "labels.csv", plate.sites, LABEL_COLUMN)
    truth = json.loads((plate_dir / "ground_truth.json").read_text())
    return plate, labels, truth


def section_sample(args, work: Path, real: list) -> dict:
    plate, labels, truth = load(write_sample_plate(work / "sample", seed=0))
    runs = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        explainer = Explainer(plate, labels.site_labels, ExplainConfig(train=config(args, seed=seed), include_all=seed == 0))
        matrix = explainer.fit()
        seconds = (time.perf_counter() - start) / explainer.total_models
        for row in matrix.rows:
            true = truth["phenotype_channel"].get(row.phenotype)
            runs.append({"seed": seed, "phenotype": row.phenotype, "true_channel": true, "top_channel": row.top_channel,
                         "alpha_true": row.importance.get(true) if true else None, "accuracy": row.verdict.accuracy,
                         "auc": row.verdict.auc, "learned": row.learned, "seconds_per_model": seconds,
                         "importance": row.importance})
            if true:
                real.append(row.learned)
            print(f"  sample seed {seed} {row.phenotype:>16}: top {row.top_channel} (truth {true}) acc "
                  f"{row.verdict.accuracy:.2f} AUC {row.verdict.auc:.2f} learned {row.learned}", flush=True)
    return {"runs": runs}


def section_dim(args, work: Path, real: list) -> dict:
    plate_dir = write_sample_plate(work / "dim", seed=5, phenotypes=("nuclear_fragmented", "actin_fibres"),
                                   brightness={"DNA": 0.3, "ER": 2.0, "Mito": 2.0})
    plate, labels, truth = load(plate_dir)
    runs = []
    for phenotype, true in truth["phenotype_channel"].items():
        pair = {k: v for k, v in labels.site_labels.items() if v in (phenotype, NEGATIVE)}
        for seed in range(args.seeds):
            for recipe, changes in RECIPES.items():
                start = time.perf_counter()
                trainer = Trainer(plate, pair, config(args, seed=seed, **changes))
                model = trainer.fit()
                imp = model.importance()
                runs.append({"phenotype": phenotype, "true_channel": true, "seed": seed, "recipe": recipe,
                             "top_channel": max(imp, key=imp.get), "alpha_true": imp[true],
                             "accuracy": trainer.verdict.accuracy, "learned": trainer.verdict.learned,
                             "seconds": time.perf_counter() - start})
                if recipe == next(iter(RECIPES)):
                    real.append(trainer.verdict.learned)
                print(f"  dim {phenotype:>18} seed {seed} {recipe:>26}: α({true}) {imp[true]:.2f} top "
                      f"{runs[-1]['top_channel']} acc {trainer.verdict.accuracy:.2f}", flush=True)
    return {"runs": runs}


def _rescaled_copy(src: Path, dst: Path, gain: float, offset: float) -> Path:
    shutil.copytree(src, dst)
    for path in (dst / "images").glob("*.tif"):
        img = tifffile.imread(path).astype(np.float64) * gain + offset
        tifffile.imwrite(path, np.clip(np.rint(img), 0, 65535).astype(np.uint16))
    return dst


def _well_calls(model, plate) -> dict:
    probs = well_probabilities(list(predict_sites(model, plate)))
    return {well: model.classes[int(np.argmax(p))] for well, p in probs.items()}


PILOT = dict(n_wells=60, phenotypes=("er_stress",), size=192)


def section_pilot(args, work: Path, real: list) -> dict:
    pilot_dir = write_sample_plate(work / "pilot", seed=11, **PILOT)
    plate, labels, truth = load(pilot_dir)
    start = time.perf_counter()
    trainer = Trainer(plate, labels.site_labels, config(args))
    model = trainer.fit()
    seconds = time.perf_counter() - start
    real.append(trainer.verdict.learned)
    calls = _well_calls(model, plate)
    hidden = {("", w): c for w, c in truth["unlabeled_truth"].items()}
    unlabeled = np.mean([calls[w] == c for w, c in hidden.items()])
    replicate_dir = write_sample_plate(work / "pilot-replicate", seed=12, **PILOT)
    rep_plate, rep_labels, rep_truth = load(replicate_dir)
    rep_truth_all = {w: rep_truth["unlabeled_truth"].get(w) for w in rep_plate.wells()}
    rep_truth_all.update({w: c for (_, w), c in rep_labels.well_labels().items()})
    rep_calls = _well_calls(model, rep_plate)
    replicate = np.mean([rep_calls[("", w)] == c for w, c in rep_truth_all.items() if c])
    shifts = {}
    for name, gain, offset in (("x0.6", 0.6, 0.0), ("x1.6 +300", 1.6, 300.0)):
        shifted = open_plate(_rescaled_copy(pilot_dir, work / f"pilot-{gain}", gain, offset))
        other = _well_calls(model, shifted)
        shifts[name] = float(np.mean([other[w] == calls[w] for w in calls]))
    print(f"  pilot: {seconds:.0f} s, {model.metadata['steps']} steps, unlabeled wells right {unlabeled:.2f} "
          f"({len(hidden)}), replicate plate wells right {replicate:.2f}, exposure agreement {shifts}", flush=True)
    return {"seconds": seconds, "steps": model.metadata["steps"], "verdict": trainer.verdict.to_dict(),
            "importance": model.importance(), "unlabeled_right": float(unlabeled), "unlabeled_wells": len(hidden),
            "replicate_right": float(replicate), "exposure_agreement": shifts}


def section_shuffled(args, work: Path, real: list) -> dict:
    pilot_dir = work / "pilot" if (work / "pilot").exists() else write_sample_plate(work / "pilot", seed=11, **PILOT)
    plate, labels, _ = load(pilot_dir)
    wells = labels.well_labels()
    keys, classes = list(wells), list(wells.values())
    flagged = []
    for run in range(args.shuffles):
        rng = np.random.default_rng(100 + run)
        shuffled = dict(zip(keys, rng.permutation(classes)))
        trainer = Trainer(plate, shuffled, config(args, seed=run))
        trainer.fit()
        flagged.append(not trainer.verdict.learned)
        print(f"  shuffled {run}: acc {trainer.verdict.accuracy:.2f} p {trainer.verdict.p_value:.2g} "
              f"flagged {flagged[-1]}", flush=True)
    return {"runs": len(flagged), "flagged_not_learned": float(np.mean(flagged))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shuffles", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "importance_trust.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.shuffles = 1, 3
    torch.set_num_threads(args.threads)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    results = {"machine": f"{platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} threads, cpu",
               "defaults": dataclasses.asdict(TrainConfig()), "quick": args.quick}
    real: list = []
    with tempfile.TemporaryDirectory(prefix="dcmix-trust-") as tmp:
        for name in args.sections.split(","):
            print(f"== {name}", flush=True)
            start = time.perf_counter()
            results[name] = globals()[f"section_{name}"](args, Path(tmp), real)
            results[name]["section_seconds"] = time.perf_counter() - start
    if real:
        results["real_labels_wrongly_flagged"] = {"models": len(real), "fraction": float(1 - np.mean(real))}
        print(f"real-label models wrongly flagged not learned: {1 - np.mean(real):.2f} of {len(real)}")
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**previous, **results}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
