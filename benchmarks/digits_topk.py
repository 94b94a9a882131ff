"""Which channels to keep, checked by retraining, on the digits protocol (issue 21).

The digits protocol of ``digits_importance.py`` (8 channels: the same digit, each with its own noise
level) has a known best order of channels. Per seed, one DCMIX model on all 8 channels gives two
rankings: its α and the permutation importance of its channels on the test images (each channel's
pixels shuffled across images, the accuracy drop). A third is a random order. For k = 1 … 8 a new
DCMIX model is trained on the top-k channels of each ranking and tested; the area under that accuracy
curve (its mean over k) says how good a ranking is at choosing which stains to keep. Every model is
trained with the plugin's recipe (``TrainConfig``: α learning rate, each channel probed alone first).

    python benchmarks/digits_topk.py              # 3 seeds (about 10 minutes on 2 idle cores)
    python benchmarks/digits_topk.py --seeds 1 --epochs 10   # smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from digits_importance import SIGMAS, add_training_args, load_digit_images, run_one, seed_sigmas  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def permutation_ranking(model, x: torch.Tensor, y: torch.Tensor, seed: int, repeats: int = 3) -> np.ndarray:
    """Accuracy drop per channel when its pixels are shuffled across the test images (mean of repeats)."""
    gen = torch.Generator().manual_seed(seed + 4000)
    model.eval()
    with torch.no_grad():
        base = float((model(x).argmax(1) == y).float().mean())
        drops = np.zeros(x.shape[1])
        for c in range(x.shape[1]):
            for _ in range(repeats):
                shuffled = x.clone()
                shuffled[:, c] = x[torch.randperm(len(x), generator=gen), c]
                drops[c] += base - float((model(shuffled).argmax(1) == y).float().mean())
    return drops / repeats


def curve(order: list[int], seed: int, images, labels, args, cache: dict) -> list[float]:
    """Test accuracy of DCMIX on the top-k channels of ``order``, k = 1 … 8 (subsets trained once)."""
    out = []
    for k in range(1, len(order) + 1):
        subset = tuple(sorted(order[:k]))
        if subset not in cache:
            cache[subset] = run_one("dcmix", seed, images, labels, args, channels=list(subset))["accuracy"]
        out.append(cache[subset])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    add_training_args(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "digits_topk.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    images, labels = load_digit_images(args.size)
    start, runs = time.perf_counter(), []
    for seed in range(args.seeds):
        full = run_one("dcmix", seed, images, labels, args)
        truth = 1.0 / seed_sigmas(seed) ** 2
        rankings = {
            "alpha": np.argsort(-np.asarray(full["importance"])).tolist(),
            "permutation": np.argsort(-permutation_ranking(full["_model"], *full["_test"], seed)).tolist(),
            "random": np.random.default_rng(seed + 5000).permutation(len(SIGMAS)).tolist(),
            "truth (best possible)": np.argsort(-truth).tolist(),
        }
        cache = {tuple(range(len(SIGMAS))): full["accuracy"]}
        curves = {name: curve(order, seed, images, labels, args, cache) for name, order in rankings.items()}
        areas = {name: float(np.mean(c)) for name, c in curves.items()}
        runs.append({"seed": seed, "rankings": rankings, "curves": curves, "area": areas})
        print(f"seed {seed}: " + ", ".join(f"{n} {a:.3f}" for n, a in areas.items()), flush=True)
        for name, c in curves.items():
            print(f"    {name:22s} " + " ".join(f"{v:.3f}" for v in c), flush=True)
    names = list(runs[0]["area"])
    mean = {n: float(np.mean([r["area"][n] for r in runs])) for n in names}
    goals = {"alpha_within_0.02_of_permutation_or_above": mean["alpha"] >= mean["permutation"] - 0.02,
             "both_above_random": mean["alpha"] > mean["random"] and mean["permutation"] > mean["random"]}
    print("\n| ranking | area under the top-k accuracy curve, mean over seeds | per seed |\n| --- | --- | --- |")
    for n in names:
        print(f"| {n} | {mean[n]:.3f} | " + " / ".join(f"{r['area'][n]:.3f}" for r in runs) + " |")
    print(f"goals: {goals}; {time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "digits_topk", "machine": platform.platform(),
                                    "config": {k: str(v) for k, v in vars(args).items()}, "mean_area": mean,
                                    "goals": goals, "runs": runs}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
