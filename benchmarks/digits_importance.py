"""Does the learned channel importance match the truth? The paper's multi-channel MNIST test, offline.

Each scikit-learn ``load_digits`` image (8x8, upsampled to 32x32, scaled to [0, 1]) becomes C = 8 channels:
the same digit plus independent Gaussian noise of sigma_c = linspace(0.4, 3.0, 8), shuffled per seed so the
best channel is not always channel 0. The blend sum_c alpha_c x_c with the least noise is the
inverse-variance one, alpha*_c ∝ 1 / sigma_c^2, which is the ground truth the importances are scored
against (Spearman rho and L1 distance). Noise is drawn fresh for every sample in every epoch (the network
cannot memorise it); the test noise is fixed per seed.

    python benchmarks/digits_importance.py            # full run, 5 seeds x 3 models (~3-4 min on 2 idle cores)
    python benchmarks/digits_importance.py --quick    # smoke run (< 60 s)
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from napari_dcmix.model import ChannelClassifier  # noqa: E402
from napari_dcmix.training import TrainConfig  # noqa: E402
from napari_dcmix.training.probe import AlphaSchedule  # noqa: E402

DEFAULTS = TrainConfig()  # the plugin's own recipe: α learning rate and the channel probing before α starts

KINDS = ("dcmix", "all-channels", "se-attention")
SIGMAS = np.linspace(0.4, 3.0, 8)


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation = Pearson correlation of average ranks."""
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra ** 2).sum() * (rb ** 2).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def load_digit_images(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, size, size) float32 in [0, 1] and (N,) labels from scikit-learn's bundled digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = (images - images.amin()) / (images.amax() - images.amin())
    return images.clamp_(0, 1), torch.as_tensor(digits.target, dtype=torch.long)


def add_noise(clean: torch.Tensor, sigmas: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, H, W) digits -> (B, C, H, W): the digit plus N(0, sigma_c^2) noise in channel c."""
    b, _, h, w = clean.shape
    noise = torch.randn(b, len(sigmas), h, w, generator=gen) * sigmas[None, :, None, None]
    return clean + noise


def split(labels: torch.Tensor, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test split."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    y = labels.numpy()
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_test = int(round(len(idx) * test_fraction))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.array(train)), np.sort(np.array(test))


def seed_sigmas(seed: int) -> np.ndarray:
    """The channels' noise levels of one seed (shuffled, so the best channel is not always channel 0)."""
    return np.random.default_rng(seed).permutation(SIGMAS)


def run_one(kind: str, seed: int, images: torch.Tensor, labels: torch.Tensor, args,
            channels: list[int] | None = None) -> dict:
    """Train one model on one seed (on ``channels`` of the 8 only, when given); return accuracy,
    importance and its scores against alpha*, and the model and test set under ``"_model"``/``"_test"``."""
    sigmas_np = seed_sigmas(seed)
    if channels is not None:
        sigmas_np = sigmas_np[list(channels)]
    alpha_star = (1.0 / sigmas_np ** 2) / (1.0 / sigmas_np ** 2).sum()
    sigmas = torch.as_tensor(sigmas_np, dtype=torch.float32)
    train_idx, test_idx = split(labels, 0.25, seed)
    # a tenth of the training images held out, as the trainer holds out validation wells: where α starts
    # is judged on them (each channel alone, after the probing steps)
    val_idx, train_idx = train_idx[::10], np.setdiff1d(train_idx, train_idx[::10])

    torch.manual_seed(seed)
    model = ChannelClassifier(kind, n_channels=len(sigmas_np), n_classes=10, backbone=args.backbone,
                              temperature=args.temperature)
    opt = torch.optim.Adam(model.param_groups(lr=args.lr, mixing_lr=args.mixing_lr))
    steps_per_epoch = math.ceil(len(train_idx) / args.batch)
    total = steps_per_epoch * args.epochs
    warm = max(1, int(0.05 * total))
    # Same schedule for every model: short warm-up, then cosine decay to 0. The decay averages out the
    # step-to-step noise in alpha at the end of training.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed + 1000)
    x_train, y_train = images[train_idx], labels[train_idx]
    t0 = time.perf_counter()
    model.train()
    x_val = add_noise(images[val_idx], sigmas, torch.Generator().manual_seed(seed + 3000))
    alpha = AlphaSchedule(model, args.probe_fraction, total, 10, optimizer=opt,
                          held_out=lambda: [(x_val, labels[val_idx])])
    step = 0
    for _epoch in range(args.epochs):
        perm = torch.randperm(len(train_idx), generator=gen)
        for i in range(steps_per_epoch):
            alpha.before_step(step)  # the trainer's α schedule: each channel probed alone, then α from that
            idx = perm[i * args.batch:(i + 1) * args.batch]
            x = add_noise(x_train[idx], sigmas, gen)
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss_fn(logits, y_train[idx]).backward()
            alpha.after_forward(step, logits, y_train[idx])
            opt.step()
            sched.step()
            step += 1
    train_s = time.perf_counter() - t0
    alpha.finish()

    test_gen = torch.Generator().manual_seed(seed + 2000)
    x_test = add_noise(images[test_idx], sigmas, test_gen)
    y_test = labels[test_idx]
    model.eval()
    correct = 0
    test_attention = []
    with torch.no_grad():
        for i in range(0, len(test_idx), 256):
            xb = x_test[i:i + 256]
            correct += int((model(xb).argmax(1) == y_test[i:i + 256]).sum())
            if model.attention is not None:
                test_attention.append(model.attention.weights(xb).double())
    result = {"kind": kind, "seed": seed, "accuracy": correct / len(test_idx), "train_s": train_s,
              "sigmas": sigmas_np.tolist(), "alpha_star": alpha_star.tolist(), "_model": model,
              "_test": (x_test, y_test)}
    # Scored: what the plugin shows, model.importance() (DCMIX: alpha; SE: running mean of the attention
    # over the last training batches).
    imp = model.importance()
    if imp is not None:
        result.update(importance=imp.tolist(), spearman=spearman(imp, alpha_star),
                      l1=float(np.abs(imp - alpha_star).sum()))
    if test_attention:  # for reference: SE's mean attention on the test set, scored the same way
        att = torch.cat(test_attention).mean(0).numpy()
        att = att / att.sum()
        result.update(test_attention=att.tolist(), test_attention_spearman=spearman(att, alpha_star),
                      test_attention_l1=float(np.abs(att - alpha_star).sum()))
    return result


def _mean_sd(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summarise(runs: list[dict]) -> dict[str, dict]:
    summary = {}
    for kind in KINDS:
        rows = [r for r in runs if r["kind"] == kind]
        if not rows:
            continue
        entry = {"n_seeds": len(rows)}
        keys = ("accuracy", "spearman", "l1", "train_s", "test_attention_spearman", "test_attention_l1")
        for key in keys:
            if key in rows[0]:
                mean, sd = _mean_sd([r[key] for r in rows])
                entry[key] = {"mean": mean, "sd": sd, "min": float(min(r[key] for r in rows)),
                              "max": float(max(r[key] for r in rows))}
        summary[kind] = entry
    return summary


def markdown_table(summary: dict[str, dict]) -> str:
    lines = ["| model | test accuracy | Spearman rho (importance, alpha*) | L1 abs(alpha - alpha*) "
             "| train s/seed |", "| --- | --- | --- | --- | --- |"]

    def fmt(entry, key, digits=3):
        if key not in entry:
            return "n/a"
        v = entry[key]
        return (f"{v['mean']:.{digits}f} ± {v['sd']:.{digits}f} "
                f"(min {v['min']:.{digits}f}, max {v['max']:.{digits}f})")

    for kind, entry in summary.items():
        acc = entry["accuracy"]
        lines.append(f"| {kind} | {acc['mean']:.4f} ± {acc['sd']:.4f} | {fmt(entry, 'spearman')} | "
                     f"{fmt(entry, 'l1')} | {entry['train_s']['mean']:.1f} |")
    return "\n".join(lines)


def add_training_args(parser: argparse.ArgumentParser) -> None:
    """The training options every digits benchmark shares (the plugin's α recipe by default)."""
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--mixing-lr", type=float, default=DEFAULTS.mixing_lr)
    parser.add_argument("--probe-fraction", type=float, default=DEFAULTS.probe_fraction,
                        help="share of the steps in which each channel is tried alone before α starts (0: plain DCMIX)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--backbone", default="small")
    parser.add_argument("--threads", type=int, default=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, few epochs, < 60 s")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None)
    add_training_args(parser)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "digits_importance.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = min(args.seeds, 1)
        args.epochs = args.epochs or 4
    args.epochs = args.epochs or 30
    torch.set_num_threads(args.threads)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]

    images, labels = load_digit_images(args.size)
    print(f"digits: {len(labels)} images at {args.size}px, C={len(SIGMAS)} channels, "
          f"sigma={np.round(SIGMAS, 3).tolist()}, seeds={args.seeds}, epochs={args.epochs}, "
          f"batch={args.batch}, lr={args.lr}, mixing_lr={args.mixing_lr}, T={args.temperature}", flush=True)
    runs = []
    t_start = time.perf_counter()
    for seed in range(args.seeds):
        for kind in kinds:
            r = {k: v for k, v in run_one(kind, seed, images, labels, args).items() if not k.startswith("_")}
            runs.append(r)
            extra = f" rho={r['spearman']:.3f} L1={r['l1']:.3f}" if "spearman" in r else ""
            print(f"seed {seed} {kind:13s} acc={r['accuracy']:.4f}{extra} ({r['train_s']:.1f}s)", flush=True)
            if "importance" in r:
                print(f"    importance {np.round(r['importance'], 4).tolist()}\n"
                      f"    alpha*     {np.round(r['alpha_star'], 4).tolist()}", flush=True)
    summary = summarise(runs)
    table = markdown_table(summary)
    print()
    print(table)
    se = summary.get("se-attention", {})
    if "test_attention_spearman" in se:
        print(f"\nse-attention, mean attention on the test set instead of the training running mean: "
              f"rho {se['test_attention_spearman']['mean']:.3f} ± {se['test_attention_spearman']['sd']:.3f}, "
              f"L1 {se['test_attention_l1']['mean']:.3f} ± {se['test_attention_l1']['sd']:.3f}")
    if "dcmix" in summary and "all-channels" in summary:
        ratio = summary["dcmix"]["accuracy"]["mean"] / summary["all-channels"]["accuracy"]["mean"]
        print(f"\naccuracy ratio dcmix / all-channels: {ratio:.4f}")
    goals = {"spearman_min": 0.97, "l1_max": 0.10}
    if "dcmix" in summary and "spearman" in summary["dcmix"]:
        d = summary["dcmix"]
        goals["dcmix_meets_spearman"] = d["spearman"]["mean"] >= goals["spearman_min"]
        goals["dcmix_meets_l1"] = d["l1"]["mean"] <= goals["l1_max"]
        print(f"goals (mean over seeds): rho >= 0.97: {goals['dcmix_meets_spearman']}, "
              f"L1 <= 0.10: {goals['dcmix_meets_l1']}")
    wall = time.perf_counter() - t_start
    print(f"total wall time: {wall:.1f}s")
    payload = {
        "benchmark": "digits_importance",
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sigmas": SIGMAS.tolist(),
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine(), "threads": torch.get_num_threads()},
        "summary": summary,
        "goals": goals,
        "runs": runs,
        "table_markdown": table,
        "wall_s": wall,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
