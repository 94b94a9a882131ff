"""How fast is the plate browser dock? Run under a display (Xvfb is fine):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/plate_browser.py

1. Click to layers on screen for a 5-channel 1080x1080 uint16 site (goal < 0.5 s): a real mouse
   click on the plate map, then Qt events and a synchronous canvas repaint finished with glFinish.
   Opening the plate shows its first well (the five layers are created then); the first click
   follows at once (plate statistics still being computed in the background), then switching
   between wells (layers replaced in place) with the plate's site cache emptied before each click
   so every switch reads its five TIFFs, and once more with the sites cached. Last, a click after
   the user deleted the channel layers, which creates them again.
2. Open 96 / 384 / 1536-well plates in the dock (index by file names + plate map painted + first
   well shown; statistics and thumbnails continue in the background and are not counted). One
   tiny TIFF is hard-linked under every file name, 2 sites x 3 channels per well. Goal: the 1536
   plate opens in <= 2x the time of the 96 plate.

Writes benchmarks/results/plate_browser.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

FORMATS = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}


def well_name(r: int, c: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    row = letters[r] if r < 26 else letters[r // 26 - 1] + letters[r % 26]
    return f"{row}{c + 1:02d}"


def write_big_plate(root: Path, n_wells: int, channels: int = 5, size: int = 1080) -> list[str]:
    """ImageXpress names, distinct smooth-plus-noise uint16 pixels per well and channel."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    wells = [well_name(1 + i // 10, 1 + i % 10) for i in range(n_wells)]
    for i, well in enumerate(wells):
        for c in range(channels):
            base = 400 + 300 * np.sin(6 * xx + i + c) * np.cos(5 * yy - c)
            img = base + rng.normal(0, 40, (size, size)).astype(np.float32)
            tifffile.imwrite(root / f"Bench_{well}_s1_w{c + 1}.tif", np.clip(img, 0, 65535).astype(np.uint16))
    return wells


def write_linked_plate(root: Path, n_wells: int, sites: int = 2, channels: int = 3) -> int:
    """A plate of ``n_wells`` with every file a hard link to one 64x64 TIFF (fast to create)."""
    root.mkdir(parents=True, exist_ok=True)
    src = root.parent / f".src_{root.name}.tif"
    tifffile.imwrite(src, np.random.default_rng(1).integers(100, 900, (64, 64)).astype(np.uint16))
    rows, cols = FORMATS[n_wells]
    n = 0
    for r in range(rows):
        for c in range(cols):
            for s in range(1, sites + 1):
                for w in range(1, channels + 1):
                    os.link(src, root / f"Linked_{well_name(r, c)}_s{s}_w{w}.tif")
                    n += 1
    return n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wells", type=int, default=9, help="wells of the 1080x1080 plate (default 9)")
    parser.add_argument("--repeats", type=int, default=5, help="opens per plate format (median)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "plate_browser.json"))
    args = parser.parse_args(argv)

    import napari
    from napari._qt.qt_viewer import QtViewer  # noqa: F401  (imported so the first open is not an import)
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication
    from vispy.gloo import gl

    from napari_dcmix.plate import open_plate
    from napari_dcmix.plate.reader import SiteCache
    from napari_dcmix.widgets.plate_browser.dock import PlateBrowserWidget

    tmp = Path(tempfile.mkdtemp(prefix="dcmix-plate-browser-bench-"))
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    dock = PlateBrowserWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Plate browser")
    app = QApplication.instance()
    canvas = viewer.window._qt_viewer.canvas.native

    def on_screen() -> None:
        app.processEvents()
        canvas.repaint()  # synchronous paintGL: textures uploaded and drawn
        gl.glFinish()
        app.processEvents()

    def wait_idle(timeout: float = 120) -> None:
        end = time.time() + timeout
        while dock.busy() and time.time() < end:
            app.processEvents()
            time.sleep(0.005)

    def click(well: str) -> float:
        t0 = time.perf_counter()
        QTest.mouseClick(dock.grid, Qt.MouseButton.LeftButton, pos=dock.grid.cell_center(well))
        on_screen()
        return time.perf_counter() - t0

    on_screen()
    # --- 1. click latency ----------------------------------------------------------------------
    big = tmp / "big"
    wells = write_big_plate(big, args.wells)
    t0 = time.perf_counter()
    dock.open_plate(str(big))  # shows the first well: the five layers are created here
    on_screen()
    open_first = time.perf_counter() - t0
    assert len(viewer.layers) == 5 and viewer.layers[0].data.shape == (1080, 1080)
    first = click(wells[1])  # the user's first click: statistics are still computed in the background
    assert dock.current_key.well == wells[1], "first click did not show the well"
    wait_idle()
    uncached, cached = [], []
    for well in wells[2:] + wells[:2]:
        dock.plate._cache = SiteCache(16)  # benchmark only: force a read of the five TIFFs
        uncached.append(click(well))
        assert dock.current_key.well == well
    for well in wells[2:] + wells[:2]:
        cached.append(click(well))
    viewer.layers.clear()  # the user deleted the channel layers: the next click creates them again
    on_screen()
    dock.plate._cache = SiteCache(16)
    create = click(wells[3])
    assert len(viewer.layers) == 5
    clicks = {"open_and_first_well_s": open_first, "first_click_s": first,
              "switch_uncached_median_s": statistics.median(uncached), "switch_uncached_max_s": max(uncached),
              "switch_cached_median_s": statistics.median(cached), "n_switches": len(uncached),
              "click_creating_layers_s": create}

    # --- 2. open time vs plate size ------------------------------------------------------------
    plates = {}
    for n in FORMATS:
        plates[n] = (tmp / f"plate{n}", write_linked_plate(tmp / f"plate{n}", n))
    dock.open_plate(str(plates[96][0]))  # warm-up (first paint of a new plate map size, imports)
    on_screen()
    wait_idle()
    opens: dict[int, dict] = {}
    for n, (path, n_files) in plates.items():
        times, index_times, background = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            open_plate(path)  # the index alone (names only), for reference
            index_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            plate = dock.open_plate(str(path))
            app.processEvents()
            dock.grid.repaint()
            on_screen()
            times.append(time.perf_counter() - t0)
            assert plate is not None and len(dock.grid.sites) == n
            wait_idle()
            background.append(time.perf_counter() - t0)
            assert len(dock.grid.thumbs) == n
        paints = []
        for _ in range(5):
            t0 = time.perf_counter()
            dock.grid.grab()  # paints the whole plate map, every thumbnail, into a pixmap
            paints.append(time.perf_counter() - t0)
        opens[n] = {"files": n_files, "open_median_s": statistics.median(times), "open_all_s": times,
                    "index_only_median_s": statistics.median(index_times),
                    "open_to_all_thumbnails_median_s": statistics.median(background),
                    "grid_repaint_median_s": statistics.median(paints)}
    ratio = opens[1536]["open_median_s"] / opens[96]["open_median_s"]

    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1min": os.getloadavg()[0],
                    "napari": napari.__version__, "display": os.environ.get("DISPLAY", ""),
                    "gl_renderer": gl.glGetParameter(gl.GL_RENDERER)},
        "click_site": {"channels": 5, "shape": [1080, 1080], "dtype": "uint16", **clicks},
        "open_plate": {str(n): v for n, v in opens.items()},
        "open_ratio_1536_over_96": ratio,
        "goals": {"click_s": 0.5, "open_ratio": 2.0},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    viewer.close()
    shutil.rmtree(tmp, ignore_errors=True)

    ms = lambda s: f"{1000 * s:.0f} ms"  # noqa: E731
    print(f"\nPlate browser ({result['machine']['gl_renderer']}, {os.cpu_count()} CPUs, "
          f"load average {result['machine']['load_average_1min']:.1f})\n")
    print("| measurement | value | goal |\n|---|---|---|")
    print(f"| open the 1080² plate, first well's 5 layers created and on screen | {ms(open_first)} | |")
    print(f"| first click after opening (statistics still computing) | {ms(first)} | < 500 ms |")
    print(f"| switch well, site read from disk (median of {len(uncached)}, max {ms(max(uncached))}) "
          f"| {ms(clicks['switch_uncached_median_s'])} | < 500 ms |")
    print(f"| switch well, site cached (median) | {ms(clicks['switch_cached_median_s'])} | |")
    print(f"| click after the user deleted the layers (5 layers created) | {ms(create)} | |")
    for n, v in opens.items():
        print(f"| open {n}-well plate ({v['files']} files; index alone {ms(v['index_only_median_s'])}) "
              f"| {ms(v['open_median_s'])} | |")
    print(f"| open time 1536 / 96 | {ratio:.2f} | <= 2 |")
    for n, v in opens.items():
        print(f"| {n}-well: open → all thumbnails done (background) | {ms(v['open_to_all_thumbnails_median_s'])} | |")
    for n, v in opens.items():
        print(f"| {n}-well: repaint the plate map with thumbnails | {ms(v['grid_repaint_median_s'])} | |")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
