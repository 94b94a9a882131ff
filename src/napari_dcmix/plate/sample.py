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
from functools import lru_cache
from pathlib import Path

import numpy as np
import tifffile

from .._io import atomic_write_text
from ..errors import PlateError

CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")
LABEL_COLUMN = "phenotype"
NEGATIVE = "negative_control"
#: phenotype -> (channel it changes, mean fraction of that channel's per-cell signal it relocates)
PHENOTYPES = {"mito_fragmented": ("Mito", 0.9), "er_stress": ("ER", 0.7), "nucleolar": ("RNA", 0.8)}
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
_RNA_NUCLEOLAR_SHARE = 0.8  # the nucleolar phenotype only rearranges the nucleolar part of RNA
_HALF = 17  # cell patches are (2*_HALF+1)^2 pixels; big enough for the largest cell (r <= 16)
_P = 2 * _HALF + 1
_M = _HALF + 4  # canvas margin, so cells cut by the image border are still drawn whole
_CAMERA_OFFSET = 100.0
_LEVELS = {"DNA": 2.0e5, "ER": 4.5e5, "RNA": 1.6e5, "AGP": 3.0e5, "Mito": 2.8e5}  # integral per cell
_BACKGROUND = np.array([40.0, 80.0, 60.0, 70.0, 50.0], np.float32)  # autofluorescence/medium


def _check(wells, sites, size, seed) -> None:
    def ok(v, lo):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo

    if not ok(wells, 0) or int(wells) not in _FORMATS:
        raise PlateError(f"wells={wells!r} is not a plate format; use 96 or 384")
    for name, value, lo in (("sites", sites, 1), ("size", size, 48), ("seed", seed, 0)):
        if not ok(value, lo):
            raise PlateError(f"{name}={value!r} must be a whole number >= {lo}")


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


@lru_cache(maxsize=4)
def _radial_freq(n: int) -> np.ndarray:
    return np.hypot(np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :]).astype(np.float32)


def _fields(rng: np.random.Generator, n: int) -> np.ndarray:
    """Site-wide textures, cropped per cell later: band-pass noise whose zero lines form networks,
    plus blurred random impulses for puncta/vesicles. One batched FFT each, so sites are cheap."""
    f = _radial_freq(n)
    ring = lambda f0, bw: np.exp(-(((f - f0) / bw) ** 2))  # noqa: E731
    low = lambda fc: np.exp(-((f / fc) ** 2))  # noqa: E731
    filt = np.stack([ring(1 / 4.5, 0.05), ring(1 / 8, 0.035), low(1 / 12), ring(1 / 3, 0.1), low(1 / 6)])
    spec = (rng.standard_normal(filt.shape, np.float32) + 1j * rng.standard_normal(filt.shape, np.float32)) * filt
    noise = np.fft.irfft2(spec, s=(n, n)).astype(np.float32)
    noise /= noise.std(axis=(1, 2), keepdims=True)
    density = np.array([0.05, 0.02], np.float32)[:, None, None]
    imp = (rng.random((2, n, n), np.float32) < density) * rng.uniform(0.5, 1.5, (2, n, n)).astype(np.float32)
    sig = np.array([0.9, 1.0], np.float32)[:, None, None]
    puncta = np.fft.irfft2(np.fft.rfft2(imp) * np.exp(-2 * (np.pi * sig * f) ** 2), s=(n, n)).astype(np.float32)
    puncta = np.maximum(puncta, 0) / puncta.mean(axis=(1, 2), keepdims=True)
    return np.concatenate([noise, puncta])


def _sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _unit(x):
    """Normalise each cell's pattern to integral 1: phenotypes move signal, they never add any."""
    return x / np.maximum(x.sum(axis=(-2, -1), keepdims=True), 1e-12)


def _blobs(dy, dx, cy, cx, sigma, weight):
    """Sum of K Gaussian spots per cell: (N,P,P) coords with (N,K) centres -> (N,P,P)."""
    d2 = (dy[:, None] - cy[..., None, None]) ** 2 + (dx[:, None] - cx[..., None, None]) ** 2
    return (weight[..., None, None] * np.exp(-d2 / (2 * sigma[..., None, None] ** 2))).sum(axis=1)


def _place_cells(rng, size, well):
    """Cell centres and radii: Poisson count scaled with area, light overlap allowed."""
    scale = (size / 160) ** 2
    lo, hi = max(1, round(22 * scale)), max(2, round(40 * scale))
    n = int(np.clip(rng.poisson(30 * scale * well["density"]), lo, hi))
    cand = 6 * n
    radius = np.clip(well["radius"] * rng.lognormal(0, 0.1, cand), 7, 11)
    yx = rng.uniform(-3, size + 3, (cand, 2))
    keep: list[int] = []
    for i in range(cand):
        if not keep or np.all(np.hypot(*(yx[keep] - yx[i]).T) >= 0.85 * (radius[keep] + radius[i])):
            keep.append(i)
            if len(keep) == n:
                break
    return yx[keep], radius[keep].astype(np.float32)


def _render_site(rng: np.random.Generator, size: int, well: dict, phenotypes: dict = PHENOTYPES) -> np.ndarray:
    """(5, size, size) noiseless stain intensity of one field of view."""
    (yx, R), n_canvas = _place_cells(rng, size, well), size + 2 * _M
    N, f32 = len(R), np.float32
    u = lambda lo, hi: rng.uniform(lo, hi, N).astype(f32)  # noqa: E731
    mitotic = rng.random(N) < 0.04
    R = np.where(mitotic, 0.8 * R, R)
    c = yx + _M
    top = np.rint(c).astype(int) - _HALF
    ar = np.arange(_P, dtype=f32)
    dy = ar[None, :, None] - (c[:, 0] - top[:, 0]).astype(f32)[:, None, None]
    dx = ar[None, None, :] - (c[:, 1] - top[:, 1]).astype(f32)[:, None, None]

    def ellipse(oy, ox, a, b, theta):
        cs, sn = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
        yy, xx = dy - oy[:, None, None], dx - ox[:, None, None]
        uu, vv = xx * cs + yy * sn, yy * cs - xx * sn
        return np.hypot(uu / a[:, None, None], vv / b[:, None, None]), np.arctan2(vv, uu)

    zero = np.zeros(N, f32)
    ecc = np.where(mitotic, 0, u(0, 0.25))
    rn, phi = ellipse(zero, zero, R * (1 + ecc / 2), R * (1 - ecc / 2), u(0, np.pi))
    wobble = 1 + u(0, 0.06)[:, None, None] * np.sin(2 * phi + u(0, 6.3)[:, None, None]) \
        + u(0, 0.06)[:, None, None] * np.sin(3 * phi + u(0, 6.3)[:, None, None])
    rn = rn / wobble
    cell = _sigmoid((1 - rn) * R[:, None, None] / 0.7)
    Rn = R * np.where(mitotic, 0.38, u(0.42, 0.55))
    en = np.where(mitotic, 0, u(0, 0.35))
    ang, rad = u(0, 2 * np.pi), 0.15 * R * np.sqrt(u(0, 1))
    oy, ox = rad * np.sin(ang), rad * np.cos(ang)
    rnn, _ = ellipse(oy, ox, Rn * (1 + en / 2), Rn * (1 - en / 2), u(0, np.pi))
    nuc = _sigmoid((1 - rnn) * Rn[:, None, None] / 0.45)
    cyto = cell * (1 - nuc)
    dn = np.maximum(rnn - 1, 0) * Rn[:, None, None]  # ~distance outside the nuclear envelope
    Rb = R[:, None, None]

    rows = top[:, 0][:, None, None] + np.arange(_P)[None, :, None]
    cols = top[:, 1][:, None, None] + np.arange(_P)[None, None, :]
    er_tex, mito_tex, seg, fine, smooth, mito_pun, vesicles = _fields(rng, n_canvas)[:, rows, cols]

    # DNA: same DNA content per cell-cycle stage, so small (mitotic) nuclei are bright.
    dna = _unit(nuc * np.maximum(1 + 0.25 * fine, 0.2))
    # ER: fine reticulum enriched around the nucleus | stress: collapsed bright rim + vesicles.
    er_ctrl = _unit(cyto * (0.25 + np.exp(-((er_tex / well["er_w"]) ** 2))) * np.exp(-dn / (0.45 * Rb)))
    er_phen = _unit(cyto * (np.exp(-(((dn - 1.0) / 1.1) ** 2)) * np.maximum(1 + 0.3 * smooth, 0)
                            + 0.6 * vesicles * np.exp(-dn / (0.5 * Rb))))
    # Mito: tubule segments along the zero lines of band-pass noise | fragmented: puncta.
    tubules = np.exp(-((mito_tex / well["mito_w"]) ** 2)) * _sigmoid(2.5 * seg + 1.2)
    mito_ctrl = _unit(cyto * (0.1 + tubules) * np.exp(-dn / (0.7 * Rb)))
    mito_phen = _unit(cyto * (0.1 + mito_pun) * np.exp(-dn / (0.4 * Rb)))
    # RNA: 2-4 small nucleoli + nucleoplasm + cytoplasmic RNA | nucleolar: one large nucleolus.
    k = rng.integers(2, 5, N)
    w_nl = (np.arange(4)[None, :] < k[:, None]).astype(f32) * rng.uniform(0.6, 1.4, (N, 4)).astype(f32)
    r_nl, a_nl = 0.65 * Rn[:, None] * np.sqrt(rng.random((N, 4))), rng.uniform(0, 2 * np.pi, (N, 4))
    nl_y, nl_x = oy[:, None] + r_nl * np.sin(a_nl), ox[:, None] + r_nl * np.cos(a_nl)
    sig_nl = (well["nucleoli"] * rng.uniform(0.8, 1.2, (N, 4))).astype(f32)
    nucleoli = _unit(_blobs(dy, dx, nl_y, nl_x, sig_nl, w_nl) * nuc)
    big = _unit(_blobs(dy, dx, nl_y[:, :1] * 0.3, nl_x[:, :1] * 0.3, well["nucleoli"] * u(2.2, 2.8)[:, None],
                       np.ones((N, 1), f32)) * nuc)
    rna_rest = 0.15 * _unit(nuc) + 0.35 * _unit(cyto * np.maximum(1 + 0.4 * smooth, 0))
    share = _RNA_NUCLEOLAR_SHARE
    rna_ctrl, rna_phen = share * nucleoli + rna_rest, share * big + rna_rest
    # AGP: cortical actin/membrane ring, juxtanuclear Golgi ribbon, faint diffuse actin.
    ring = np.exp(-((((rn - 1) * Rb + 0.6) / 0.9) ** 2)) * np.maximum(1 + 0.5 * fine, 0)
    g_ang = u(0, 2 * np.pi)[:, None] + np.array([-0.35, 0.0, 0.35], f32)
    g_r = (Rn + 1.6)[:, None]
    golgi = _blobs(dy, dx, oy[:, None] + g_r * np.sin(g_ang), ox[:, None] + g_r * np.cos(g_ang),
                   np.full((N, 3), 1.0, f32), np.ones((N, 3), f32))
    agp = 0.5 * _unit(ring) + 0.3 * _unit(golgi * cyto) + 0.2 * _unit(cell * np.maximum(1 + 0.4 * smooth, 0))

    # DNA fragmentation: the nucleus falls apart into 3-6 small dense fragments.
    n_frag = rng.integers(3, 7, N)
    w_fr = (np.arange(6)[None, :] < n_frag[:, None]).astype(f32) * rng.uniform(0.6, 1.4, (N, 6)).astype(f32)
    r_fr, a_fr = 0.8 * Rn[:, None] * np.sqrt(rng.random((N, 6))), rng.uniform(0, 2 * np.pi, (N, 6))
    dna_phen = _unit(_blobs(dy, dx, oy[:, None] + r_fr * np.sin(a_fr), ox[:, None] + r_fr * np.cos(a_fr),
                            np.full((N, 6), 1.3, f32), w_fr))
    # Stress fibres: parallel actin cables across the cell instead of the cortical ring.
    theta = u(0, np.pi)[:, None, None]
    fibres = np.maximum(np.cos(1.6 * (dx * np.cos(theta) + dy * np.sin(theta))), 0) ** 3
    agp_phen = 0.7 * _unit(cell * fibres) + 0.3 * _unit(golgi * cyto)

    ctrl = {"DNA": dna, "ER": er_ctrl, "RNA": rna_ctrl, "AGP": agp, "Mito": mito_ctrl}
    phen = {"DNA": dna_phen, "ER": er_phen, "RNA": rna_phen, "AGP": agp_phen, "Mito": mito_phen}
    by_channel = {c: (name, strength) for name, (c, strength) in phenotypes.items()}
    area = (R / 9.0) ** 2
    canvas = np.zeros((len(CHANNELS), n_canvas, n_canvas), f32)
    content = np.empty((len(CHANNELS), N, _P, _P), f32)
    for ci, ch in enumerate(CHANNELS):
        # per-cell amount: class-independent (size, cell cycle, biological variability)
        amount = _LEVELS[ch] * well.get("brightness", {}).get(ch, 1.0) * rng.lognormal(0, 0.2, N) * (u(1.0, 1.9) if ch == "DNA" else area)
        pattern = ctrl[ch]
        if ch in by_channel:  # a cell shows the phenotype with the well's penetrance (2% spontaneously)
            name, strength = by_channel[ch]
            hit = rng.random(N) < (well["penetrance"] if well["truth"] == name else 0.02)
            blend = strength / (share if ch == "RNA" else 1.0) * rng.uniform(0.8, 1.2, N)
            s = np.where(hit, np.clip(blend, 0, 1), 0).astype(f32)[:, None, None]
            pattern = (1 - s) * pattern + s * phen[ch]
        content[ci] = pattern * amount.astype(f32)[:, None, None]
    for i, (y0, x0) in enumerate(top):
        canvas[:, y0:y0 + _P, x0:x0 + _P] += content[:, i]
    return canvas[:, _M:_M + size, _M:_M + size]


def _illumination(rng: np.random.Generator, size: int) -> np.ndarray:
    """Per-plate, per-channel vignetting (smooth radial fall-off, off-centre) and a slight tilt."""
    g = np.linspace(-1, 1, size, dtype=np.float32)
    out = np.empty((len(CHANNELS), size, size), np.float32)
    for i in range(len(CHANNELS)):
        cy, cx, ty, tx = rng.uniform(-0.15, 0.15, 4)
        r2 = (g[:, None] - cy) ** 2 + (g[None, :] - cx) ** 2
        out[i] = (1 - rng.uniform(0.15, 0.3) * r2 / 2) * (1 + 0.05 * (ty * g[:, None] + tx * g[None, :]))
    return out


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    f = np.hypot(np.fft.fftfreq(img.shape[-2])[:, None], np.fft.rfftfreq(img.shape[-1])[None, :])
    kernel = np.exp(-2 * (np.pi * sigma * f) ** 2)
    return np.fft.irfft2(np.fft.rfft2(img) * kernel, s=img.shape[-2:]).astype(np.float32)


def _acquire(rng, signal, illum, gain) -> np.ndarray:
    """Microscope: background, vignetting, gain, shot + read noise, camera offset -> uint16."""
    s = (signal + _BACKGROUND[:, None, None]) * illum * gain[:, None, None]
    s += np.sqrt(1.5 * s + 16) * rng.standard_normal(s.shape, np.float32) + _CAMERA_OFFSET
    return np.clip(np.rint(s), 0, 65535).astype(np.uint16)


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
        illum = _illumination(np.random.default_rng([seed, 1]), size)
        for wi, well in enumerate(plate):
            wrng = np.random.default_rng([seed, 2, wi])
            # class-independent biological variability between wells (density, size, texture scales)
            well.update(brightness=brightness or {}, density=wrng.lognormal(0, 0.2), radius=wrng.uniform(8.0, 10.0),
                        nucleoli=wrng.lognormal(0, 0.08), er_w=wrng.uniform(0.35, 0.55), mito_w=wrng.uniform(0.3, 0.5))
            gain = wrng.lognormal(0, 0.25, len(CHANNELS)).astype(np.float32)
            for site in range(1, sites + 1):
                srng = np.random.default_rng([seed, 3, wi, site])
                signal = _render_site(srng, size, well, chosen)
                if srng.random() < 0.04:  # out-of-focus field
                    signal = _blur(signal, srng.uniform(2.0, 3.5))
                img = _acquire(srng, signal, illum, gain)
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
