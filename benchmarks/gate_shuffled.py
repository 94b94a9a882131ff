"""The honesty gate against shuffled labels (issue 20): explain at the defaults on a benchmark plate
whose well labels were permuted, N times (a new permutation and training seed each run). Every row is
then noise and should be flagged NOT LEARNED; the goal is ≥ 95 % of those rows flagged.

    python benchmarks/gate_shuffled.py                 # 20 runs on the dim plate, 3 shuffled classes
    python benchmarks/gate_shuffled.py --runs 5 --plate apart
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
from benchmark_plates import PATTERN, PLATES, write_benchmark_plate  # noqa: E402

from napari_dcmix.plate import open_plate, read_labels  # noqa: E402
from napari_dcmix.training.explain import ExplainConfig, Explainer  # noqa: E402


def shuffled_labels(wells: list, rng: np.random.Generator) -> dict:
    """The plate's wells dealt at random into a reference and two phenotypes (as even as possible)."""
    names = ["control", "noise_a", "noise_b"]
    dealt = [names[i % 3] for i in range(len(wells))]
    return {w: c for w, c in zip(wells, rng.permutation(dealt))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plate", default="dim", choices=list(PLATES))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "gate_shuffled.json"))
    args = parser.parse_args(argv)
    runs, flagged, total = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        root, labels_csv, _ = write_benchmark_plate(Path(tmp) / args.plate, args.plate, 0)
        plate = open_plate(root, PATTERN)
        wells = sorted(read_labels(labels_csv, plate.sites, "phenotype").well_labels())
        for run in range(args.runs):
            labels = shuffled_labels(wells, np.random.default_rng(1000 + run))
            start = time.perf_counter()
            matrix = Explainer(plate, labels, ExplainConfig(reference="control", train=replace(ExplainConfig().train, seed=run))).fit()
            rows = {r.phenotype: {"accuracy": r.verdict.accuracy, "p_value": r.verdict.p_value, "learned": r.learned}
                    for r in matrix.rows}
            phenotype_rows = [r for r in matrix.rows if r.phenotype.startswith("noise")]
            flagged += sum(not r.learned for r in phenotype_rows)
            total += len(phenotype_rows)
            runs.append({"run": run, "seconds": time.perf_counter() - start, "rows": rows})
            print(f"run {run}: " + ", ".join(f"{k} acc {v['accuracy']:.2f} p {v['p_value']:.2g} "
                                              f"{'learned' if v['learned'] else 'NOT LEARNED'}" for k, v in rows.items())
                  + f"  ({runs[-1]['seconds']:.0f} s)", flush=True)
            summary = {"plate": args.plate, "runs": len(runs), "phenotype_rows": total, "flagged_not_learned": flagged,
                       "share_flagged": flagged / total, "goal": ">= 0.95"}
            Path(args.json).write_text(json.dumps({"summary": summary, "runs": runs}, indent=1, default=float))
    print(f"shuffled rows flagged NOT LEARNED: {flagged} of {total} ({flagged / total:.0%}; goal ≥ 95 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
