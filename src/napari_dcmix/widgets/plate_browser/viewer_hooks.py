"""What ties the plate browser to the napari viewer beyond its own widgets: well-navigation key
bindings (wells and suggested wells), recognising plate layers, warming napari up.

Kept apart so every hook holds the dock only weakly: a viewer must never be kept alive by a dock.
"""

from __future__ import annotations

import weakref

from ..._layers import META_KEY

#: Viewer keys for next/previous well: free in napari's default keymap (arrow keys step dims).
NEXT_KEY, PREV_KEY = "PageDown", "PageUp"
#: Viewer keys for the next/previous well suggested for labelling (free in napari's default keymap too).
NEXT_SUGGESTION_KEY, PREV_SUGGESTION_KEY = "Shift-PageDown", "Shift-PageUp"


def _call(ref, method: str) -> None:
    owner = ref()
    if owner is not None:
        try:
            getattr(owner, method)()
        except RuntimeError:  # the dock's Qt object is already gone
            pass


def bind_well_keys(viewer, owner) -> None:
    """PageDown / PageUp anywhere in the viewer call ``owner.next_well()`` / ``owner.previous_well()``,
    with Shift ``owner.next_suggestion()`` / ``owner.previous_suggestion()``."""
    ref = weakref.ref(owner)
    for key, method in ((NEXT_KEY, "next_well"), (PREV_KEY, "previous_well"),
                        (NEXT_SUGGESTION_KEY, "next_suggestion"), (PREV_SUGGESTION_KEY, "previous_suggestion")):
        viewer.bind_key(key, lambda _viewer, method=method: _call(ref, method), overwrite=True)


def unbind_well_keys(viewer) -> None:
    for key in (NEXT_KEY, PREV_KEY, NEXT_SUGGESTION_KEY, PREV_SUGGESTION_KEY):
        try:
            viewer.bind_key(key, None)
        except (KeyError, ValueError, TypeError):
            pass


def plate_metadata(layer) -> dict | None:
    """The plugin metadata of a layer that shows a plate site (reader or dock), else None."""
    meta = layer.metadata.get(META_KEY) if isinstance(layer.metadata, dict) else None
    return meta if isinstance(meta, dict) and meta.get("plate") else None


def warm_up_layers() -> None:
    """Pay napari's one-time cost of a first Image layer (lazy imports, pint's unit registry: about
    a second) while the user is still choosing a plate, not on their first click."""
    import numpy as np
    from napari.layers import Image

    Image(np.zeros((2, 2), np.uint16), contrast_limits=(0, 1))
