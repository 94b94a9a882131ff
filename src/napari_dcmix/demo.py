"""The demo: napari with all five docks on the sample plate (or a plate of the user's).

``run_demo(screenshots=DIR)`` drives the whole workflow unattended — open, click a well, train,
explain per phenotype, apply (Z′ of every phenotype against the negative control), compare side by
side — and saves a screenshot of each stage; that is how the README's images are made and how a
server without a display shows what the plugin does.
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path

DOCKS = ("Plate browser", "Train", "Channel importance", "Explain per phenotype", "Apply")
DEMO_WELL = "B03"
# id(widget) -> napari's dock widget around it (to raise a tab); weak: it never outlives a viewer
DOCK_WRAPPERS: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()


def open_viewer(plate: str | None = None, viewer=None, pattern: str | None = None, labels=None,
                column: str | None = None):
    """A viewer with the five docks, the plate open and its labels loaded (the sample plate's, or
    ``labels``/``column`` for a plate of the user's; ``pattern`` for its own file naming)."""
    import napari

    from .plate.sample import sample_plate_dir

    if plate is None:
        print("preparing the sample plate (first run: a few seconds)…", flush=True)
        path = sample_plate_dir()
        labels = path / "labels.csv"
    else:
        from .plate.location import is_url

        path = plate if is_url(plate) else Path(plate).expanduser()  # a URL opens in the background
        labels = Path(labels).expanduser() if labels else None
    viewer = viewer or napari.Viewer(title="napari-dcmix")
    from .widgets.apply.dock import ApplyWidget
    from .widgets.explain.dock import ExplainWidget
    from .widgets.importance.dock import ImportanceWidget
    from .widgets.plate_browser.dock import PlateBrowserWidget
    from .widgets.train.dock import TrainWidget

    # Plate browser on the right; the α chart under the layer list on the left with the train / explain /
    # apply tabs beside it: the grid, the chart and the image all stay in view while training.
    docks = {"Plate browser": PlateBrowserWidget(viewer), "Train": TrainWidget(viewer),
             "Channel importance": ImportanceWidget(viewer), "Explain per phenotype": ExplainWidget(viewer),
             "Apply": ApplyWidget(viewer)}
    for name in ("Plate browser", "Channel importance", "Train", "Explain per phenotype", "Apply"):
        area = "right" if name == "Plate browser" else "left"
        dock = viewer.window.add_dock_widget(docks[name], name=name, area=area,
                                             tabify=name in ("Train", "Explain per phenotype", "Apply"))
        DOCK_WRAPPERS[id(docks[name])] = dock
    viewer.window.resize(1880, 1160)
    from qtpy.QtCore import QTimer

    timer = QTimer(DOCK_WRAPPERS[id(docks["Train"])])  # dies with the window: never fires into a closed one
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: _arrange(viewer, docks))  # once the window is shown
    timer.start(300)
    browser = docks["Plate browser"]
    browser.open_plate(path, pattern, labels_csv=labels if labels and labels.exists() else None,
                       column=(column or "phenotype") if labels else None)
    return viewer, docks


def _arrange(viewer, docks, front: str = "Train") -> None:
    """Plate grid on the whole right side; train/importance/apply tabs under the layer list."""
    from qtpy.QtCore import Qt

    qt_window = DOCK_WRAPPERS[id(docks["Train"])].window()  # the viewer's main window, via public Qt
    qt_window.resizeDocks([DOCK_WRAPPERS[id(docks["Plate browser"])]], [600], Qt.Horizontal)
    qt_window.resizeDocks([DOCK_WRAPPERS[id(docks["Train"])]], [470], Qt.Horizontal)
    qt_window.resizeDocks([DOCK_WRAPPERS[id(docks["Train"])]], [620], Qt.Vertical)
    DOCK_WRAPPERS[id(docks[front])].raise_()


def run_demo(plate: str | None = None, screenshots: str | None = None) -> None:
    import napari

    viewer, docks = open_viewer(plate)
    driver = _Unattended(viewer, docks, Path(screenshots)) if screenshots else None
    if driver is not None:
        driver.start()
    napari.run()


class _StageClock:
    """Seconds per demo stage, printed as it ends: where an unattended run spends its time."""

    def __init__(self):
        self.start = self.last = time.monotonic()

    def done(self, stage: str) -> None:
        now = time.monotonic()
        print(f"demo: {stage} {now - self.last:.0f} s", flush=True)
        self.last = now

    def total(self) -> float:
        return time.monotonic() - self.start


class _Unattended:
    """Drive the docks like a user would, one stage at a time from the Qt event loop (never blocking)."""

    def __init__(self, viewer, docks, out: Path, close_when_done: bool = True):
        from qtpy.QtCore import QTimer

        self.viewer, self.docks, self.out = viewer, docks, out
        self.close_when_done = close_when_done
        self.shots: list[Path] = []
        out.mkdir(parents=True, exist_ok=True)
        self.steps = self._script()
        self.waiting = None
        self.deadline = 0.0
        self.timer = QTimer()
        self.timer.setInterval(250)
        self.timer.timeout.connect(self._tick)

    def start(self):
        self.timer.start()

    def _shot(self, name: str) -> None:
        path = self.out / name
        self.viewer.screenshot(str(path), canvas_only=False, flash=False)
        self.shots.append(path)
        print(f"screenshot: {path}", flush=True)

    def _script(self):
        from .training.explain_text import row_text as explain_row_text

        browser, train, importance, explain, apply = (self.docks[n] for n in DOCKS)
        clock = _StageClock()
        yield lambda: not browser.thumbnails_running, 60
        clock.done("plate open, thumbnails")
        _arrange(self.viewer, self.docks)
        browser.show_well(browser.plate_id, DEMO_WELL)
        yield None, 1.5
        self._shot("01_plate_browser.png")
        train.start()
        yield lambda: not train.is_training, 900
        clock.done("train")
        browser.show_well(browser.plate_id, DEMO_WELL)
        DOCK_WRAPPERS[id(importance)].raise_()
        yield None, 1.5
        self._shot("02_trained_importance_composite.png")
        DOCK_WRAPPERS[id(explain)].raise_()
        explain.start()  # one coupled model per fold: a blend per phenotype against the negative control
        yield lambda: not explain.is_running, 7200
        clock.done("explain")
        if explain.matrix is not None and explain.matrix.rows:
            for row in explain.matrix.rows:
                print(f"explain: {explain_row_text(row)}", flush=True)
            explain.row_list.setCurrentRow(0)  # the first phenotype's α beside the matrix, its composite
            yield None, 2.0
            self._shot("05_per_phenotype_matrix.png")
        DOCK_WRAPPERS[id(apply)].raise_()  # the Apply tab: predicts with the session's model
        apply.predict_plate()  # Z′ of every phenotype against the negative control (the default choice)
        yield lambda: bool(apply.rows()) and not apply.cancel_button.isEnabled(), 600
        clock.done("apply")
        yield None, 1.5
        print(apply.z_label.text(), flush=True)
        self._shot("03_applied_predictions.png")
        DOCK_WRAPPERS[id(importance)].raise_()
        importance.set_side_by_side(True)
        yield None, 2.0
        self._shot("04_side_by_side.png")
        importance.set_side_by_side(False)
        clock.done("side by side")
        print(f"demo: {clock.total():.0f} s in all since the viewer opened", flush=True)

    def _tick(self):
        now = time.monotonic()
        if self.waiting is not None:
            condition, deadline = self.waiting
            done = condition() if callable(condition) else now >= deadline
            if not done and now < deadline:
                return
        try:
            condition, timeout = next(self.steps)
        except StopIteration:
            self.timer.stop()
            if self.close_when_done:
                self.viewer.close()
            return
        self.waiting = (condition, now + timeout)
