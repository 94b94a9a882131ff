"""What does the mixing layer cost? Training images/s of dcmix vs the baselines on the same backbone.

One training step = forward + backward + Adam step on a batch of 32 five-channel 96x96 tiles. All models
are built in one process and measured interleaved (warm-up first, then rounds of a few steps per model,
median over rounds), so clock-speed drift and background load hit every model alike.

    python benchmarks/throughput.py                 # full run
    python benchmarks/throughput.py --quick         # smoke run (< 60 s)
    python benchmarks/throughput.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from napari_dcmix.model import ChannelClassifier, count_parameters  # noqa: E402

KINDS = ("dcmix", "all-channels", "se-attention")


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class Trainer:
    """One model, its optimizer and a fixed batch; ``steps(n)`` times n training steps."""

    def __init__(self, kind: str, backbone: str, args, device: torch.device) -> None:
        torch.manual_seed(0)
        self.kind, self.backbone = kind, backbone
        self.model = ChannelClassifier(kind, args.channels, n_classes=4, backbone=backbone).to(device)
        self.model.train()
        self.opt = torch.optim.Adam(self.model.param_groups(lr=3e-3, mixing_lr=0.1))
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(args.batch, args.channels, args.size, args.size, generator=gen).to(device)
        self.y = torch.randint(0, 4, (args.batch,), generator=gen).to(device)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.device = device
        self.batch = args.batch
        self.rates: list[float] = []

    def steps(self, n: int) -> float:
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(n):
            self.opt.zero_grad(set_to_none=True)
            self.loss_fn(self.model(self.x), self.y).backward()
            self.opt.step()
        _sync(self.device)
        return n * self.batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer rounds, < 60 s")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    parser.add_argument("--backbones", default="small,resnet18")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved measurement rounds")
    parser.add_argument("--steps", type=int, default=None, help="training steps per model per round")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps per model")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "throughput.json")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (2 if quick else 7)
    args.steps = args.steps or (1 if quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    if quick:
        args.size = min(args.size, 64)
        args.batch = min(args.batch, 16)
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]

    print(f"device={device} threads={torch.get_num_threads()} batch={args.batch} channels={args.channels} "
          f"tile={args.size}px rounds={args.rounds} x {args.steps} steps, warm-up {args.warmup}", flush=True)
    trainers = [Trainer(kind, bb, args, device) for bb in backbones for kind in KINDS]
    for t in trainers:
        if args.warmup:
            t.steps(args.warmup)
    for _ in range(args.rounds):
        for t in trainers:
            t.rates.append(t.steps(args.steps))

    results = []
    for bb in backbones:
        group = {t.kind: t for t in trainers if t.backbone == bb}
        ref = statistics.median(group["dcmix"].rates)
        for kind in KINDS:
            t = group[kind]
            med = statistics.median(t.rates)
            results.append({
                "backbone": bb, "kind": kind, "images_per_s": med,
                "images_per_s_min": min(t.rates), "images_per_s_max": max(t.rates),
                "ratio_vs_dcmix": med / ref, "parameters": count_parameters(t.model),
                "rates": t.rates,
            })

    lines = ["| backbone | model | train images/s (median) | min-max | ratio vs dcmix | parameters |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['backbone']} | {r['kind']} | {r['images_per_s']:.1f} | "
                     f"{r['images_per_s_min']:.1f}-{r['images_per_s_max']:.1f} | {r['ratio_vs_dcmix']:.3f} | "
                     f"{r['parameters']:,} |")
    table = "\n".join(lines)
    print()
    print(table)
    payload = {
        "benchmark": "throughput",
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine(), "threads": torch.get_num_threads()},
        "results": results,
        "table_markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
