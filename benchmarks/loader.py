"""Does the input pipeline keep up with decoding, and is its memory flat in the plate's size?

Writes two ImageXpress-style plates of 5-channel uint16 sites (default 1080 px): one that fits the
raw-pixel cache and one ten times larger, then measures side by side, each in a fresh process:

* ``decode``   tifffile decode of every file, one site after the other (what reading alone costs);
* ``loader``   two training passes of ``TileStream`` (the trainer's loader: decode threads, every
               site's 64 px tiles cut, shuffle buffer, batches of 32 raw tiles, as a GPU gets them);
               pass 1 reads every site, pass 2 finds the small plate in the raw-pixel cache;
* ``loader_cpu`` the same passes with every batch made into the CPU trainer's float32 input
               (``RawTiles.to("cpu")``: mirrored, turned, normalised), the cost a CPU-only run pays;
* ``predict``  ``write_plate_predictions`` (the CLI's ``predict``: batched forward passes of a small
               DCMIX model, the CSV streamed to a temporary file) over every site;
* peak resident memory of each (``ru_maxrss`` of the child), for both plate sizes;
* data-parallel training: ``torchrun`` with 1 and 2 CPU processes (gloo), training images per second.

    python benchmarks/loader.py            # 48 and 480 sites at 1080 px (~6 GB written to a temp folder)
    python benchmarks/loader.py --quick    # 12 and 120 sites at 256 px
    python benchmarks/loader.py --compression zlib --size 540 --no-ddp   # compressed files (decode is work)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = 5


def write_plate(root: Path, sites: int, size: int, compression: str | None = None) -> Path:
    import tifffile

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(100, 4000, (CHANNELS, size, size)).astype(np.uint16)
    wells = [f"{chr(66 + i // 22)}{2 + i % 22:02d}" for i in range(max(1, sites // 4))]
    labels = ["well,label"]
    for i in range(sites):
        well, site = wells[i // 4], i % 4 + 1
        for c in range(CHANNELS):
            tifffile.imwrite(root / f"P1_{well}_s{site}_w{c + 1}.tif", np.roll(base[c], i * 7, axis=1),
                             compression=compression)
        if site == 1:
            labels.append(f"{well},{'a' if len(labels) % 2 else 'b'}")
    (root.parent / f"{root.name}_labels.csv").write_text("\n".join(labels) + "\n")
    os.sync()  # the plate's write-back must not run during the measurements
    time.sleep(2)
    return root


def child(mode: str, plate_dir: str, cache_bytes: int) -> dict:
    """One measurement in this (fresh) process; prints a JSON line."""
    import tifffile
    import torch

    from napari_dcmix.plate import open_plate
    from napari_dcmix.training.data import SiteSource
    from napari_dcmix.training.pipeline import TileStream

    torch.set_num_threads(2)
    plate = open_plate(plate_dir)
    keys = plate.sites
    start = time.perf_counter()
    if mode == "decode":
        for key in keys:
            for ref in plate.index.sites[key]:
                tifffile.imread(plate.root / ref.path)
        count = len(keys)
    elif mode in ("loader", "loader_cpu"):
        stats = plate.channel_stats(n_sites=8)
        source = SiteSource(plate, stats, cache_bytes=cache_bytes)
        stream = TileStream(source, keys, [0] * len(keys), 64, 32, np.random.default_rng(0))
        cpu = torch.device("cpu")
        passes = []
        for _ in range(2):
            start = time.perf_counter()
            tiles = sum(len(x.to(cpu)) if mode == "loader_cpu" else len(y) for x, y, _ in stream)
            passes.append(time.perf_counter() - start)
        count = len(keys)
    elif mode == "predict":
        from napari_dcmix.model import ChannelClassifier
        from napari_dcmix.training import TrainedModel
        from napari_dcmix.training.exports import write_plate_predictions

        stats = plate.channel_stats(n_sites=8)
        torch.manual_seed(0)
        model = TrainedModel(ChannelClassifier("dcmix", CHANNELS, 2), plate.channels, ["a", "b"], stats, 64,
                             {"normalization": "model"})
        out = Path(plate_dir).parent / f"{Path(plate_dir).name}_predictions.csv"
        start = time.perf_counter()
        count = len(write_plate_predictions(model, plate, out, per_site=True, device="cpu").site_probabilities)
    seconds = passes[0] if mode.startswith("loader") else time.perf_counter() - start
    out = {"mode": mode, "sites": count, "seconds": seconds, "sites_per_s": count / seconds,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if mode.startswith("loader"):
        out["tiles_per_s"] = tiles / seconds
        out["pass_seconds"] = passes
        out["sites_per_s_by_pass"] = [count / t for t in passes]
    print(json.dumps(out))
    return out


def measure(mode: str, plate_dir: Path, cache_bytes: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(plate_dir), str(cache_bytes)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ddp_rate(plate_dir: Path, nproc: int, steps: int, threads: int) -> float:
    pattern = r"P1_(?P<well>[A-Z]\d+)_s(?P<site>\d)_(?P<channel>w\d)\.tif"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m",
           "napari_dcmix", "train", str(plate_dir), "--pattern", pattern, "--labels",
           str(plate_dir.parent / f"{plate_dir.name}_labels.csv"), "--label-column", "label", "--out",
           str(plate_dir.parent / f"ddp{nproc}.pt"), "--steps", str(steps), "--eval-every", str(steps),
           "--device", "cpu", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    payload = json.loads(proc.stdout)
    return payload["steps"] * 32 / payload["seconds"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PLATE", "CACHE"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=1080)
    parser.add_argument("--sites", type=int, default=48)
    parser.add_argument("--ddp-steps", type=int, default=60)
    parser.add_argument("--compression", choices=["none", "zlib"], default="none",
                        help="TIFF compression of the plates (zlib: decoding is real work, as on most screens)")
    parser.add_argument("--no-ddp", action="store_true", help="skip the data-parallel comparison")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "loader.json")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    if args.quick:
        args.size, args.sites, args.ddp_steps = 256, 12, 20
    site_bytes = CHANNELS * args.size * args.size * 2
    cache = int(args.sites * site_bytes * 1.5)  # the small plate fits, the large one is 10x the plate
    compression = None if args.compression == "none" else args.compression
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, cpu", "size": args.size,
               "compression": args.compression,
               "cache_bytes": cache, "load_average_before": os.getloadavg(), "plates": {}}
    with tempfile.TemporaryDirectory(prefix="dcmix-loader-") as tmp:
        for factor in (1, 10):
            n = args.sites * factor
            plate_dir = write_plate(Path(tmp) / f"plate{n}", n, args.size, compression)
            row = {mode: measure(mode, plate_dir, cache) for mode in ("decode", "loader", "loader_cpu", "predict")}
            decode = row["decode"]["sites_per_s"]
            row["loader_vs_decode"] = [r / decode for r in row["loader"]["sites_per_s_by_pass"]]
            row["loader_cpu_vs_decode"] = [r / decode for r in row["loader_cpu"]["sites_per_s_by_pass"]]
            results["plates"][str(n)] = row
            print(f"{n:5d} sites ({n * site_bytes / 1e9:.2f} GB raw): decode {decode:.1f} sites/s; loader pass 1 "
                  f"{row['loader']['sites_per_s_by_pass'][0]:.1f} sites/s = {row['loader_vs_decode'][0]:.2f} x decode, "
                  f"pass 2 {row['loader']['sites_per_s_by_pass'][1]:.1f} = {row['loader_vs_decode'][1]:.2f} x; "
                  f"with CPU float input pass 1 / 2 {row['loader_cpu']['sites_per_s_by_pass'][0]:.1f} / "
                  f"{row['loader_cpu']['sites_per_s_by_pass'][1]:.1f} = {row['loader_cpu_vs_decode'][0]:.2f} / "
                  f"{row['loader_cpu_vs_decode'][1]:.2f} x; "
                  f"peak RSS loader {row['loader']['peak_rss_mb']:.0f} MB, predict "
                  f"{row['predict']['peak_rss_mb']:.0f} MB ({row['predict']['sites_per_s']:.1f} sites/s)", flush=True)
        plate_dir = Path(tmp) / f"plate{args.sites}"
        if args.no_ddp:
            results["load_average_after"] = os.getloadavg()
            if not args.quick:
                args.out.write_text(json.dumps(results, indent=2) + "\n")
            return 0
        # one process with 1 and with 2 torch threads, two processes with 1 each: the same cores in use
        one_1t, one_2t = ddp_rate(plate_dir, 1, args.ddp_steps, 1), ddp_rate(plate_dir, 1, args.ddp_steps, 2)
        two = ddp_rate(plate_dir, 2, args.ddp_steps, 1)
        results["ddp"] = {"images_per_s_1_process_1_thread": one_1t, "images_per_s_1_process_2_threads": one_2t,
                          "images_per_s_2_processes_1_thread": two, "scaling_efficiency": two / (2 * one_1t)}
        print(f"DDP on {os.cpu_count()} cores: 1 process {one_1t:.0f} images/s (1 thread), {one_2t:.0f} (2 threads); "
              f"2 processes {two:.0f} images/s; scaling efficiency vs 1 process x 1 thread "
              f"{two / (2 * one_1t):.2f}", flush=True)
    results["load_average_after"] = os.getloadavg()
    if not args.quick:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
