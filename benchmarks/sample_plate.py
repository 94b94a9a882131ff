"""Sample-plate fidelity: does α find the channels that truly carry the phenotype?

On the synthetic Cell Painting plate (ground_truth.json gives the true per-channel importance), train
DCMIX, all-channels and SE-attention side by side with the same engine, backbone and data, then report:
held-out (by well) site accuracy, Spearman ρ of each model's importance against the truth, the top
channel of α vs of permutation importance, and time-to-importance (reading α vs permutation).

    python benchmarks/sample_plate.py [--quick] [--seeds 3] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits_importance import spearman  # noqa: E402

from napari_dcmix.plate import open_plate, read_labels  # noqa: E402
from napari_dcmix.plate.sample import write_sample_plate  # noqa: E402
from napari_dcmix.training import TrainConfig, Trainer, run_permutation_importance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("dcmix", "all-channels", "se-attention")


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    work = tempfile.TemporaryDirectory(prefix="dcmix-sample-bench-")
    plate_dir = write_sample_plate(Path(work.name) / "plate", wells=96, sites=args.sites, size=args.size, seed=0)
    truth = json.loads((plate_dir / "ground_truth.json").read_text())["importance"]
    plate = open_plate(plate_dir)
    labels = read_labels(plate_dir / "labels.csv", plate.sites, "phenotype")
    channels = plate.channels
    truth_vec = np.array([truth[c] for c in channels])
    runs = []
    for seed in range(args.seeds):
        for kind in KINDS:
            config = TrainConfig(model=kind, epochs=args.epochs, tile=args.tile, batch_size=32, seed=seed, device="cpu")
            trainer = Trainer(plate, labels.site_labels, config)
            start = time.perf_counter()
            trained = trainer.fit()
            train_s = time.perf_counter() - start
            t0 = time.perf_counter()
            importance = trained.importance()
            alpha_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            perm = run_permutation_importance(trained, plate, labels.site_labels, max_sites=64, repeats=2, seed=seed)
            perm_s = time.perf_counter() - t0
            perm_vec = np.array([perm["drop"][c] for c in channels])
            row = {"kind": kind, "seed": seed, "val_accuracy": trained.metadata["val_accuracy"], "train_seconds": train_s,
                   "permutation_seconds": perm_s, "importance_seconds": alpha_s,
                   "permutation_top": channels[int(np.argmax(perm_vec))],
                   "rho_permutation": spearman(perm_vec, truth_vec)}
            if importance is not None:
                vec = np.array([importance[c] for c in channels])
                row.update(importance=importance, rho=spearman(vec, truth_vec), top=channels[int(np.argmax(vec))])
            runs.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "importance"}), file=sys.stderr, flush=True)
    work.cleanup()
    return {"truth": truth, "channels": channels, "runs": runs, "config": vars(args) | {"out": str(args.out)}}


def table(result: dict) -> str:
    lines = ["| model | held-out accuracy | ρ(importance, truth) | top channel (importance / permutation) | ρ(permutation, truth) | train s |",
             "|---|---|---|---|---|---|"]
    for kind in KINDS:
        rows = [r for r in result["runs"] if r["kind"] == kind]
        acc = np.array([r["val_accuracy"] for r in rows])
        rho = [r["rho"] for r in rows if "rho" in r]
        rho_s = f"{np.mean(rho):.2f} ± {np.std(rho):.2f}" if rho else "n/a (no importance)"
        tops = ", ".join(f"{r.get('top', '–')}/{r['permutation_top']}" for r in rows)
        rho_p = np.array([r["rho_permutation"] for r in rows])
        lines.append(f"| {kind} | {acc.mean():.3f} ± {acc.std():.3f} | {rho_s} | {tops} | {rho_p.mean():.2f} ± {rho_p.std():.2f} "
                     f"| {np.mean([r['train_seconds'] for r in rows]):.0f} |")
    dc = [r for r in result["runs"] if r["kind"] == "dcmix"]
    ratio = np.median([r["permutation_seconds"] / max(r["importance_seconds"], 1e-9) for r in dc])
    lines.append("")
    lines.append(f"Time to importance (DCMIX): reading α {np.median([r['importance_seconds'] for r in dc]) * 1e6:.0f} µs, "
                 f"permutation importance {np.median([r['permutation_seconds'] for r in dc]):.1f} s "
                 f"→ α is {ratio:,.0f}× faster.")
    lines.append("Truth: " + ", ".join(f"{c} {v:.2f}" for c, v in result["truth"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 epochs, small sites")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--tile", type=int, default=64)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--sites", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sample_plate.json")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.size, args.sites, args.tile = 1, 1, 64, 1, 32
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
