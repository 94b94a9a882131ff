"""How a site of the sample plate looks: cells placed in a field, each stain's morphology, the
phenotypes that rearrange one channel's signal (each cell keeps its per-channel integral), uneven
illumination, optics and camera noise. Pure numpy; ``sample`` decides which well gets what.
"""

from __future__ import annotations

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


def render_site(rng: np.random.Generator, size: int, well: dict, phenotypes: dict = PHENOTYPES) -> np.ndarray:
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
