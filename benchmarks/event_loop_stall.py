"""Does napari stay responsive while the Train dock trains? The longest event-loop stall, measured.

A 10 ms QTimer probe runs on napari's GUI thread (inside the real Qt event loop); every gap between
ticks beyond 10 ms is time the event loop could not react (a click, a pan, a repaint). Phases:

* opening the Train and Channel-importance docks (and the one-off torch warm-up import they start),
* idle viewer (baseline),
* napari floor: one plain layer's data replaced once a second, no training: what any layer update
  costs on this display (the composite does this once per epoch),
* training through the dock's Start button with the importance chart and the DCMIX composite live.

The longest training stalls are listed with the plugin code that ran inside them. ``--no-activity-bar``
replaces napari's activity-dock progress bar by a no-op, to measure what that bar costs. Run under a
display (xvfb-run on CI); goal: longest stall < 100 ms:

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb python benchmarks/event_loop_stall.py
    ... benchmarks/event_loop_stall.py --seconds 10 --tile 32      # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

PROBE_MS = 10


class Probe:
    """Records tick times of a fast QTimer; stall = gap between ticks minus the interval."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self):
        self.ticks = []
        self.timer.start()

    def stop(self) -> np.ndarray:
        self.timer.stop()
        return np.maximum(np.diff(np.asarray(self.ticks)) * 1000 - PROBE_MS, 0.0)

    def worst(self, n: int = 5) -> list[tuple[float, float]]:
        """(start time, stall ms) of the ``n`` longest gaps."""
        ticks = np.asarray(self.ticks)
        gaps = np.diff(ticks) * 1000 - PROBE_MS
        return [(float(ticks[i]), float(gaps[i])) for i in np.argsort(gaps)[::-1][:n]]


class HandlerClock:
    """GUI-thread time spent in selected functions (to find the cause of a stall)."""

    def __init__(self):
        self.times: dict[str, list[float]] = {}
        self.spans: list[tuple[float, float, str]] = []  # (start, end, label) for blaming stalls

    def wrap(self, owner, name: str, label: str, detail=None):
        original = getattr(owner, name)
        times = self.times.setdefault(label, [])

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                t1 = time.perf_counter()
                times.append((t1 - t0) * 1000)
                self.spans.append((t0, t1, label + (f" [{detail(*args)}]" if detail else "")))

        setattr(owner, name, timed)

    def summary(self) -> dict:
        return {k: {"calls": len(v), "max_ms": round(max(v), 1) if v else 0.0,
                    "mean_ms": round(float(np.mean(v)), 2) if v else 0.0} for k, v in self.times.items()}


def stats(stalls: np.ndarray, seconds: float) -> dict:
    if stalls.size == 0:
        stalls = np.zeros(1)
    return {"seconds": round(seconds, 1), "ticks": int(stalls.size + 1),
            "max_ms": round(float(stalls.max()), 1), "p50_ms": round(float(np.percentile(stalls, 50)), 1),
            "p95_ms": round(float(np.percentile(stalls, 95)), 1), "p99_ms": round(float(np.percentile(stalls, 99)), 1),
            "over_50ms": int((stalls > 50).sum()), "over_100ms": int((stalls > 100).sum())}


def wait(app, seconds: float, until=None) -> None:
    """Run the real Qt event loop (C++, as in napari) for ``seconds`` or until ``until()`` is true.

    A Python loop of processEvents + sleep would itself need the GIL on every turn and so measure
    the benchmark, not napari."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    if until is not None:
        poll = QTimer()
        poll.setInterval(50)
        poll.timeout.connect(lambda: until() and loop.quit())
        poll.start()
    loop.exec()


def measure(app, probe, seconds: float, until=None, action=None) -> dict:
    """Probe the event loop for ``seconds`` (or until ``until()``), with the machine's load average."""
    load0 = os.getloadavg()[0]
    probe.start()
    t0 = time.perf_counter()
    if action is not None:  # inside the event loop, so the probe sees the stall it causes
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, action)
    wait(app, seconds, until)
    row = stats(probe.stop(), time.perf_counter() - t0)
    row["load_avg"] = round((load0 + os.getloadavg()[0]) / 2, 1)
    row["_t0"] = t0
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0, help="training time measured")
    parser.add_argument("--baseline-seconds", type=float, default=8.0)
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100_000, help="budget (the run is stopped after --seconds)")
    parser.add_argument("--wells", type=int, default=96)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--no-activity-bar", action="store_true",
                        help="diagnosis: replace napari's activity-dock progress bar by a no-op")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "event_loop_stall.json"))
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_dcmix.plate import open_plate, read_labels
    from napari_dcmix.plate.sample import LABEL_COLUMN, PATTERN, write_sample_plate
    from napari_dcmix.widgets import composite, throttle
    from napari_dcmix.widgets.importance import dock as importance_dock
    from napari_dcmix.widgets.train import dock as train_dock
    from napari_dcmix.widgets.session import get_session

    if args.no_activity_bar:
        import napari.utils

        class _NoBar:
            def __init__(self, *a, total=0, **k):
                self.total, self.n = total, 0

            def update(self, n=1):
                self.n += n

            def set_description(self, desc):
                pass

            def close(self):
                pass

        napari.utils.progress = _NoBar

    tmp = Path(tempfile.mkdtemp(prefix="dcmix-stall-"))
    t0 = time.perf_counter()
    plate_dir = write_sample_plate(tmp / "plate", wells=args.wells, sites=1, size=args.size)
    plate = open_plate(plate_dir, PATTERN)
    labels = read_labels(plate_dir / "labels.csv", plate.sites, LABEL_COLUMN).well_labels()
    print(f"sample plate: {args.wells} wells, {args.size}px, written in {time.perf_counter() - t0:.1f} s", flush=True)

    clock = HandlerClock()
    clock.wrap(train_dock.TrainWidget, "_on_update", "train dock: event handler", lambda self, u: u.kind)
    clock.wrap(train_dock.TrainWidget, "_refresh_view", "train dock: view refresh (throttled)")
    clock.wrap(importance_dock.ImportanceWidget, "_draw", "importance dock: chart update")
    clock.wrap(composite, "update_composite", "composite update")
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

    clock.wrap(FigureCanvasQTAgg, "draw", "matplotlib full draw (Agg)")

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    wait(app, 2.0)
    probe = Probe()
    phases = {}

    def open_docks():
        train = train_dock.TrainWidget(viewer)  # starts the one-off torch warm-up import in a worker
        importance = importance_dock.ImportanceWidget(viewer)
        viewer.window.add_dock_widget(train, name="Train", area="right")
        viewer.window.add_dock_widget(importance, name="Channel importance", area="right")
        session = get_session(viewer)
        session.open_plate(plate, PATTERN)
        session.set_labels(labels, LABEL_COLUMN)
        try:
            from napari_dcmix.widgets.site_layers import show_site

            show_site(viewer, plate, plate.sites[0], pattern=PATTERN)
        except ImportError:
            pass
        session.set_site(plate.sites[0])
        docks.extend([train, importance])

    docks: list = []
    phases["opening docks + torch warm-up"] = measure(
        app, probe, 60.0, until=lambda: bool(docks) and docks[0].warm_up.thread_done, action=open_docks)
    train = docks[0]
    wait(app, 2.0)
    phases["idle (baseline)"] = measure(app, probe, args.baseline_seconds)

    # napari's own cost of repainting after one layer's data changes (what the composite does per epoch)
    floor_layer = viewer.add_image(np.zeros((args.size, args.size), np.float32), name="floor probe")
    wait(app, 1.0)
    rng = np.random.default_rng(0)
    timer = QTimer()
    timer.setInterval(1000)
    timer.timeout.connect(lambda: setattr(floor_layer, "data", rng.random((args.size, args.size), np.float32)))
    timer.start()
    phases["napari floor: 1 layer update/s"] = measure(app, probe, args.baseline_seconds)
    timer.stop()
    viewer.layers.remove(floor_layer)
    wait(app, 1.0)

    train.form["tile"].value = args.tile
    train.form["batch_size"].value = args.batch_size
    train.form["steps"].value = args.steps
    train.form["patience"].value = 10_000  # no early stop: the measured phase trains throughout
    train.form["device"].value = "auto"
    marks = {}

    def start_training():
        train.start_button.click()

    def first_step():
        if train._curves.step_loss and "first_step" not in marks:
            marks["first_step"] = time.perf_counter()
        return "first_step" in marks and time.perf_counter() - marks["first_step"] > args.seconds

    clock.spans.clear()
    row = measure(app, probe, args.seconds + 120.0, until=first_step, action=start_training)
    steps = train._curves.step_x[-1] if train._curves.step_x else 0
    t_stop = time.perf_counter()
    train.stop_button.click()
    wait(app, 60.0, until=lambda: train.worker is None)
    row.update(first_step_s=round(marks.get("first_step", t_stop) - row["_t0"], 2), epochs_done=len(train._curves.epochs),
               epochs_of_steps=round(steps, 2), stop_to_model_s=round(time.perf_counter() - t_stop, 2))
    blame = []
    for start, gap in probe.worst(6):
        inside = sorted({label for a, b, label in clock.spans if a < start + gap / 1000 and b > start})
        blame.append({"stall_ms": round(gap, 1), "at_s": round(start - row["_t0"], 2), "during": inside})
    phases["training (all docks live)"] = row

    for value in phases.values():
        value.pop("_t0", None)
    result = {
        "goal_max_stall_ms": 100, "probe_interval_ms": PROBE_MS, "phases": phases,
        "longest_training_stalls": blame, "gui_thread_handlers": clock.summary(),
        "settings": {"wells": args.wells, "size": args.size, "tile": args.tile, "batch_size": args.batch_size,
                     "steps": args.steps, "device": train.device_label.text(),
                     "torch_threads": train_dock.TORCH_THREADS, "max_redraws_per_s": throttle.MAX_REDRAWS_PER_S,
                     "activity_bar": not args.no_activity_bar},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "napari": napari.__version__, "display": os.environ.get("DISPLAY", "")},
    }
    print(f"\n{'phase':<32}{'s':>6}{'load':>6}{'ticks':>7}{'max ms':>8}{'p50':>6}{'p95':>7}{'p99':>7}{'>50ms':>6}{'>100ms':>7}")
    for name, r in phases.items():
        print(f"{name:<32}{r['seconds']:>6}{r['load_avg']:>6}{r['ticks']:>7}{r['max_ms']:>8}{r['p50_ms']:>6}"
              f"{r['p95_ms']:>7}{r['p99_ms']:>7}{r['over_50ms']:>6}{r['over_100ms']:>7}")
    tr = phases["training (all docks live)"]
    print(f"\ntraining: first step {tr['first_step_s']} s after Start, {tr['epochs_done']} epochs "
          f"({tr['epochs_of_steps']} epochs of steps), Stop -> model published in {tr['stop_to_model_s']} s")
    print("\nGUI-thread time in plugin code during training:")
    for name, r in result["gui_thread_handlers"].items():
        print(f"  {name:<38} calls {r['calls']:>5}  max {r['max_ms']:>7} ms  mean {r['mean_ms']:>6} ms")
    print("\nlongest stalls while training, and plugin code running in them:")
    for r in blame:
        print(f"  {r['stall_ms']:>7} ms at {r['at_s']:>6} s: {', '.join(r['during']) or 'none (napari/Qt repaint, GIL)'}")
    verdict = "PASS" if tr["max_ms"] < 100 else "FAIL"
    print(f"\nlongest stall while training: {tr['max_ms']} ms ({verdict}, goal < 100 ms); "
          f"napari floor for one layer update here: {phases['napari floor: 1 layer update/s']['max_ms']} ms")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written {out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
