"""Which model should Apply predict with? Today's multi-class model against the phenotype panel.

On the sample plate at the plugin's defaults (``TrainConfig()``, ``ExplainConfig()``: 3 folds), side by
side in this one process: one ``explain`` run trains the per-phenotype models (combined into the
phenotype panel) and the multi-class model of the "all phenotypes" row. Measured for each:

* held-out: the multi-class model on its own test wells (never trained on); the panel out of fold
  (every well scored only by models that never saw it): accuracy, AUC, Z′ of every phenotype against
  the negative control on P(phenotype vs control) = P(phenotype) / (P(phenotype) + P(control)) per well
  (and, for comparison, on the multi-class P(phenotype) alone);
* whole plate, as the Apply dock shows it (training wells included): accuracy and Z′ per phenotype;
* seconds to train.

The goal (issue 16): held-out accuracy ≥ 0.95 and Z′ ≥ 0.5 for every phenotype.

    python benchmarks/apply_model.py              # seed 0 (~10 models of ~40 s on 2 idle cores)
    python benchmarks/apply_model.py --seeds 3    # seeds 0, 1, 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.plate.sample import LABEL_COLUMN, NEGATIVE, write_sample_plate
from napari_dcmix.training import TrainConfig, predict_sites, well_probabilities
from napari_dcmix.training.explain import ExplainConfig, Explainer
from napari_dcmix.training.gate import assess
from napari_dcmix.errors import DcmixError
from napari_dcmix.training.panel import phenotype_z_primes
from napari_dcmix.training.zfactor import z_prime

ROOT = Path(__file__).resolve().parents[1]
GOAL_ACCURACY, GOAL_Z = 0.95, 0.5


def figures(classes: list[str], wells: dict) -> dict:
    """Accuracy, AUC and Z′ per phenotype from (plate, well) -> (true class index, probabilities), with
    each class's P(class) per well (mean and sd over its own wells and over the reference wells: what Z′ reads)."""
    values = list(wells.values())
    verdict = assess([label for label, _ in values], np.array([p for _, p in values]))
    z = phenotype_z_primes(wells, classes, NEGATIVE)
    ref = classes.index(NEGATIVE)
    # the readout before this version: the multi-class P(phenotype) alone, for comparison
    z_alone = {}
    for c, name in enumerate(classes):
        if c != ref:
            try:
                z_alone[name] = z_prime([p[c] for label, p in values if label == c],
                                        [p[c] for label, p in values if label == ref])
            except DcmixError:
                z_alone[name] = None
    spread = {}
    for c, name in enumerate(classes):
        own = [float(p[c]) for label, p in values if label == c]
        neg = [float(p[c]) for label, p in values if label == ref]
        if name != NEGATIVE and len(own) > 1 and len(neg) > 1:
            spread[name] = {"mean": np.mean(own), "sd": np.std(own, ddof=1), "min": np.min(own),
                            "reference_mean": np.mean(neg), "reference_sd": np.std(neg, ddof=1)}
    return {"accuracy": verdict.accuracy, "auc": verdict.auc, "n_wells": verdict.n_wells, "learned": verdict.learned,
            "z_prime": z, "z_prime_on_p_alone": z_alone, "p_phenotype": spread,
            "wells": {f"{w[0]}:{w[1]}" if w[0] else w[1]: [classes[label], [float(v) for v in p]]
                      for w, (label, p) in wells.items()},
            "meets_goal": bool(verdict.accuracy >= GOAL_ACCURACY
                               and all(v is not None and v >= GOAL_Z for v in z.values()))}


def labeled_well_probabilities(model, plate, site_labels: dict, wells: set | None = None) -> dict:
    """(plate, well) -> (true class index, mean probabilities) of labeled wells (``wells``: only those)."""
    keys = [k for k in site_labels if wells is None or (k.plate, k.well) in wells]
    probs = well_probabilities(list(predict_sites(model, plate, keys)))
    truth = {(k.plate, k.well): model.classes.index(v) for k, v in site_labels.items()}
    return {w: (truth[w], p) for w, p in probs.items()}


def run_seed(seed: int, plate, site_labels: dict, args) -> dict:
    train = dataclasses.replace(ExplainConfig().train, device="cpu", label_column=LABEL_COLUMN, seed=seed,
                                **({"steps": 40, "eval_every": 20} if args.quick else {}))
    explainer = Explainer(plate, site_labels, ExplainConfig(train=train))
    start = time.perf_counter()
    marks = {}
    for event in explainer.run():
        if event.kind in ("panel", "done"):
            marks[event.kind] = time.perf_counter() - start
    panel, multi = explainer.panel, explainer.model
    if args.keep:  # both models, to look at them again without training (predict, the docks)
        args.keep.mkdir(parents=True, exist_ok=True)
        panel.save(args.keep / f"phenotype_panel_seed{seed}.pt")
        multi.save(args.keep / f"multi_class_seed{seed}.pt")
    classes = panel.classes
    test_wells = {tuple(w.split(":", 1)) if ":" in w else ("", w) for w in multi.metadata["test_wells"]}
    oof = explainer.panel_oof
    result = {
        "seed": seed,
        "multi_class": {"held_out": figures(classes, labeled_well_probabilities(multi, plate, site_labels, test_wells)),
                        "whole_plate": figures(classes, labeled_well_probabilities(multi, plate, site_labels)),
                        "seconds": marks["done"] - marks["panel"], "models": 1},
        "panel": {"held_out": figures(classes, oof),
                  "whole_plate": figures(classes, labeled_well_probabilities(panel, plate, site_labels)),
                  "seconds": marks["panel"], "models": panel.metadata["members"]},
        "rows": {r.phenotype: {"accuracy": r.verdict.accuracy, "auc": r.verdict.auc} for r in explainer.result.rows},
    }
    return result


def table(results: list[dict]) -> list[str]:
    phenotypes = list(results[0]["panel"]["held_out"]["z_prime"])
    head = f"{'seed':>4} {'model':>12} {'view':>11} {'accuracy':>8} {'AUC':>5} " + " ".join(
        f"{'Z′ ' + p:>16}" for p in phenotypes) + f" {'seconds':>8}  goal"
    lines = [head]
    for r in results:
        for name in ("multi_class", "panel"):
            for view in ("held_out", "whole_plate"):
                f = r[name][view]
                zs = " ".join(f"{f['z_prime'][p]:16.2f}" if f["z_prime"][p] is not None else f"{'n/a':>16}"
                              for p in phenotypes)
                seconds = f"{r[name]['seconds']:8.0f}" if view == "held_out" else " " * 8
                goal = ("met" if f["meets_goal"] else "NOT met") if view == "held_out" else ""
                lines.append(f"{r['seed']:>4} {name:>12} {view:>11} {f['accuracy']:8.2f} {f['auc']:5.2f} {zs} "
                             f"{seconds}  {goal}")
                alone = " ".join(f"{f['z_prime_on_p_alone'][p]:16.2f}" if f["z_prime_on_p_alone"][p] is not None
                                 else f"{'n/a':>16}" for p in phenotypes)
                lines.append(f"{'':>4} {'':>12} {'(P alone)':>11} {'':>8} {'':>5} {alone}")
    lines.append(f"goal: held-out accuracy ≥ {GOAL_ACCURACY} and Z′ ≥ {GOAL_Z} for every phenotype")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="training seeds 0..N-1, one explain run each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 steps per model, no JSON written")
    parser.add_argument("--keep", type=Path, help="also save both models of every seed into this folder")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "apply_model.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory(prefix="dcmix-apply-") as tmp:
        plate_dir = write_sample_plate(Path(tmp) / "sample", seed=0)
        plate = open_plate(plate_dir)
        site_labels = read_labels(plate_dir / "labels.csv", plate.sites, LABEL_COLUMN).site_labels
        for seed in range(args.seeds):
            print(f"== seed {seed}", flush=True)
            results.append(run_seed(seed, plate, site_labels, args))
            print("\n".join(table(results[-1:])), flush=True)
    lines = table(results)
    print("\n".join(lines))
    payload = {"machine": f"{platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} threads, cpu",
               "defaults": {"train": dataclasses.asdict(TrainConfig()),
                            "explain": {k: v for k, v in dataclasses.asdict(ExplainConfig()).items() if k != "train"}},
               "goal": {"accuracy": GOAL_ACCURACY, "z_prime": GOAL_Z}, "runs": results, "table": lines}
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
