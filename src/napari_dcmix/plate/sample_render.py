"""How a site of the sample plate looks: cells placed in a field, each stain's morphology, the
phenotypes that rearrange one channel's signal (each cell keeps its per-channel integral), uneven
illumination, optics and camera noise. Pure numpy; ``sample`` decides which well gets what.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")
#: phenotype -> (channel it changes, mean fraction of that channel's per-cell signal it relocates)
PHENOTYPES = {"mito_fragmented": ("Mito", 0.9), "er_stress": ("ER", 0.7), "nucleolar": ("RNA", 0.8)}

_RNA_NUCLEOLAR_SHARE = 0.8  # the nucleolar phenotype only rearranges the nucleolar part of RNA
_HALF = 17  # cell patches are (2*_HALF+1)^2 pixels; big enough for the largest cell (r <= 16)
_P = 2 * _HALF + 1
_M = _HALF + 4  # canvas margin, so cells cut by the image border are still drawn whole
_CAMERA_OFFSET = 100.0
_LEVELS = {"DNA": 2.0e5, "ER": 4.5e5, "RNA": 1.6e5, "AGP": 3.0e5, "Mito": 2.8e5}  # integral per cell
_BACKGROUND = np.array([40.0, 80.0, 60.0, 70.0, 50.0], np.float32)  # autofluorescence/medium


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


def _uniform32(rng: np.random.Generator, lo, hi, n: int) -> np.ndarray:
    """One float32 draw per cell (the sample plate's bytes depend on the order of these draws)."""
    return rng.uniform(lo, hi, n).astype(np.float32)


def _ellipse(dy, dx, oy, ox, a, b, theta):
    """Normalised radius (1 on the outline) and polar angle of each patch pixel for per-cell ellipses."""
    cs, sn = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    yy, xx = dy - oy[:, None, None], dx - ox[:, None, None]
    uu, vv = xx * cs + yy * sn, yy * cs - xx * sn
    return np.hypot(uu / a[:, None, None], vv / b[:, None, None]), np.arctan2(vv, uu)


@dataclass
class _Cells:
    """The cells of one site on their (N, P, P) patches: what every stain's pattern is drawn on."""

    R: np.ndarray  # cell radius
    top: np.ndarray  # (N, 2) patch corner on the canvas
    dy: np.ndarray  # (N, P, 1) patch rows relative to the cell centre
    dx: np.ndarray  # (N, 1, P) patch columns relative to the cell centre
    rn: np.ndarray  # normalised radius of the cell outline (1 on the membrane)
    cell: np.ndarray  # soft cell mask
    Rn: np.ndarray  # nucleus radius
    oy: np.ndarray  # nucleus offset from the cell centre
    ox: np.ndarray
    nuc: np.ndarray  # soft nucleus mask
    cyto: np.ndarray  # cell minus nucleus
    dn: np.ndarray  # ~distance outside the nuclear envelope

    @property
    def n(self) -> int:
        return len(self.R)


def _patches(yx: np.ndarray):
    """Where each cell's patch sits on the canvas, and its pixel coordinates about the cell centre."""
    f32 = np.float32
    c = yx + _M
    top = np.rint(c).astype(int) - _HALF
    ar = np.arange(_P, dtype=f32)
    dy = ar[None, :, None] - (c[:, 0] - top[:, 0]).astype(f32)[:, None, None]
    dx = ar[None, None, :] - (c[:, 1] - top[:, 1]).astype(f32)[:, None, None]
    return top, dy, dx


def _cells(rng: np.random.Generator, size: int, well: dict) -> _Cells:
    """Place the cells, then draw each one's wobbly outline and its off-centre nucleus."""
    yx, R = _place_cells(rng, size, well)
    N, f32 = len(R), np.float32
    u = lambda lo, hi: _uniform32(rng, lo, hi, N)  # noqa: E731
    mitotic = rng.random(N) < 0.04
    R = np.where(mitotic, 0.8 * R, R)
    top, dy, dx = _patches(yx)
    zero = np.zeros(N, f32)
    ecc = np.where(mitotic, 0, u(0, 0.25))
    rn, phi = _ellipse(dy, dx, zero, zero, R * (1 + ecc / 2), R * (1 - ecc / 2), u(0, np.pi))
    wobble = 1 + u(0, 0.06)[:, None, None] * np.sin(2 * phi + u(0, 6.3)[:, None, None]) \
        + u(0, 0.06)[:, None, None] * np.sin(3 * phi + u(0, 6.3)[:, None, None])
    rn = rn / wobble
    cell = _sigmoid((1 - rn) * R[:, None, None] / 0.7)
    Rn = R * np.where(mitotic, 0.38, u(0.42, 0.55))
    en = np.where(mitotic, 0, u(0, 0.35))
    ang, rad = u(0, 2 * np.pi), 0.15 * R * np.sqrt(u(0, 1))
    oy, ox = rad * np.sin(ang), rad * np.cos(ang)
    rnn, _ = _ellipse(dy, dx, oy, ox, Rn * (1 + en / 2), Rn * (1 - en / 2), u(0, np.pi))
    nuc = _sigmoid((1 - rnn) * Rn[:, None, None] / 0.45)
    dn = np.maximum(rnn - 1, 0) * Rn[:, None, None]
    return _Cells(R, top, dy, dx, rn, cell, Rn, oy, ox, nuc, cell * (1 - nuc), dn)


def _textures(rng: np.random.Generator, cells: _Cells, n_canvas: int) -> np.ndarray:
    """The site-wide texture fields cropped to each cell's patch: (7, N, P, P)."""
    rows = cells.top[:, 0][:, None, None] + np.arange(_P)[None, :, None]
    cols = cells.top[:, 1][:, None, None] + np.arange(_P)[None, None, :]
    return _fields(rng, n_canvas)[:, rows, cols]


def _er_mito_dna(cells: _Cells, tex: np.ndarray, well: dict) -> tuple[dict, dict]:
    """The stains drawn from textures alone (no draws): DNA control, ER and Mito control and phenotype."""
    er_tex, mito_tex, seg, fine, smooth, mito_pun, vesicles = tex
    cyto, dn, Rb = cells.cyto, cells.dn, cells.R[:, None, None]
    # DNA: same DNA content per cell-cycle stage, so small (mitotic) nuclei are bright.
    dna = _unit(cells.nuc * np.maximum(1 + 0.25 * fine, 0.2))
    # ER: fine reticulum enriched around the nucleus | stress: collapsed bright rim + vesicles.
    er_ctrl = _unit(cyto * (0.25 + np.exp(-((er_tex / well["er_w"]) ** 2))) * np.exp(-dn / (0.45 * Rb)))
    er_phen = _unit(cyto * (np.exp(-(((dn - 1.0) / 1.1) ** 2)) * np.maximum(1 + 0.3 * smooth, 0)
                            + 0.6 * vesicles * np.exp(-dn / (0.5 * Rb))))
    # Mito: tubule segments along the zero lines of band-pass noise | fragmented: puncta.
    tubules = np.exp(-((mito_tex / well["mito_w"]) ** 2)) * _sigmoid(2.5 * seg + 1.2)
    mito_ctrl = _unit(cyto * (0.1 + tubules) * np.exp(-dn / (0.7 * Rb)))
    mito_phen = _unit(cyto * (0.1 + mito_pun) * np.exp(-dn / (0.4 * Rb)))
    return {"DNA": dna, "ER": er_ctrl, "Mito": mito_ctrl}, {"ER": er_phen, "Mito": mito_phen}


def _rna(rng: np.random.Generator, cells: _Cells, smooth: np.ndarray, well: dict) -> tuple[np.ndarray, np.ndarray]:
    """RNA: 2-4 small nucleoli + nucleoplasm + cytoplasmic RNA | nucleolar: one large nucleolus."""
    N, f32, dy, dx, nuc, oy, ox = cells.n, np.float32, cells.dy, cells.dx, cells.nuc, cells.oy, cells.ox
    k = rng.integers(2, 5, N)
    w_nl = (np.arange(4)[None, :] < k[:, None]).astype(f32) * rng.uniform(0.6, 1.4, (N, 4)).astype(f32)
    r_nl, a_nl = 0.65 * cells.Rn[:, None] * np.sqrt(rng.random((N, 4))), rng.uniform(0, 2 * np.pi, (N, 4))
    nl_y, nl_x = oy[:, None] + r_nl * np.sin(a_nl), ox[:, None] + r_nl * np.cos(a_nl)
    sig_nl = (well["nucleoli"] * rng.uniform(0.8, 1.2, (N, 4))).astype(f32)
    nucleoli = _unit(_blobs(dy, dx, nl_y, nl_x, sig_nl, w_nl) * nuc)
    big = _unit(_blobs(dy, dx, nl_y[:, :1] * 0.3, nl_x[:, :1] * 0.3,
                       well["nucleoli"] * _uniform32(rng, 2.2, 2.8, N)[:, None], np.ones((N, 1), f32)) * nuc)
    rna_rest = 0.15 * _unit(nuc) + 0.35 * _unit(cells.cyto * np.maximum(1 + 0.4 * smooth, 0))
    share = _RNA_NUCLEOLAR_SHARE
    return share * nucleoli + rna_rest, share * big + rna_rest


def _agp(rng: np.random.Generator, cells: _Cells, fine: np.ndarray, smooth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AGP: cortical actin/membrane ring, juxtanuclear Golgi ribbon, faint diffuse actin; -> (agp, golgi)."""
    N, f32, Rb = cells.n, np.float32, cells.R[:, None, None]
    ring = np.exp(-((((cells.rn - 1) * Rb + 0.6) / 0.9) ** 2)) * np.maximum(1 + 0.5 * fine, 0)
    g_ang = _uniform32(rng, 0, 2 * np.pi, N)[:, None] + np.array([-0.35, 0.0, 0.35], f32)
    g_r = (cells.Rn + 1.6)[:, None]
    golgi = _blobs(cells.dy, cells.dx, cells.oy[:, None] + g_r * np.sin(g_ang), cells.ox[:, None] + g_r * np.cos(g_ang),
                   np.full((N, 3), 1.0, f32), np.ones((N, 3), f32))
    agp = 0.5 * _unit(ring) + 0.3 * _unit(golgi * cells.cyto) + 0.2 * _unit(cells.cell * np.maximum(1 + 0.4 * smooth, 0))
    return agp, golgi


def _dna_fragmented(rng: np.random.Generator, cells: _Cells) -> np.ndarray:
    """DNA fragmentation: the nucleus falls apart into 3-6 small dense fragments."""
    N, f32 = cells.n, np.float32
    n_frag = rng.integers(3, 7, N)
    w_fr = (np.arange(6)[None, :] < n_frag[:, None]).astype(f32) * rng.uniform(0.6, 1.4, (N, 6)).astype(f32)
    r_fr, a_fr = 0.8 * cells.Rn[:, None] * np.sqrt(rng.random((N, 6))), rng.uniform(0, 2 * np.pi, (N, 6))
    fy, fx = cells.oy[:, None] + r_fr * np.sin(a_fr), cells.ox[:, None] + r_fr * np.cos(a_fr)
    return _unit(_blobs(cells.dy, cells.dx, fy, fx, np.full((N, 6), 1.3, f32), w_fr))


def _stress_fibres(rng: np.random.Generator, cells: _Cells, golgi: np.ndarray) -> np.ndarray:
    """Stress fibres: parallel actin cables across the cell instead of the cortical ring."""
    theta = _uniform32(rng, 0, np.pi, cells.n)[:, None, None]
    fibres = np.maximum(np.cos(1.6 * (cells.dx * np.cos(theta) + cells.dy * np.sin(theta))), 0) ** 3
    return 0.7 * _unit(cells.cell * fibres) + 0.3 * _unit(golgi * cells.cyto)


def _patterns(rng: np.random.Generator, cells: _Cells, tex: np.ndarray, well: dict) -> tuple[dict, dict]:
    """Each stain's control and phenotype pattern per cell (unit integral), drawn in a fixed order."""
    fine, smooth = tex[3], tex[4]
    ctrl, phen = _er_mito_dna(cells, tex, well)
    ctrl["RNA"], phen["RNA"] = _rna(rng, cells, smooth, well)
    ctrl["AGP"], golgi = _agp(rng, cells, fine, smooth)
    phen["DNA"] = _dna_fragmented(rng, cells)
    phen["AGP"] = _stress_fibres(rng, cells, golgi)
    return ctrl, phen


def _cell_content(rng: np.random.Generator, cells: _Cells, ctrl: dict, phen: dict, well: dict,
                  phenotypes: dict) -> np.ndarray:
    """(5, N, P, P): each cell's per-channel amount laid out as its control pattern, blended into the
    phenotype pattern in the cells that show it (the well's penetrance, 2% spontaneously)."""
    N, f32 = cells.n, np.float32
    by_channel = {c: (name, strength) for name, (c, strength) in phenotypes.items()}
    area = (cells.R / 9.0) ** 2
    content = np.empty((len(CHANNELS), N, _P, _P), f32)
    for ci, ch in enumerate(CHANNELS):
        # per-cell amount: class-independent (size, cell cycle, biological variability)
        amount = (_LEVELS[ch] * well.get("brightness", {}).get(ch, 1.0) * rng.lognormal(0, 0.2, N)
                  * (_uniform32(rng, 1.0, 1.9, N) if ch == "DNA" else area))
        pattern = ctrl[ch]
        if ch in by_channel:  # a cell shows the phenotype with the well's penetrance (2% spontaneously)
            name, strength = by_channel[ch]
            hit = rng.random(N) < (well["penetrance"] if well["truth"] == name else 0.02)
            blend = strength / (_RNA_NUCLEOLAR_SHARE if ch == "RNA" else 1.0) * rng.uniform(0.8, 1.2, N)
            s = np.where(hit, np.clip(blend, 0, 1), 0).astype(f32)[:, None, None]
            pattern = (1 - s) * pattern + s * phen[ch]
        content[ci] = pattern * amount.astype(f32)[:, None, None]
    return content


def render_site(rng: np.random.Generator, size: int, well: dict, phenotypes: dict = PHENOTYPES) -> np.ndarray:
    """(5, size, size) noiseless stain intensity of one field of view.

    The helpers draw from ``rng`` in a fixed order (cells, textures, RNA, AGP, DNA fragments, fibres,
    per-channel amounts): keep it, or the sample plate's images change.
    """
    n_canvas = size + 2 * _M
    cells = _cells(rng, size, well)
    tex = _textures(rng, cells, n_canvas)
    ctrl, phen = _patterns(rng, cells, tex, well)
    content = _cell_content(rng, cells, ctrl, phen, well, phenotypes)
    canvas = np.zeros((len(CHANNELS), n_canvas, n_canvas), np.float32)
    for i, (y0, x0) in enumerate(cells.top):
        canvas[:, y0:y0 + _P, x0:x0 + _P] += content[:, i]
    return canvas[:, _M:_M + size, _M:_M + size]


def illumination(rng: np.random.Generator, size: int) -> np.ndarray:
    """Per-plate, per-channel vignetting (smooth radial fall-off, off-centre) and a slight tilt."""
    g = np.linspace(-1, 1, size, dtype=np.float32)
    out = np.empty((len(CHANNELS), size, size), np.float32)
    for i in range(len(CHANNELS)):
        cy, cx, ty, tx = rng.uniform(-0.15, 0.15, 4)
        r2 = (g[:, None] - cy) ** 2 + (g[None, :] - cx) ** 2
        out[i] = (1 - rng.uniform(0.15, 0.3) * r2 / 2) * (1 + 0.05 * (ty * g[:, None] + tx * g[None, :]))
    return out


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    f = np.hypot(np.fft.fftfreq(img.shape[-2])[:, None], np.fft.rfftfreq(img.shape[-1])[None, :])
    kernel = np.exp(-2 * (np.pi * sigma * f) ** 2)
    return np.fft.irfft2(np.fft.rfft2(img) * kernel, s=img.shape[-2:]).astype(np.float32)


def acquire(rng, signal, illum, gain) -> np.ndarray:
    """Microscope: background, vignetting, gain, shot + read noise, camera offset -> uint16."""
    s = (signal + _BACKGROUND[:, None, None]) * illum * gain[:, None, None]
    s += np.sqrt(1.5 * s + 16) * rng.standard_normal(s.shape, np.float32) + _CAMERA_OFFSET
    return np.clip(np.rint(s), 0, 65535).astype(np.uint16)
