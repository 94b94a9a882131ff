"""npe2 reader: File → Open on a plate folder shows its first site, one layer per channel.

The layers carry metadata naming the plate, so the plate browser dock follows and opens the whole
plate. Folders that are not plates return None: napari then tries other readers, and nothing raises.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._layers import site_layer_data
from .errors import DcmixError


def get_reader(path):
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        if not os.path.isdir(path):
            return None
        from .plate import open_plate

        plate = open_plate(Path(path))
        key, _ = plate.first_readable_site()
        layers = site_layer_data(plate, key)
    except (DcmixError, OSError, ValueError):
        return None

    def read_plate(_path):
        return layers

    return read_plate
