"""Which stains can be dropped (issue 21), at the defaults, per plate and seed: ``explain`` (timed), then
the stain search reusing it (timed): each channel alone and without it, the smallest panel per
phenotype and for the plate, α's agreement with the retraining, and the feature forest's second
opinion; checked against each plate's truth.

    python benchmarks/stain_search.py --plates pilot,sample --seeds 3
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from benchmark_plates import PLATES  # noqa: E402
from explain_engines import make_plate  # noqa: E402

from napari_dcmix.plate import read_labels  # noqa: E402
from napari_dcmix.training.explain import ExplainConfig, Explainer  # noqa: E402
from napari_dcmix.training.stains import StainsConfig, StainSearch  # noqa: E402

STRONG = {"er_stress": "ER", "mito_fragmented": "Mito", "nucleolar": "RNA"}


def one(name: str, seed: int, root: Path) -> dict:
    plate, labels_csv, truth, reference = make_plate(root, name, seed)
    labels = read_labels(labels_csv, plate.sites, "phenotype").well_labels()
    config = ExplainConfig(reference=reference, train=replace(ExplainConfig().train, seed=seed))
    start = time.perf_counter()
    explainer = Explainer(plate, labels, config)
    explainer.fit()
    explain_s = time.perf_counter() - start
    search = StainSearch(plate, labels, StainsConfig(explain=config), full=explainer)
    for _ in search.run():
        pass
    answer = search.result
    strong = {**STRONG, **PLATES.get(name, {}).get("strong", {})}
    rows = {}
    for phenotype, stains in answer.phenotypes.items():
        true = truth[phenotype]
        needed = stains.needed()
        rows[phenotype] = {
            "truth": true, "smallest_panel": stains.smallest_panel,
            "panel_is_truth": sorted(stains.smallest_panel or []) == sorted(true),
            "panel_within_truth": bool(stains.smallest_panel) and set(stains.smallest_panel) <= set(true),
            "panel_accuracy": next((s.figures.accuracy for s in stains.curve
                                    if list(s.channels) == stains.smallest_panel), None),
            "alone_learned": {c: f.learned for c, f in stains.alone.items()},
            "alone_accuracy": {c: f.accuracy for c, f in stains.alone.items()},
            "without_accuracy": {c: f.accuracy for c, f in stains.without.items()},
            "needed": needed, "needed_only_truth": all(c in true for c, v in needed.items() if v),
            "without_strong_learned": (stains.without[strong[phenotype]].learned
                                       if phenotype in strong else None),
            "full_accuracy": stains.full.accuracy, "alpha": stains.alpha,
            "agreement": stains.agreement.to_dict() if stains.agreement else None,
            "forest": stains.second_opinion.to_dict() if stains.second_opinion else None,
        }
    result = {"plate": name, "seed": seed, "explain_s": explain_s, "stains_s": answer.seconds,
              "ratio": answer.seconds / explain_s, "runs": answer.runs, "chance_stops": answer.chance_stops,
              "plate_panel": answer.plate_panel, "phenotypes": rows}
    print(json.dumps({k: v for k, v in result.items() if k != "phenotypes"}), flush=True)
    for p, r in rows.items():
        print(f"  {p}: panel {r['smallest_panel']} (truth {r['truth']}) acc {r['panel_accuracy']}, "
              f"alone {r['alone_accuracy']} learned {r['alone_learned']}, without {r['without_accuracy']}, "
              f"needed {r['needed']}, agreement {r['agreement']}, forest {r['forest']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plates", default="pilot,sample")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "stain_search.json"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for name in args.plates.split(","):
                results.append(one(name, seed, Path(tmp) / f"{name}{seed}"))
                Path(args.out).write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                                      "threads": torch.get_num_threads(), "results": results},
                                                     indent=1))


if __name__ == "__main__":
    main()
