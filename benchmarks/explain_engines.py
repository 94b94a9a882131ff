"""Explain per phenotype, side by side in one process (issue 20): ``explain`` (the coupled
per-phenotype DCMIX: one model per fold, one blend per phenotype, every well trains every head, α
started from each channel alone) and the classical baseline (per-channel features + a random forest),
with one default ``train`` of the same plate as the unit of time. (The pair models explain trained
before, one binary model per phenotype and fold, are gone; their figures stay in
``results/explain_engines_seed0_partial.jsonl`` and ``results/explain_engines_shape_seed0.json``; the
previous engine's 3-seed run, annealed Gumbel exploration instead of probing, in
``results/explain_engines_exploration.json``.)

Per plate and seed, at the defaults (``ExplainConfig()``: 3 folds, 1000 steps per fold model; one
``train`` at ``TrainConfig()``), each phenotype against the control: out-of-fold accuracy and AUC,
learned or not, the top channel and the α (or the forest's share) on the true channel(s); the panel's
and the forest's out-of-fold accuracy and Z′ per phenotype (one rule, ``controls.z_primes``); seconds,
with the ratio to one ``train``, and where explain's time goes (optimiser steps, held-out evaluation,
the panel's out-of-fold scoring, the rest: tile reading and cutting).

    python benchmarks/explain_engines.py                          # every plate, seed 0
    python benchmarks/explain_engines.py --plates apart,sample --seeds 3 --engines coupled,forest
    python benchmarks/explain_engines.py --table results/explain_engines.json   # the README tables
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from benchmark_plates import PATTERN, PLATES, REFERENCE, write_benchmark_plate  # noqa: E402

from napari_dcmix.classical import explain_with_forest  # noqa: E402
from napari_dcmix.classical.forest import ALL_CLASSES  # noqa: E402
from napari_dcmix.plate import open_plate, read_labels  # noqa: E402
from napari_dcmix.plate.sample import NEGATIVE, write_sample_plate  # noqa: E402
from napari_dcmix.training import TrainConfig, Trainer  # noqa: E402
from napari_dcmix.training import explain_coupled as explain_coupled_module, trainer as trainer_module  # noqa: E402
from napari_dcmix.training.controls import json_z_primes, z_primes  # noqa: E402
from napari_dcmix.training.explain import ALL_PHENOTYPES, ExplainConfig, Explainer  # noqa: E402

SAMPLE_TRUTH = {"er_stress": ["ER"], "mito_fragmented": ["Mito"], "nucleolar": ["RNA"]}
#: the sample plate with a fourth phenotype: the cost of explain against the number of phenotypes
SAMPLE4_TRUTH = {**SAMPLE_TRUTH, "nuclear_fragmented": ["DNA"]}


def make_plate(root: Path, name: str, seed: int):
    if name in ("sample", "sample4"):
        truth = SAMPLE_TRUTH if name == "sample" else SAMPLE4_TRUTH
        path = write_sample_plate(root / name, seed=seed, phenotypes=tuple(truth))
        return open_plate(path), path / "labels.csv", truth, NEGATIVE
    path, labels, truth = write_benchmark_plate(root / name, name, seed)
    return open_plate(path, PATTERN), labels, truth, REFERENCE


def _truth_of(truth: dict, phenotype: str) -> list[str]:
    return truth.get(phenotype) or list(dict.fromkeys(sum(truth.values(), [])))


class PhaseClock:
    """Seconds spent in explain's phases, by wrapping the functions that do them (this process only)."""

    PHASES = {"steps": (trainer_module.Trainer, "_step"),  # forward, backward, optimiser
              "evaluation": (trainer_module.Trainer, "_evaluate_round"),  # held-out loss every eval_every steps
              "test wells": (trainer_module.Trainer, "_finish"),  # each fold model on its held-out wells
              "panel": (explain_coupled_module, "build_panel")}  # the panel's out-of-fold scoring

    def __init__(self):
        self.seconds = dict.fromkeys(self.PHASES, 0.0)
        self._saved = []

    def __enter__(self):
        for phase, (owner, name) in self.PHASES.items():
            original = getattr(owner, name)
            self._saved.append((owner, name, original))
            setattr(owner, name, self._timed(phase, original))
        return self

    def _timed(self, phase, original):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start
        return wrapper

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)


def run_dcmix(plate, labels, reference, truth, seed: int) -> dict:
    base = ExplainConfig().train
    config = ExplainConfig(reference=reference, train=replace(base, seed=seed))
    start = time.perf_counter()
    with PhaseClock() as clock:
        explainer = Explainer(plate, labels, config)
        matrix = explainer.fit()
    seconds = time.perf_counter() - start
    profile = {phase: round(v, 1) for phase, v in clock.seconds.items()}
    profile["rest (tiles, events)"] = round(seconds - sum(clock.seconds.values()), 1)
    rows = {}
    for r in matrix.rows:
        true = _truth_of(truth, r.phenotype)
        rows[r.phenotype] = {"accuracy": r.verdict.accuracy, "auc": r.verdict.auc, "learned": r.learned,
                             "top": r.top_channel, "top_is_true": r.top_channel in true,
                             "true_share": sum(r.importance[c] for c in true)}
    meta = explainer.panel.metadata
    return {"seconds": seconds, "rows": rows, "models": explainer.total_models, "profile": profile,
            "steps_per_model": config.train.steps,
            "panel": {"accuracy": meta["test_accuracy"], "z_prime": meta["z_prime"]}}


def run_forest(plate, labels, reference, truth, seed: int) -> dict:
    start = time.perf_counter()
    answer = explain_with_forest(plate, labels, reference, folds=3, seed=seed)
    rows = {}
    for r in answer.rows:
        name = ALL_PHENOTYPES if r.phenotype == ALL_CLASSES else r.phenotype
        true = _truth_of(truth, r.phenotype if r.phenotype != ALL_CLASSES else ALL_PHENOTYPES)
        rows[name] = {"accuracy": r.accuracy, "auc": r.auc, "learned": None, "top": r.top_channel,
                      "top_is_true": r.top_channel in true, "true_share": sum(r.shares[c] for c in true)}
    classes = sorted({reference, *(c for c in labels.values())})
    z = json_z_primes(z_primes(answer.predictions, labels, reference, classes))
    return {"seconds": time.perf_counter() - start, "rows": rows, "z_prime": z}


def one_train_seconds(plate, labels, seed: int) -> float:
    start = time.perf_counter()
    Trainer(plate, labels, TrainConfig(seed=seed)).fit()
    return time.perf_counter() - start


def show(name: str, seed: int, engine: str, result: dict, unit: float) -> None:
    ratio = f" = {result['seconds'] / unit:.1f}x one train" if unit else ""
    print(f"{name} seed {seed} {engine}: {result['seconds']:.0f} s{ratio}", flush=True)
    for phenotype, row in result["rows"].items():
        auc = "  – " if row["auc"] is None else f"{row['auc']:.2f}"
        learned = "" if row["learned"] is None else ("  learned" if row["learned"] else "  NOT LEARNED")
        print(f"    {phenotype:16s} acc {row['accuracy']:.2f} AUC {auc}  top {row['top']:6s} "
              f"{'✓' if row['top_is_true'] else '✗'} true share {row['true_share']:.2f}{learned}", flush=True)
    if "panel" in result:
        z = ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} n/a" for k, v in result["panel"]["z_prime"].items())
        print(f"    panel: out-of-fold accuracy {result['panel']['accuracy']:.2f}; Z′ {z}", flush=True)
        print("    where the time went: " + ", ".join(f"{k} {v:.0f} s" for k, v in result["profile"].items()), flush=True)
    if result.get("z_prime"):
        z = ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} n/a" for k, v in result["z_prime"].items())
        print(f"    forest Z′ (all-classes forest, P(phenotype vs control)): {z}", flush=True)


def _mean_min_max(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    return f"{sum(values) / len(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def tables(results: dict) -> str:
    """The README's two tables from a results JSON: every row per plate (over the seeds), then seconds."""
    runs = results["runs"]
    lines = ["| plate | phenotype | explain: accuracy mean (min–max) | learned | true channel on top | α on it "
             "| forest: accuracy | top | share |", "|" + " --- |" * 9]
    for plate in dict.fromkeys(r["plate"] for r in runs):
        mine = [r for r in runs if r["plate"] == plate and "coupled" in r]
        for phenotype in mine[0]["coupled"]["rows"]:
            d = [r["coupled"]["rows"][phenotype] for r in mine]
            f = [r["forest"]["rows"].get(phenotype) for r in mine if "forest" in r]
            f = [x for x in f if x]
            n = len(d)
            lines.append(
                f"| {plate} | {phenotype} | {_mean_min_max([x['accuracy'] for x in d])} | "
                f"{sum(bool(x['learned']) for x in d)}/{n} | {sum(x['top_is_true'] for x in d)}/{n} | "
                f"{sum(x['true_share'] for x in d) / n:.2f} | {_mean_min_max([x['accuracy'] for x in f])} | "
                f"{sum(x['top_is_true'] for x in f)}/{len(f)} | "
                f"{(sum(x['true_share'] for x in f) / len(f)) if f else float('nan'):.2f} |")
    lines += ["", "| plate | one `train`, s | explain, s | explain ÷ one train, per seed | forest, s "
              "| panel out-of-fold accuracy, per seed | lowest Z′ panel / forest, per seed |", "|" + " --- |" * 7]
    for plate in dict.fromkeys(r["plate"] for r in runs):
        mine = [r for r in runs if r["plate"] == plate and "coupled" in r]
        lowest = []
        for r in mine:
            zp = [v for v in r["coupled"]["panel"]["z_prime"].values() if v is not None]
            zf = [v for v in r.get("forest", {}).get("z_prime", {}).values() if v is not None]
            lowest.append(f"{min(zp):.2f} / {min(zf):.2f}" if zp and zf else "–")
        ratios = " / ".join(f"{r['coupled']['seconds'] / r['train_s']:.1f}×" for r in mine if r["train_s"])
        panel = " / ".join(f"{r['coupled']['panel']['accuracy']:.2f}" for r in mine)
        train_s = sum(r["train_s"] for r in mine) / len(mine)
        explain_s = sum(r["coupled"]["seconds"] for r in mine) / len(mine)
        forest_s = sum(r["forest"]["seconds"] for r in mine if "forest" in r) / len(mine)
        lines.append(f"| {plate} | {train_s:.0f} | {explain_s:.0f} | {ratios} | {forest_s:.0f} | {panel} | "
                     f"{' · '.join(lowest)} |")
    lines += ["", "| plate, seed | " + " | ".join(PhaseClock.PHASES) + " | rest (tiles, events) |",
              "|" + " --- |" * (len(PhaseClock.PHASES) + 2)]
    for r in runs:
        if "coupled" in r and "profile" in r["coupled"]:
            total = r["coupled"]["seconds"]
            cells = [f"{v:.0f} s ({100 * v / total:.0f} %)" for v in r["coupled"]["profile"].values()]
            lines.append(f"| {r['plate']} {r['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plates", default=",".join([*PLATES, "sample"]))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--engines", default="train,coupled,forest",
                        help="train: one default train (the unit of time); coupled: explain; forest")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "explain_engines.json"))
    parser.add_argument("--table", metavar="JSON", help="print the README tables of a results file and exit")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in --json and run only the missing plate × seed pairs")
    args = parser.parse_args(argv)
    if args.table:
        print(tables(json.loads(Path(args.table).read_text())))
        return 0
    engines = args.engines.split(",")
    results = {"machine": platform.platform(), "torch_threads": torch.get_num_threads(), "runs": []}
    if args.resume and Path(args.json).exists():
        results["runs"] = json.loads(Path(args.json).read_text())["runs"]
    done = {(r["plate"], r["seed"]) for r in results["runs"]}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.plates.split(","):
            for seed in range(args.seeds):
                if (name, seed) in done:
                    continue
                plate, labels_csv, truth, reference = make_plate(Path(tmp) / f"{name}-{seed}", name, seed)
                labels = read_labels(labels_csv, plate.sites, "phenotype").well_labels()
                unit = one_train_seconds(plate, labels, seed) if "train" in engines else 0.0
                run = {"plate": name, "seed": seed, "train_s": unit}
                if unit:
                    print(f"{name} seed {seed}: one default train {unit:.0f} s", flush=True)
                for engine in [e for e in engines if e != "train"]:
                    result = (run_forest(plate, labels, reference, truth, seed) if engine == "forest" else
                              run_dcmix(plate, labels, reference, truth, seed))
                    run[engine] = result
                    show(name, seed, engine, result, unit)
                results["runs"].append(run)
                Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
