"""The classical baseline DCMIX must beat (issue 20): per-channel image features (intensity, texture,
granularity; 36 per channel), plate-normalised, averaged per well, a 500-tree random forest, channel
importance = the forest's importance summed per channel — CellProfiler Analyst's approach,
``napari_dcmix.classical``.

On the sample plate and the benchmark plates (``benchmarks/benchmark_plates.py``: shape, a dim
channel, a two-channel conjunction, two phenotypes apart), 3 seeds (plate drawn with the seed, the
forest and its folds seeded too), 3-fold out of fold over wells, one thread. Prints, per phenotype
against the control and for all classes at once: accuracy, AUC, the top channel and the share of the
importance on the true channel(s), and the seconds (features and forests).

    python benchmarks/classical_baseline.py                 # every plate, seeds 0-2 (a few minutes)
    python benchmarks/classical_baseline.py --plates shape --seeds 1
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

from benchmark_plates import PATTERN, PLATES, REFERENCE, write_benchmark_plate  # noqa: E402

from napari_dcmix.classical import explain_with_forest, well_features  # noqa: E402
from napari_dcmix.classical.forest import ALL_CLASSES  # noqa: E402
from napari_dcmix.plate import open_plate, read_labels  # noqa: E402
from napari_dcmix.plate.sample import LABEL_COLUMN, NEGATIVE, write_sample_plate  # noqa: E402

SAMPLE_TRUTH = {"er_stress": ["ER"], "mito_fragmented": ["Mito"], "nucleolar": ["RNA"]}


def sample_plate(root: Path, seed: int):
    path = write_sample_plate(root / "sample", seed=seed)
    return path, path / "labels.csv", SAMPLE_TRUTH, NEGATIVE, None, LABEL_COLUMN


def benchmark_plate(root: Path, name: str, seed: int):
    path, labels, truth = write_benchmark_plate(root / name, name, seed)
    return path, labels, truth, REFERENCE, PATTERN, "phenotype"


def measure(path, labels_csv, truth, reference, pattern, column, seed: int) -> dict:
    plate = open_plate(path, pattern)
    labels = read_labels(labels_csv, plate.sites, column).well_labels()
    start = time.perf_counter()
    table = well_features(plate, labels)
    features_s = time.perf_counter() - start
    answer = explain_with_forest(plate, labels, reference, folds=3, seed=seed, table=table)
    rows = {}
    for row in answer.rows:
        true = list(dict.fromkeys(sum(truth.values(), []))) if row.phenotype == ALL_CLASSES else truth[row.phenotype]
        rows[row.phenotype] = {"accuracy": row.accuracy, "auc": row.auc, "top": row.top_channel,
                               "top_is_true": row.top_channel in true,
                               "true_share": sum(row.shares[c] for c in true), "shares": row.shares}
    return {"rows": rows, "features_s": features_s, "forest_s": answer.seconds, "wells": len(table.wells)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plates", default="sample," + ",".join(PLATES), help="comma-separated plate names")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "classical_baseline.json"))
    args = parser.parse_args(argv)
    results = {"machine": platform.platform(), "python": platform.python_version(), "plates": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.plates.split(","):
            for seed in range(args.seeds):
                root = Path(tmp) / f"{name}-{seed}"
                made = sample_plate(root, seed) if name == "sample" else benchmark_plate(root, name, seed)
                result = measure(*made, seed=seed)
                results["plates"].setdefault(name, {})[seed] = result
                for phenotype, row in result["rows"].items():
                    auc = "  –  " if row["auc"] is None else f"{row['auc']:.3f}"
                    print(f"{name:7s} seed {seed}  {phenotype:16s} acc {row['accuracy']:.3f}  AUC {auc}  "
                          f"top {row['top']:6s} {'✓' if row['top_is_true'] else '✗'}  true share "
                          f"{row['true_share']:.2f}", flush=True)
                print(f"{name:7s} seed {seed}  {result['wells']} wells: features {result['features_s']:.1f} s, "
                      f"forests {result['forest_s']:.1f} s", flush=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
