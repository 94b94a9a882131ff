"""Small plates with a known answer that are hard in the ways real screens are (issue 20's benchmark):
≤ 12 wells per class, 2 sites, cells at random places, every phenotype a change of shape or texture
(never of a channel's total brightness alone).

* ``shape``: mito_elongated (Mito puncta become rods, same intensity) and er_reticular (ER smooth →
  fine network, same mean) among DNA / ER / Mito / Actin;
* ``dim``: rna_speckled, speckles in an RNA channel at 8 % of the other channels' brightness;
* ``pair``: coloc, spots of channels A and B on the same spots (each channel alone looks exactly like
  the control, whose A and B spots lie apart): it needs both channels together;
* ``pilot``: treated, twice the Mito puncta (the strong cue) and the same ER signal in a smaller body
  (a weaker, different cue), DNA and Actin without signal (issue 21's stain search);
* ``apart``: big_spots and small_spots, X spots of radius 3 and 1 against the control's 2: the two
  phenotypes differ from each other more than from the control;
* ``screen``: a whole 96-well plate drawn like ``shape`` but laid out like a screen (issue 22's label
  suggestions): half the wells control, a quarter each phenotype, in a seeded random layout, and each
  phenotype well's penetrance (the share of its cells that show it) drawn from 30–100 %, so some
  treated wells sit close to the control, as weak doses do.

``write_benchmark_plate(root, name, seed)`` -> (root, labels CSV, truth: phenotype -> its channels).
File names ``<well>_s<site>_<channel>.tif`` (``PATTERN``); labels column ``phenotype``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import tifffile

PATTERN = r"(?P<well>[A-Z]\d+)_s(?P<site>\d+)_(?P<channel>[A-Za-z]+)\.tif"
REFERENCE = "control"
SIZE, SITES, WELLS_PER_CLASS, CELLS = 96, 2, 10, 7

PLATES: dict[str, dict] = {
    "shape": {"channels": ["DNA", "ER", "Mito", "Actin"],
              "truth": {"mito_elongated": ["Mito"], "er_reticular": ["ER"]}},
    "dim": {"channels": ["DNA", "AGP", "RNA"], "truth": {"rna_speckled": ["RNA"]}},
    "pair": {"channels": ["DNA", "A", "B", "C"], "truth": {"coloc": ["A", "B"]}},
    "apart": {"channels": ["DNA", "X", "Y"], "truth": {"big_spots": ["X"], "small_spots": ["X"]}},
    # issue 21's pilot: Mito carries the phenotype (twice the puncta), ER a weaker, different cue (the
    # same ER signal packed into a smaller body); DNA and Actin carry nothing
    "pilot": {"channels": ["DNA", "Mito", "ER", "Actin"], "truth": {"treated": ["Mito", "ER"]},
              "strong": {"treated": "Mito"}},
    # issue 22: a screen-like layout of the shape plate, wells per class and penetrance per phenotype well
    "screen": {"channels": ["DNA", "ER", "Mito", "Actin"], "draws_as": "shape",
               "truth": {"mito_elongated": ["Mito"], "er_reticular": ["ER"]},
               "wells": {REFERENCE: 48, "mito_elongated": 24, "er_reticular": 24}, "penetrance": (0.3, 1.0)},
}


def _disc(canvas, cy, cx, r, value) -> None:
    yy, xx = np.ogrid[:canvas.shape[0], :canvas.shape[1]]
    canvas[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] += value


def _rod(canvas, cy, cx, angle, length, value) -> None:
    for t in np.linspace(-length / 2, length / 2, int(length) + 1):
        y, x = int(round(cy + t * np.sin(angle))), int(round(cx + t * np.cos(angle)))
        if 0 <= y < canvas.shape[0] and 0 <= x < canvas.shape[1]:
            canvas[y, x] += value


def _spots_near(rng, cy, cx, n, spread=7.0):
    return [(cy + rng.normal(0, spread), cx + rng.normal(0, spread)) for _ in range(n)]


def _cell_channels(rng, name: str, phenotype: str | None, canvases: dict, cy: float, cx: float) -> None:
    """Draw one cell into every channel's canvas (additive)."""
    _disc(canvases["DNA"], cy, cx, 5, 900)
    if name == "shape":
        for y, x in _spots_near(rng, cy, cx, 6):
            if phenotype == "mito_elongated":
                _rod(canvases["Mito"], y, x, rng.uniform(0, np.pi), 8, 260)  # ~ the same signal as a punctum
            else:
                _disc(canvases["Mito"], y, x, 1, 450)
        yy, xx = np.ogrid[:SIZE, :SIZE]
        body = ((yy - cy) ** 2 + (xx - cx) ** 2 <= 121).astype(np.float32)
        if phenotype == "er_reticular":
            net = (np.sin(xx * 1.7 + rng.uniform(0, 6)) * np.sin(yy * 1.7 + rng.uniform(0, 6)) > 0.3)
            canvases["ER"] += body * (200 + 500 * net)  # the same mean as the smooth ER, finely structured
        else:
            canvases["ER"] += body * 350
        _disc(canvases["Actin"], cy, cx, 10, 150)
    elif name == "dim":
        _disc(canvases["AGP"], cy, cx, 10, 500)
        if phenotype == "rna_speckled":
            for y, x in _spots_near(rng, cy, cx, 10, 5):
                _disc(canvases["RNA"], y, x, 1, 60)
        else:
            _disc(canvases["RNA"], cy, cx, 8, 30)
    elif name == "pair":
        spots_a = _spots_near(rng, cy, cx, 4)
        spots_b = spots_a if phenotype == "coloc" else _spots_near(rng, cy, cx, 4)
        for (ya, xa), (yb, xb) in zip(spots_a, spots_b):
            _disc(canvases["A"], ya, xa, 2, 500)
            _disc(canvases["B"], yb, xb, 2, 500)
        _disc(canvases["C"], cy, cx, 9, 200)
    elif name == "pilot":
        for y, x in _spots_near(rng, cy, cx, 12 if phenotype else 6):
            _disc(canvases["Mito"], y, x, 1, 400)
        radius = 9 if phenotype else 10
        _disc(canvases["ER"], cy, cx, radius, 300 * 100 / radius ** 2)  # the same total ER signal
        _disc(canvases["Actin"], cy, cx, 10, 150)
    elif name == "apart":
        radius = {"big_spots": 3, "small_spots": 1}.get(phenotype, 2)
        for y, x in _spots_near(rng, cy, cx, 5):
            _disc(canvases["X"], y, x, radius, 400)
        _disc(canvases["Y"], cy, cx, 9, 250)


def _layout(spec: dict, wells_per_class: int, rng) -> list[str]:
    """The class of each well in plate order: interleaved (no class sits in one corner of the plate), or
    the spec's wells per class in a seeded random order (``screen``)."""
    if "wells" in spec:
        order = [cls for cls, n in spec["wells"].items() for _ in range(n)]
        return [order[i] for i in rng.permutation(len(order))]
    classes = [REFERENCE, *spec["truth"]]
    return [classes[i % len(classes)] for i in range(len(classes) * wells_per_class)]


def write_benchmark_plate(root: Path, name: str, seed: int = 0,
                          wells_per_class: int = WELLS_PER_CLASS) -> tuple[Path, Path, dict[str, list[str]]]:
    spec = PLATES[name]
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    low, high = spec.get("penetrance", (1.0, 1.0))
    for i, phenotype in enumerate(_layout(spec, wells_per_class, rng)):
        well = f"{'ABCDEFGH'[i // 12]}{i % 12 + 1:02d}"
        rows.append((well, phenotype))
        penetrance = rng.uniform(low, high) if high > low else high
        for site in range(1, SITES + 1):
            canvases = {c: np.zeros((SIZE, SIZE), np.float32) for c in spec["channels"]}
            for _ in range(CELLS):
                cy, cx = rng.uniform(10, SIZE - 10, size=2)
                shown = phenotype != REFERENCE and (penetrance >= 1.0 or rng.uniform() < penetrance)
                _cell_channels(rng, spec.get("draws_as", name), phenotype if shown else None, canvases, cy, cx)
            for channel, canvas in canvases.items():
                image = canvas + rng.normal(100, 12, canvas.shape)
                tifffile.imwrite(root / f"{well}_s{site}_{channel}.tif", np.clip(image, 0, 65535).astype(np.uint16))
    labels = root.parent / f"{root.name}_labels.csv"
    with open(labels, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["well", "phenotype"])
        writer.writerows(rows)
    return root, labels, dict(spec["truth"])
