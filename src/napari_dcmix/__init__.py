"""napari-dcmix: learn which fluorescence channels drive a phenotype (DCMIX, GCPR 2023)."""

__version__ = "0.1.0"
