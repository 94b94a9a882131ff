"""Label these wells next (issue 22): do suggested wells teach a model faster than random ones?

Per plate and seed: a fixed, stratified quarter of the labelled wells is the **test set** (never offered
for labelling, never trained on); both arms start from the same **3 wells per class** (the fewest the
Trainer's train / validation / test split and explain's 3 folds allow), drawn from the other wells.
Each round trains a model with the product's ``Trainer`` (``TrainConfig()``, except ``--steps``),
measures its accuracy on the test wells, then adds **4 wells** with their true labels: the 4 that
``napari-dcmix suggest`` ranks first among the not yet labelled, non-test wells (*suggested* arm), or 4
drawn at random from them (*random* arm), until every non-test well is labelled. ``--engine explain``
trains explain's phenotype panel instead (3 fold models a round; the suggestions then use their
disagreement too).

Goal: the suggested curve (mean over seeds) reaches the random curve's final accuracy (or 0.95, if
lower) with ≤ 60 % of the labels the random curve needs for it.

    python benchmarks/suggest_labels.py                 # the full protocol: sample + screen plates, 3 seeds (hours)
    python benchmarks/suggest_labels.py --engine explain --seed-list 1 &   # seeds in parallel processes:
    python benchmarks/suggest_labels.py --engine explain --seed-list 2 &   # each finished (plate, seed) goes to
    python benchmarks/suggest_labels.py --engine explain --merge           # the .jsonl; --merge tables them all
    nice -n 10 python benchmarks/suggest_labels.py --quick   # 1 seed, 2 rounds, 60 steps, small plates: minutes

Writes ``results/suggest_labels.json`` and ``results/suggest_labels.png`` (``--quick``: ``*_quick.*``); every
finished (plate, seed) run is appended to ``results/suggest_labels_<engine>.jsonl`` at once, and a run already
there is not trained again.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from benchmark_plates import PATTERN, REFERENCE, write_benchmark_plate  # noqa: E402

from napari_dcmix.plate import open_plate, read_labels  # noqa: E402
from napari_dcmix.plate.sample import NEGATIVE, write_sample_plate  # noqa: E402
from napari_dcmix.training import TrainConfig, Trainer, predict_sites, well_probabilities  # noqa: E402
from napari_dcmix.training.suggest import suggest_wells  # noqa: E402

START_PER_CLASS, ADD_PER_ROUND, TEST_SHARE, GOAL_SHARE, GOAL_CAP = 3, 4, 0.25, 0.6, 0.95
ARMS = ("suggested", "random")


def make_plate(root: Path, name: str, seed: int, quick: bool):
    """(plate, (plate, well) -> true class, reference class)."""
    if name == "sample":
        path = write_sample_plate(root / "sample", seed=seed, **({"size": 96, "sites": 1} if quick else {}))
        plate, labels_csv, reference = open_plate(path), path / "labels.csv", NEGATIVE
    else:
        path, labels_csv, _ = write_benchmark_plate(root / name, name, seed)
        plate, reference = open_plate(path, PATTERN), REFERENCE
    return plate, read_labels(labels_csv, plate.sites).well_labels(), reference


def split(truth: dict, seed: int) -> tuple[list, list]:
    """(test wells: a stratified TEST_SHARE of every class, start wells: START_PER_CLASS of every class
    among the others), both seeded."""
    rng = np.random.default_rng(seed)
    test, start = [], []
    for cls in sorted(set(truth.values())):
        wells = sorted(w for w, c in truth.items() if c == cls)
        order = [wells[i] for i in rng.permutation(len(wells))]
        n_test = max(1, round(TEST_SHARE * len(wells)))
        test += order[:n_test]
        start += order[n_test:n_test + START_PER_CLASS]
    return test, start


def train(plate, labels: dict, config: TrainConfig, engine: str, reference: str):
    if engine == "explain":
        from napari_dcmix.training.explain import ExplainConfig, Explainer

        explainer = Explainer(plate, labels, ExplainConfig(reference=reference, train=config, include_all=False))
        explainer.fit()
        return explainer.panel
    return Trainer(plate, labels, config).fit()


def accuracy_on(model, plate, truth: dict, test: list) -> float:
    keys = [k for p, w in test for k in plate.sites_of(w, p)]
    probs = well_probabilities(list(predict_sites(model, plate, keys)))
    right = [model.classes[int(np.argmax(p))] == truth[well] for well, p in probs.items()]
    return float(np.mean(right))


def next_wells(arm: str, model, plate, labels: dict, pool: list, rng) -> list:
    """ADD_PER_ROUND wells of ``pool``: the suggested ones, or a random draw."""
    if len(pool) <= ADD_PER_ROUND:
        return list(pool)
    if arm == "random":
        return [pool[i] for i in sorted(rng.choice(len(pool), ADD_PER_ROUND, replace=False))]
    result = None
    for event in suggest_wells(model, plate, labels, n=ADD_PER_ROUND, within=pool):
        result = event.result or result
    return result.wells()


def default_steps(args) -> int:
    """``--steps``, or the engine's own default (explain's per-fold budget is smaller than train's)."""
    from napari_dcmix.training.explain import EXPLAIN_STEPS

    return args.steps or (EXPLAIN_STEPS if args.engine == "explain" else TrainConfig().steps)


def run_arm(arm: str, plate, truth: dict, test: list, start: list, args, seed: int, reference: str) -> list[dict]:
    """The learning curve of one arm: (labels, test accuracy, seconds) per round."""
    config = TrainConfig(seed=seed, steps=default_steps(args))
    labels = {w: truth[w] for w in start}
    rng = np.random.default_rng(1000 + seed)
    curve = []
    for round_ in range(args.rounds or 10_000):
        began = time.perf_counter()
        model = train(plate, labels, config, args.engine, reference)
        accuracy = accuracy_on(model, plate, truth, test)
        pool = [w for w in truth if w not in labels and w not in set(test)]
        picked = next_wells(arm, model, plate, labels, pool, rng) if pool else []
        curve.append({"labels": len(labels), "accuracy": accuracy, "seconds": time.perf_counter() - began,
                      "added": [w for _, w in picked]})
        print(f"  {arm:>9} round {round_}: {len(labels)} labels, test accuracy {accuracy:.3f} "
              f"({curve[-1]['seconds']:.0f} s), adds {', '.join(w for _, w in picked) or '-'}", flush=True)
        if not picked:
            break
        labels.update({w: truth[w] for w in picked})
    return curve


def one(name: str, seed: int, root: Path, args) -> dict:
    plate, truth, reference = make_plate(root, name, seed, args.quick)
    test, start = split(truth, seed)
    print(f"{name} seed {seed}: {len(truth)} labelled wells, {len(test)} test, start {len(start)}", flush=True)
    return {"plate": name, "seed": seed, "wells": len(truth), "test_wells": sorted(w for _, w in test),
            "arms": {arm: run_arm(arm, plate, truth, test, start, args, seed, reference) for arm in ARMS}}


def mean_curves(runs: list[dict]) -> dict[str, dict[int, list[float]]]:
    """arm -> labels -> the test accuracies of the seeds."""
    curves: dict[str, dict[int, list[float]]] = {arm: defaultdict(list) for arm in ARMS}
    for run in runs:
        for arm in ARMS:
            for point in run["arms"][arm]:
                curves[arm][point["labels"]].append(point["accuracy"])
    return {arm: dict(sorted(c.items())) for arm, c in curves.items()}


def goal(curves: dict) -> dict:
    """Labels each arm's mean curve needs to reach the target (random's final mean accuracy, at most
    GOAL_CAP), and whether suggested needs ≤ GOAL_SHARE of random's."""
    means = {arm: {n: float(np.mean(v)) for n, v in c.items()} for arm, c in curves.items()}
    target = min(GOAL_CAP, list(means["random"].values())[-1])
    needed = {arm: next((n for n, acc in m.items() if acc >= target - 1e-9), None) for arm, m in means.items()}
    ratio = needed["suggested"] / needed["random"] if None not in needed.values() else None
    return {"target": target, "needed": needed, "ratio": ratio, "met": ratio is not None and ratio <= GOAL_SHARE}


def table(name: str, curves: dict, verdict: dict) -> list[str]:
    lines = [f"### {name}", "", "| labelled wells | suggested: test accuracy (min–max) | random: test accuracy (min–max) |",
             "|---|---|---|"]
    for n in sorted(set(curves["suggested"]) | set(curves["random"])):
        cells = [f"{np.mean(c[n]):.3f} ({min(c[n]):.2f}–{max(c[n]):.2f})" if n in c else "–"
                 for c in (curves["suggested"], curves["random"])]
        lines.append(f"| {n} | {cells[0]} | {cells[1]} |")
    need = verdict["needed"]
    lines += ["", f"target {verdict['target']:.3f}: suggested needs {need['suggested']} labels, random {need['random']} "
              f"(ratio {verdict['ratio'] if verdict['ratio'] is None else round(verdict['ratio'], 2)}; goal ≤ "
              f"{GOAL_SHARE}): {'met' if verdict['met'] else 'NOT met'}", ""]
    return lines


def plot(path: Path, per_plate: dict) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * len(per_plate), 4.2))
    FigureCanvasAgg(fig)
    for i, (name, (curves, verdict)) in enumerate(per_plate.items()):
        ax = fig.add_subplot(1, len(per_plate), i + 1)
        for arm, colour in zip(ARMS, ("#00a5c4", "#888888")):
            ns = list(curves[arm])
            acc = np.array([[np.mean(curves[arm][n]), min(curves[arm][n]), max(curves[arm][n])] for n in ns])
            ax.plot(ns, acc[:, 0], marker="o", ms=3, color=colour, label=f"{arm} wells")
            ax.fill_between(ns, acc[:, 1], acc[:, 2], color=colour, alpha=0.18, linewidth=0)
        ax.axhline(verdict["target"], color="black", linestyle="--", linewidth=0.8, label="target")
        ax.set(title=f"{name}: test accuracy vs labels", xlabel="labelled wells", ylabel="test-well accuracy",
               ylim=(0, 1.02))
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def load_runs(path: Path, engine: str, steps: int) -> dict[tuple[str, int], dict]:
    """(plate, seed) -> run, for the runs of ``engine`` at ``steps`` already in the .jsonl."""
    if not path.exists():
        return {}
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["plate"], r["seed"]): r for r in runs if r.get("engine") == engine and r.get("steps") == steps}


def append_run(path: Path, run: dict) -> None:
    """One line per finished run; locked, since seeds may run in parallel processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(run) + "\n")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plates", default="sample,screen")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-list", default="", help="train only these seeds (e.g. 1,2), for parallel processes")
    parser.add_argument("--merge", action="store_true", help="train nothing: table the runs in the .jsonl")
    parser.add_argument("--steps", type=int, default=0, help="training steps per model (0: TrainConfig's default)")
    parser.add_argument("--rounds", type=int, default=0, help="stop after this many rounds (0: every non-test well)")
    parser.add_argument("--engine", choices=("train", "explain"), default="train")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 rounds, 60 steps, small sample plate")
    parser.add_argument("--out", default="", help="results JSON (default: results/suggest_labels[_explain].json)")
    args = parser.parse_args()
    args.out = args.out or str(Path(__file__).parent / "results" /
                               f"suggest_labels{'_explain' if args.engine == 'explain' else ''}.json")
    if args.quick:
        args.seeds, args.rounds, args.steps = 1, args.rounds or 2, args.steps or 60
        args.out = args.out.replace(".json", "_quick.json")
    partial = Path(args.out).with_suffix(".jsonl")
    steps = default_steps(args)
    done = load_runs(partial, args.engine, steps)
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    if not args.merge:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.plates.split(","):
                for seed in seeds:
                    if (name, seed) in done:
                        print(f"{name} seed {seed}: already in {partial}", flush=True)
                        continue
                    done[name, seed] = {**one(name, seed, Path(tmp) / f"{name}{seed}", args),
                                         "engine": args.engine, "steps": steps}
                    append_run(partial, done[name, seed])
        if args.seed_list:
            print(f"appended to {partial}; table every seed with --merge")
            return
    runs, lines, per_plate = [], [], {}
    for name in args.plates.split(","):
        plate_runs = [run for (plate, _), run in sorted(done.items()) if plate == name]
        if plate_runs:
            runs += plate_runs
            curves = mean_curves(plate_runs)
            per_plate[name] = (curves, goal(curves))
            lines += table(name, curves, per_plate[name][1])
    print("\n".join(lines))
    settings = {"steps": steps, "rounds": args.rounds or "all",
                "seeds": sorted({r["seed"] for r in runs}),
                "engine": args.engine, "start_per_class": START_PER_CLASS, "add_per_round": ADD_PER_ROUND,
                "test_share": TEST_SHARE, "quick": args.quick}
    Path(args.out).write_text(json.dumps({
        "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "settings": settings, "goals": {n: v for n, (_, v) in per_plate.items()}, "runs": runs}, indent=1))
    plot(Path(args.out).with_suffix(".png"), per_plate)
    print(f"written {args.out} and {Path(args.out).with_suffix('.png')}")


if __name__ == "__main__":
    main()
