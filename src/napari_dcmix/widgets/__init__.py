"""Qt docks for napari. Thin: they call the plate/model/training core and never block the GUI thread."""
