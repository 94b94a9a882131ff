"""npe2 sample data: the synthetic Cell Painting plate with a known answer (generated once, cached)."""

from __future__ import annotations

from ._layers import site_layer_data


def sample_plate():
    """Generate (first time only) the sample plate in the user's cache and show its first site."""
    from .plate import open_plate
    from .plate.sample import sample_plate_dir

    plate = open_plate(sample_plate_dir())
    key, _ = plate.first_readable_site()
    return site_layer_data(plate, key)
