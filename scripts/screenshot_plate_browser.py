"""Screenshot of napari with the plate browser dock: open a plate, click a well, wait for the
thumbnails, save the whole window as PNG.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_plate_browser.py \
        sample docs/images/plate_browser.png

PLATE is a plate folder, or ``sample`` for the plugin's synthetic 96-well Cell Painting plate
(generated once into the cache). A ``labels.csv`` inside the folder is loaded automatically.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plate", help="plate folder, or 'sample'")
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--labels", help="labels CSV (default: labels.csv in the plate folder, if any)")
    parser.add_argument("--column", help="label column of the CSV")
    parser.add_argument("--pattern", help="file-name regex, if the layout is not detected")
    parser.add_argument("--well", help="well to click (default: the third labeled well)")
    parser.add_argument("--size", default="1500x940", help="window size WxH (default 1500x940)")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication

    from napari_dcmix.widgets.plate_dock import PlateBrowserWidget

    plate_path = args.plate
    if plate_path == "sample":
        from napari_dcmix.plate.sample import sample_plate_dir

        plate_path = str(sample_plate_dir())
    viewer = napari.Viewer(show=True, title="napari-dcmix plate browser")
    width, height = (int(v) for v in args.size.lower().split("x"))
    viewer.window._qt_window.resize(width, height)
    dock = PlateBrowserWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Plate browser", area="right")
    app = QApplication.instance()

    def settle(seconds: float = 0.3, until=lambda: True, timeout: float = 60.0) -> None:
        end, limit = time.time() + seconds, time.time() + timeout
        while (time.time() < end or not until()) and time.time() < limit:
            app.processEvents()
            time.sleep(0.01)

    settle()
    if dock.open_plate(plate_path, args.pattern, args.labels, args.column) is None:
        print(f"could not open {plate_path}", file=sys.stderr)
        return 2
    settle(0.5, until=lambda: not dock.busy())
    labeled = sorted(w for (p, w) in dock.session.labels if p == dock.plate_id)
    well = args.well or (labeled[2] if len(labeled) > 2 else min(dock.grid.sites))
    QTest.mouseClick(dock.grid, Qt.MouseButton.LeftButton, pos=dock.grid.cell_center(well))
    settle(0.5, until=lambda: not dock.busy())
    viewer.reset_view()
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()  # the "labels loaded" toast would cover the canvas
    settle(0.5)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    print(f"wrote {out} ({dock.plate.format.wells}-well plate {dock.plate.root}, well {well})")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
