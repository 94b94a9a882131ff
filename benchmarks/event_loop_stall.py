"""Does napari stay responsive while the Train dock trains? The longest event-loop stall, measured.

A 10 ms QTimer probe runs on napari's GUI thread; every gap between ticks beyond 10 ms is time the
event loop could not react (a click, a pan, a repaint). Measured first with the viewer idle (the
baseline), then while the Train dock trains on a synthetic plate with the importance dock and the
DCMIX composite updating live. Goal: longest stall < 100 ms. Run under a display (xvfb-run on CI):

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
        return {"ticks": 0}
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0, help="training time measured")
    parser.add_argument("--baseline-seconds", type=float, default=8.0)
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--wells", type=int, default=96)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "event_loop_stall.json"))
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_dcmix.plate import open_plate, read_labels
    from napari_dcmix.plate.sample import LABEL_COLUMN, PATTERN, write_sample_plate
    from napari_dcmix.widgets import charts, composite, importance_dock, train_dock
    from napari_dcmix.widgets.session import get_session

    tmp = Path(tempfile.mkdtemp(prefix="dcmix-stall-"))
    t0 = time.perf_counter()
    plate_dir = write_sample_plate(tmp / "plate", wells=args.wells, sites=1, size=args.size)
    plate = open_plate(plate_dir, PATTERN)
    labels = read_labels(plate_dir / "labels.csv", plate.sites, LABEL_COLUMN).well_labels()
    print(f"sample plate: {args.wells} wells, {args.size}px, written in {time.perf_counter() - t0:.1f} s", flush=True)

    clock = HandlerClock()
    clock.wrap(train_dock.TrainWidget, "_on_update", "train dock: event handler", lambda self, u: u.event.kind)
    clock.wrap(train_dock.TrainWidget, "_draw_curves", "train dock: curves redraw")
    clock.wrap(importance_dock.ImportanceWidget, "_draw", "importance dock: chart rebuild")
    clock.wrap(composite, "update_composite", "composite update")
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

    clock.wrap(FigureCanvasQTAgg, "draw", "matplotlib canvas draw (Agg)")

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    train = train_dock.TrainWidget(viewer)
    importance = importance_dock.ImportanceWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train", area="right")
    viewer.window.add_dock_widget(importance, name="Channel importance", area="right")
    session = get_session(viewer)
    session.set_plate(plate, PATTERN)
    session.set_labels(labels, LABEL_COLUMN)
    key = plate.sites[0]
    try:
        from napari_dcmix.widgets.site_layers import show_site

        show_site(viewer, plate, key, pattern=PATTERN)
    except ImportError:
        pass
    session.set_site(key)
    wait(app, 2.0)

    probe = Probe()
    probe.start()
    t0 = time.perf_counter()
    wait(app, args.baseline_seconds)
    baseline = stats(probe.stop(), time.perf_counter() - t0)

    train.tile.setValue(args.tile)
    train.batch_size.setValue(args.batch_size)
    train.epochs.setValue(1000)
    train.device_box.setCurrentText("auto")
    started = {}
    probe.start()
    t0 = time.perf_counter()
    train.start_button.click()
    wait(app, 120.0, until=lambda: bool(train._curves.step_loss))  # plate statistics, first step
    started["first_step_s"] = round(time.perf_counter() - t0, 2)
    t1 = time.perf_counter()
    wait(app, args.seconds)
    steps = train._curves.step_x[-1] if train._curves.step_x else 0
    train.stop_button.click()
    wait(app, 60.0, until=lambda: train.worker is None)
    training = stats(probe.stop(), time.perf_counter() - t0)
    blame = []
    for start, gap in probe.worst(5):
        inside = sorted({label for a, b, label in clock.spans if a < start + gap / 1000 and b > start})
        blame.append({"stall_ms": round(gap, 1), "at_s": round(start - t0, 2), "during": inside})
    training.update(started, epochs_done=len(train._curves.epochs), epochs_progress=round(steps, 2),
                    measured_training_s=round(time.perf_counter() - t1, 1))

    result = {
        "goal_max_stall_ms": 100, "probe_interval_ms": PROBE_MS,
        "baseline_idle": baseline, "while_training": training, "gui_thread_handlers": clock.summary(),
        "longest_stalls": blame,
        "settings": {"wells": args.wells, "size": args.size, "tile": args.tile, "batch_size": args.batch_size,
                     "device": train.device_label.text(), "torch_threads": train_dock.TORCH_THREADS,
                     "max_redraws_per_s": charts.MAX_REDRAWS_PER_S},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "napari": napari.__version__},
    }
    print(f"\n{'phase':<16}{'seconds':>8}{'ticks':>7}{'max ms':>8}{'p50':>6}{'p95':>6}{'p99':>6}{'>50ms':>7}{'>100ms':>7}")
    for name, row in (("idle (baseline)", baseline), ("training", training)):
        print(f"{name:<16}{row['seconds']:>8}{row['ticks']:>7}{row['max_ms']:>8}{row['p50_ms']:>6}"
              f"{row['p95_ms']:>6}{row['p99_ms']:>6}{row['over_50ms']:>7}{row['over_100ms']:>7}")
    print(f"\ntraining: first step after {training['first_step_s']} s, {training['epochs_done']} epochs "
          f"({training['epochs_progress']} epochs of steps) in {training['measured_training_s']} s")
    print("\nGUI-thread time per handler:")
    for name, row in result["gui_thread_handlers"].items():
        print(f"  {name:<34} calls {row['calls']:>5}  max {row['max_ms']:>7} ms  mean {row['mean_ms']:>6} ms")
    print("\nlongest stalls while training and what the GUI thread was doing:")
    for row in blame:
        print(f"  {row['stall_ms']:>7} ms at {row['at_s']:>6} s: {', '.join(row['during']) or 'no plugin code'}")
    verdict = "PASS" if training["max_ms"] < 100 else "FAIL"
    print(f"\nlongest stall while training: {training['max_ms']} ms ({verdict}, goal < 100 ms)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written {out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
