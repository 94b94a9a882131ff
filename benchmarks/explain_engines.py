"""Explain per phenotype, side by side in one process (issue 20): ``explain`` (the coupled
per-phenotype DCMIX: one model per fold, one blend per phenotype, every well trains every head) and
the classical baseline (per-channel features + a random forest), with one default ``train`` of the
same plate as the unit of time. (The pair models explain trained before, one binary model per
phenotype and fold, are gone; their figures stay in ``results/explain_engines_seed0_partial.jsonl``
and ``results/explain_engines_shape_seed0.json``.)

Per plate and seed, at the defaults (3 folds; ``TrainConfig()`` for every model), each phenotype
against the control: out-of-fold accuracy and AUC, learned or not, the top channel and the α (or the
forest's share) on the true channel(s); the panel's out-of-fold accuracy and Z′ per phenotype; and
seconds, with the ratio to one ``train``.

    python benchmarks/explain_engines.py                          # every plate, seed 0
    python benchmarks/explain_engines.py --plates apart,sample --seeds 3 --engines coupled,forest
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from benchmark_plates import PATTERN, PLATES, REFERENCE, write_benchmark_plate  # noqa: E402

from napari_dcmix.classical import explain_with_forest  # noqa: E402
from napari_dcmix.classical.forest import ALL_CLASSES  # noqa: E402
from napari_dcmix.plate import open_plate, read_labels  # noqa: E402
from napari_dcmix.plate.sample import NEGATIVE, write_sample_plate  # noqa: E402
from napari_dcmix.training import TrainConfig, Trainer  # noqa: E402
from napari_dcmix.training.explain import ALL_PHENOTYPES, ExplainConfig, Explainer  # noqa: E402

SAMPLE_TRUTH = {"er_stress": ["ER"], "mito_fragmented": ["Mito"], "nucleolar": ["RNA"]}


def make_plate(root: Path, name: str, seed: int):
    if name == "sample":
        path = write_sample_plate(root / "sample", seed=seed)
        return open_plate(path), path / "labels.csv", SAMPLE_TRUTH, NEGATIVE
    path, labels, truth = write_benchmark_plate(root / name, name, seed)
    return open_plate(path, PATTERN), labels, truth, REFERENCE


def _truth_of(truth: dict, phenotype: str) -> list[str]:
    return truth.get(phenotype) or list(dict.fromkeys(sum(truth.values(), [])))


def run_dcmix(plate, labels, reference, truth, seed: int) -> dict:
    config = ExplainConfig(reference=reference, train=TrainConfig(seed=seed))
    start = time.perf_counter()
    explainer = Explainer(plate, labels, config)
    matrix = explainer.fit()
    seconds = time.perf_counter() - start
    rows = {}
    for r in matrix.rows:
        true = _truth_of(truth, r.phenotype)
        rows[r.phenotype] = {"accuracy": r.verdict.accuracy, "auc": r.verdict.auc, "learned": r.learned,
                             "top": r.top_channel, "top_is_true": r.top_channel in true,
                             "true_share": sum(r.importance[c] for c in true)}
    meta = explainer.panel.metadata
    return {"seconds": seconds, "rows": rows, "models": explainer.total_models,
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
    return {"seconds": time.perf_counter() - start, "rows": rows}


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plates", default=",".join([*PLATES, "sample"]))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--engines", default="train,coupled,forest",
                        help="train: one default train (the unit of time); coupled: explain; forest")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "explain_engines.json"))
    args = parser.parse_args(argv)
    engines = args.engines.split(",")
    results = {"machine": platform.platform(), "torch_threads": torch.get_num_threads(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.plates.split(","):
            for seed in range(args.seeds):
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
