"""Figures and exports that leave napari-dcmix: plate maps, montages (matplotlib Agg, no pyplot)."""
