"""npe2 reader: File → Open on a plate folder shows its first site, one layer per channel.

napari calls ``get_reader`` for every folder the user opens, with every plugin, so it only looks at
names (a bounded walk, no pixels, no index): a folder that is clearly not a plate returns None and
napari tries other readers. The work happens in the returned function; an error there is a napari
notification with the plugin's own message (what is wrong and what to do), not a silent "no reader".
The layers carry metadata naming the plate, so the plate browser dock follows and opens the whole plate;
it takes the plate indexed here (:func:`take_opened_plate`) instead of indexing the folder a second time.

A URL naming a ``.zarr`` (``viewer.open("https://…/plate.zarr", plugin="napari-dcmix")``) is claimed by
its name alone, and handed to the viewer's Plate browser, which reads it in the background: napari's
reader runs on the GUI thread, and the viewer never waits on the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ._layers import site_layer_data
from .errors import DcmixError

if TYPE_CHECKING:
    from .plate import Plate

_MAX_ENTRIES = 2000  # names looked at before deciding; a plate shows its naming in its first files
_MAX_DEPTH = 3       # RxRx1: <experiment>/Plate<p>/<file>; Harmony: Images/<file>

# The plate File > Open indexed last, until the plate browser following its layers takes it. The reader
# cannot reach the viewer's session, and the layers' metadata stays plain data (napari copies it with
# the layers); so the hand-over is here: one plate at most, forgotten once taken or replaced by the next.
_opened: tuple[tuple[Path, str | None], "Plate"] | None = None


def _plate_key(root, pattern: str | None) -> tuple[Path, str | None]:
    from .plate.location import PlateLocation

    location = PlateLocation.of(root)
    return (location.folder.resolve() if location.folder is not None else location.url), pattern or None


def take_opened_plate(root, pattern: str | None = None) -> "Plate | None":
    """The plate File > Open just indexed for ``root`` with ``pattern``, once (then forgotten here);
    None when the reader has not opened that folder (or another since)."""
    global _opened
    if _opened is None or _opened[0] != _plate_key(root, pattern):
        return None
    plate, _opened = _opened[1], None
    return plate


def looks_like_plate(folder: str | os.PathLike) -> bool:
    """True if ``folder`` is an OME-Zarr plate, the sample plate, or holds a file named as a plate layout."""
    from .plate.layouts import BUILTIN_LAYOUTS, FALLBACK_LAYOUTS, SAMPLE_MANIFEST
    from .plate.ome_zarr import is_hcs_plate

    folder = Path(folder)
    if is_hcs_plate(folder) or (folder / SAMPLE_MANIFEST).is_file():
        return True
    layouts = BUILTIN_LAYOUTS + FALLBACK_LAYOUTS
    seen, stack = 0, [("", 0)]
    while stack:
        rel, depth = stack.pop()
        try:
            with os.scandir(folder / rel if rel else folder) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > _MAX_ENTRIES:
                return False
            if entry.name.startswith("."):
                continue
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                if depth + 1 < _MAX_DEPTH:
                    stack.append((child, depth + 1))
            elif any(layout.match(child) is not None for layout in layouts):
                return True
    return False


def get_reader(path):
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    from .plate.location import is_url
    from .plate.ome_zarr import looks_like_zarr_url

    if isinstance(path, str) and is_url(path):
        return read_plate if looks_like_zarr_url(path) else None  # names only: nothing is fetched here
    try:
        if not os.path.isdir(path) or not looks_like_plate(path):
            return None
    except (OSError, ValueError, TypeError):
        return None
    return read_plate


def read_plate(path):
    """Open the plate and return its first readable site's layers; errors become a notification.
    The plate is kept for the plate browser that follows the layers (:func:`take_opened_plate`)."""
    global _opened
    if isinstance(path, (list, tuple)):
        path = path[0]
    from .plate import open_plate
    from .plate.location import is_url

    if is_url(str(path)):
        return _open_url_in_browser(str(path))

    try:
        plate = open_plate(Path(path))
        key, _ = plate.first_readable_site()
        layers = site_layer_data(plate, key)
        _opened = (_plate_key(plate.location, None), plate)
        return layers
    except DcmixError as err:
        from napari.utils.notifications import show_error

        show_error(f"napari-dcmix could not open {path}: {err}")
        return [(None,)]  # napari's "handled, nothing to add": no second, vaguer "no reader" error


def _open_url_in_browser(url: str):
    """Hand a plate's URL to the current viewer's Plate browser (which reads it in the background);
    napari gets "handled, nothing to add" now, the layers follow once the first site is fetched."""
    import napari
    from napari.utils.notifications import show_error

    viewer = napari.current_viewer()
    if viewer is None:
        show_error(f"napari-dcmix could not open {url}: no viewer window to show it in")
        return [(None,)]
    import sys

    # the dock module is loaded once any Plate browser exists (importing it here would tie the reader
    # to the dock both ways); without one, napari docks the plugin's own
    dock = sys.modules.get("napari_dcmix.widgets.plate_browser.dock")
    browser = (dock.plate_browser_of(viewer) if dock is not None else
               viewer.window.add_plugin_dock_widget("napari-dcmix", "Plate browser")[1])
    browser.open_plate(url)
    return [(None,)]
