"""A synthetic Cell-Painting-like plate with a KNOWN answer, so channel importance can be checked.

Five stains share one cell layout per site. Three phenotypes each change the MORPHOLOGY of one
channel (Mito: tubules -> puncta, ER: reticulum -> perinuclear rim + vesicles, RNA: several small
nucleoli -> one large one) while every cell keeps the same per-channel integral, so brightness
alone cannot tell classes apart. DNA and AGP vary between wells but carry no class signal.
Everything is deterministic from ``seed``; numpy + tifffile only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from .._io import atomic_write_text
from .sample_render import CHANNELS, PHENOTYPES, acquire, blur, illumination, render_site  # noqa: F401
from ..errors import PlateError

LABEL_COLUMN = "phenotype"
NEGATIVE = "negative_control"
#: Further phenotypes for other test plates (``phenotypes=``): nuclear fragmentation lives in DNA
#: alone, stress fibres in AGP alone; neither is on the default plate.
EXTRA_PHENOTYPES = {"nuclear_fragmented": ("DNA", 0.8), "actin_fibres": ("AGP", 0.8)}
ALL_PHENOTYPES = {**PHENOTYPES, **EXTRA_PHENOTYPES}
CLASSES = (NEGATIVE, *PHENOTYPES)
MANIFEST = "dcmix_plate.json"
#: Bumped whenever the images change, so cached plates from older versions are not reused.
GENERATOR_VERSION = 3
LAYOUT = "dcmix-sample"
PATTERN = r"images/(?P<well>[A-Z]+\d+)_s(?P<site>\d+)_(?P<channel>[A-Za-z0-9]+)\.tif"
_PARTIAL = ".dcmix-sample-partial"  # marks a plate being (re)generated: ours to overwrite
_FORMATS = {96: (8, 12), 384: (16, 24)}


def _check(wells, sites, size, seed) -> None:
    def ok(v, lo):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo

    if not ok(wells, 0) or int(wells) not in _FORMATS:
        raise PlateError(f"wells={wells!r} is not a plate format; use 96 or 384")
    for name, value, lo, hi in (("sites", sites, 1, 16), ("size", size, 48, 2048), ("seed", seed, 0, 2**32 - 1)):
        if not ok(value, lo) or value > hi:  # the highest: a typo must not fill the disk
            raise PlateError(f"{name}={value!r} must be a whole number from {lo} to {hi}")


def _plate_map(wells: int, rng: np.random.Generator, phenotypes: dict = PHENOTYPES) -> list[dict]:
    """Controls at fixed positions as on a real screen layout, treatments balanced and shuffled.

    Columns 1 and last: DMSO negative controls. Second-to-last column: positive controls, one
    phenotype per row in turn. Other columns: treatments whose phenotypes fill each class up to
    ~wells/4 (inactive compounds look like the negative control). ~10% of treatments stay unlabeled.
    """
    nrow, ncol = _FORMATS[wells]
    plate, treat = [], []
    phen = list(phenotypes)
    classes = (NEGATIVE, *phen)
    for r in range(nrow):
        for c in range(1, ncol + 1):
            well = {"well": f"{chr(65 + r)}{c:02d}", "labeled": True}
            if c in (1, ncol):
                well.update(truth=NEGATIVE, well_type="negative_control", penetrance=0.0)
            elif c == ncol - 1:
                well.update(truth=phen[r % len(phen)], well_type="positive_control",
                            penetrance=float(rng.uniform(0.88, 0.97)))
            else:
                well.update(well_type="treatment")
                treat.append(well)
            plate.append(well)
    counts = {k: sum(w.get("truth") == k for w in plate) for k in classes}
    fill = [k for k in classes for _ in range(max(0, wells // len(classes) - counts[k]))]
    fill += [NEGATIVE] * max(0, len(treat) - len(fill))
    for well, k in zip(treat, rng.permutation(fill)):
        well.update(truth=str(k), penetrance=0.0 if k == NEGATIVE else float(rng.uniform(0.75, 0.95)))
    for i in rng.choice(len(treat), size=round(0.1 * wells), replace=False):
        treat[i]["labeled"] = False
    return plate


def _importance(plate: list[dict]) -> dict[str, float]:
    """Each channel's share of the class information, by construction (see the description)."""
    raw = dict.fromkeys(CHANNELS, 0.0)
    for w in plate:
        if w["labeled"] and w["truth"] != NEGATIVE:
            channel, strength = ALL_PHENOTYPES[w["truth"]]
            raw[channel] += w["penetrance"] * strength
    total = sum(raw.values())
    return {c: round(v / total, 6) for c, v in raw.items()}


def _prepare(out: Path) -> None:
    """Refuse foreign folders; clear a previous sample plate (manifest first, so it reads incomplete)."""
    if out.exists() and not out.is_dir():
        raise PlateError(f"{out} is a file; choose a folder for the sample plate")
    if out.is_dir() and any(out.iterdir()):
        manifest, ours = out / MANIFEST, (out / _PARTIAL).exists()
        if manifest.exists():
            try:
                ours = json.loads(manifest.read_text(encoding="utf-8")).get("layout") == LAYOUT
            except (OSError, ValueError, AttributeError):
                ours = False
        if not ours:
            raise PlateError(f"{out} is not empty and holds no sample plate; choose an empty or new folder")
        (out / _PARTIAL).touch()
        manifest.unlink(missing_ok=True)
        name = re.compile(PATTERN.split("/", 1)[1] + "$")
        for path in (out / "images").glob("*.tif"):
            if name.match(path.name):
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / _PARTIAL).touch()
    (out / "images").mkdir(exist_ok=True)


_DESCRIPTION = (
    "importance[c] is proportional to the sum, over labeled wells whose phenotype is driven by channel c, "
    "of the well's penetrance (fraction of cells showing the phenotype) times the phenotype's strength "
    "(mean fraction of that channel's per-cell signal relocated into the phenotype morphology), normalised "
    "to sum 1. Phenotypes: {}. Every phenotype is morphological: each cell keeps its per-channel integral, "
    "so mean intensity carries no class signal. Channels no phenotype uses carry no class signal at all (importance 0) "
    "though cell count, size and gain vary between wells as much as in the other channels."
)


def write_sample_plate(out, wells: int = 96, sites: int = 2, size: int = 160, seed: int = 0,
                       phenotypes: tuple[str, ...] | None = None, n_wells: int | None = None,
                       brightness: dict[str, float] | None = None) -> Path:
    """Write the sample plate into ``out`` and return it; ``dcmix_plate.json`` is written last.

    The defaults make the plugin's sample plate. Other test plates: ``phenotypes`` (names from
    ``ALL_PHENOTYPES``), ``n_wells`` (a pilot plate imaging only the first wells, row by row) and
    ``brightness`` (per-channel signal factors, e.g. a dim DNA stain).
    """
    _check(wells, sites, size, seed)
    chosen = {k: ALL_PHENOTYPES[k] for k in (phenotypes or PHENOTYPES)}
    out = Path(out).expanduser()
    try:
        _prepare(out)
        plate = _plate_map(wells, np.random.default_rng([seed, 0]), chosen)[:n_wells]
        illum = illumination(np.random.default_rng([seed, 1]), size)
        for wi, well in enumerate(plate):
            wrng = np.random.default_rng([seed, 2, wi])
            # class-independent biological variability between wells (density, size, texture scales)
            well.update(brightness=brightness or {}, density=wrng.lognormal(0, 0.2), radius=wrng.uniform(8.0, 10.0),
                        nucleoli=wrng.lognormal(0, 0.08), er_w=wrng.uniform(0.35, 0.55), mito_w=wrng.uniform(0.3, 0.5))
            gain = wrng.lognormal(0, 0.25, len(CHANNELS)).astype(np.float32)
            for site in range(1, sites + 1):
                srng = np.random.default_rng([seed, 3, wi, site])
                signal = render_site(srng, size, well, chosen)
                if srng.random() < 0.04:  # out-of-focus field
                    signal = blur(signal, srng.uniform(2.0, 3.5))
                img = acquire(srng, signal, illum, gain)
                for ci, ch in enumerate(CHANNELS):
                    tifffile.imwrite(out / "images" / f"{well['well']}_s{site}_{ch}.tif", img[ci])
    except OSError as err:
        raise PlateError(f"cannot write the sample plate to {out} ({err}); choose a folder you can write to") from None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["well", LABEL_COLUMN, "well_type"])
    writer.writerows([w["well"], w["truth"] if w["labeled"] else "", w["well_type"]] for w in plate)
    atomic_write_text(out / "labels.csv", buf.getvalue(), into_plate=True)
    truth = {
        "importance": _importance(plate),
        "classes": [NEGATIVE, *chosen],
        "label_column": LABEL_COLUMN,
        "description": _DESCRIPTION.format(", ".join(f"{k} -> {c} (strength {v})" for k, (c, v) in chosen.items())),
        "phenotype_channel": {k: c for k, (c, _) in chosen.items()},
        "unlabeled_truth": {w["well"]: w["truth"] for w in plate if not w["labeled"]},
        "penetrance": {w["well"]: round(w["penetrance"], 4) for w in plate},
    }
    atomic_write_text(out / "ground_truth.json", json.dumps(truth, indent=2) + "\n", into_plate=True)
    manifest = {"layout": LAYOUT, "version": 1, "channels": list(CHANNELS), "wells": len(plate), "format": int(wells),
                "sites": int(sites), "size": int(size), "seed": int(seed), "pattern": PATTERN}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n", into_plate=True)
    (out / _PARTIAL).unlink(missing_ok=True)
    return out


def is_complete(out) -> bool:
    """True if ``out`` holds a fully written sample plate (manifest present, all images there)."""
    out = Path(out).expanduser()
    try:
        m = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        expected = int(m["wells"]) * int(m["sites"]) * len(m["channels"])
        ok = m.get("layout") == LAYOUT and not (out / _PARTIAL).exists()
        ok = ok and (out / "labels.csv").is_file() and (out / "ground_truth.json").is_file()
        return ok and sum(1 for _ in (out / "images").glob("*.tif")) >= expected
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def sample_plate_dir(wells: int = 96, sites: int = 2, size: int = 160, seed: int = 0, cache_dir=None) -> Path:
    """The cached sample plate (generated on first use), under ``$XDG_CACHE_HOME/napari-dcmix``.

    ``cache_dir`` replaces ``$XDG_CACHE_HOME/napari-dcmix``. The plate is generated in a temporary
    sibling folder and renamed into place, so concurrent callers never see half a plate.
    """
    _check(wells, sites, size, seed)
    if cache_dir is None:
        cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "napari-dcmix"
    parent = Path(cache_dir).expanduser()
    target = parent / f"sample-plate-v{GENERATOR_VERSION}-{wells}w-{sites}s-{size}px-seed{seed}"
    if is_complete(target):
        return target
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as err:
        raise PlateError(f"cannot write the sample plate under {parent} ({err}); pass another cache_dir") from None
    try:
        write_sample_plate(tmp, wells, sites, size, seed)
        if target.exists() and not is_complete(target):
            _prepare(target)  # raises unless it is an unfinished sample plate of ours
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError as err:
            if not is_complete(target):  # else another process finished the same plate first
                raise PlateError(f"cannot move the sample plate into {target} ({err})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
