"""Shared fixtures: tiny plates written in every supported naming, with deterministic pixels."""

from __future__ import annotations

import csv
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile

# the dock tests live in a folder per dock (mirroring src/napari_dcmix/widgets); their shared helpers
# (``dcmix_dock_helpers``) sit in tests/widgets, importable from every sub-folder
sys.path.insert(0, str(Path(__file__).parent / "widgets"))

WELLS_6 = ["B02", "B03", "C02", "C03", "D02", "D03"]


def site_pixels(well: str, site: int, channel: int, size: int = 16) -> np.ndarray:
    """Deterministic uint16 pixels that differ by well, site and channel (so reads can be checked)."""
    rng = np.random.default_rng(zlib.crc32(f"{well}-{site}-{channel}".encode()))
    base = 100 * (channel + 1) + 10 * site
    return (base + rng.integers(0, 50, size=(size, size))).astype(np.uint16)


def write_imagexpress(root: Path, wells=WELLS_6, sites=2, channels=3, size=16, plate="Plate1") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for well in wells:
        for s in range(1, sites + 1):
            for c in range(channels):
                site_part = f"_s{s}" if sites > 1 else ""
                name = f"{plate}_{well}{site_part}_w{c + 1}9A1E2A7D-1234-ABCD.tif"
                tifffile.imwrite(root / name, site_pixels(well, s, c, size))
                if c == 0 and s == 1:
                    tifffile.imwrite(root / f"{plate}_{well}{site_part}_w{c + 1}_thumb9A1E2A7D-1234.tif", np.zeros((4, 4), np.uint16))
    return root


def write_signal_plate(root: Path, signal_channel: int = 1, channels: int = 3, wells_per_class: int = 8,
                       sites: int = 2, size: int = 32, seed: int = 0) -> tuple[Path, Path]:
    """A tiny plate whose two classes differ only by texture in ``signal_channel``; returns (plate, labels.csv)."""
    return write_phenotype_plate(root, {"positive": signal_channel}, channels, wells_per_class, sites, size, seed)


def write_phenotype_plate(root: Path, phenotypes: dict[str, int], channels: int = 3, wells_per_class: int = 6,
                          sites: int = 2, size: int = 32, seed: int = 0, reference: str = "negative") -> tuple[Path, Path]:
    """A tiny plate with a reference class and phenotypes that each add texture to one channel
    (``phenotypes``: class -> channel index, or a tuple of them); returns (plate, labels.csv)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    classes = [reference, *phenotypes]
    labels = []
    for i in range(len(classes) * wells_per_class):
        well = f"{'BCDEFG'[i % 6]}{2 + i // 6:02d}"
        cls = classes[i % len(classes)]
        labels.append((well, cls))
        for s in range(1, sites + 1):
            for c in range(channels):
                img = rng.normal(1000, 60, size=(size, size))
                wanted = phenotypes.get(cls)
                if c == wanted or (isinstance(wanted, tuple) and c in wanted):
                    yy, xx = np.mgrid[:size, :size]
                    img += 400 * np.sin(xx * 1.3 + rng.uniform(0, 6)) * np.sin(yy * 1.3)
                tifffile.imwrite(root / f"{well}_s{s}_ch{c}.tif", np.clip(img, 0, 65535).astype(np.uint16))
    csv_path = root.parent / f"{root.name}_labels.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["well", "phenotype"])
        writer.writerows(labels)
    return root, csv_path


def constant_member(log_odds: float, n_channels: int = 3, seed: int = 0):
    """A binary DCMIX model whose logits are [0, log_odds] for every input (weights zero, head bias set)."""
    import torch

    from napari_dcmix.model import ChannelClassifier

    torch.manual_seed(seed)
    model = ChannelClassifier("dcmix", n_channels, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.head.bias.copy_(torch.tensor([0.0, log_odds]))
        model.mixing.logits.copy_(torch.randn(1, n_channels))
    return model.eval()


SIGNAL_PATTERN = r"(?P<well>[A-Z]\d+)_s(?P<site>\d+)_(?P<channel>ch\d)\.tif"


@pytest.fixture
def imagexpress_plate(tmp_path) -> Path:
    return write_imagexpress(tmp_path / "ixm")


@pytest.fixture
def signal_plate(tmp_path) -> tuple[Path, Path]:
    return write_signal_plate(tmp_path / "signal")


# --- writers for the plate-layer tests (every supported naming, tiny deterministic images) -------

HARMONY_NS = "http://www.perkinelmer.com/PEHH/HarmonyV5"


def png_pixels(well: str, site: int, channel: int, size: int = 12) -> np.ndarray:
    """Deterministic 8-bit pixels (RxRx1 ships 8-bit PNGs)."""
    return (site_pixels(well, site, channel, size) % 251).astype(np.uint8)


def harmony_xml(channels: dict[str, str], style: str = "maps") -> str:
    """A small but realistic Harmony ``Index.idx.xml``: channel names in <Maps> and/or <Images>."""
    images = ""
    if style in ("images", "both"):
        items = []
        for field in (1, 2):
            for cid, name in channels.items():
                items.append(
                    f'    <Image Version="1">\n      <id>0202K1F{field}P1R{cid}</id>\n      <State>Ok</State>\n'
                    f'      <URL>r02c02f0{field}p01-ch{cid}sk1fk1fl1.tiff</URL>\n      <Row>2</Row>\n      <Col>2</Col>\n'
                    f'      <FieldID>{field}</FieldID>\n      <PlaneID>1</PlaneID>\n      <TimepointID>1</TimepointID>\n'
                    f'      <ChannelID>{cid}</ChannelID>\n      <ChannelName>{name}</ChannelName>\n'
                    f'      <ImageResolutionX Unit="m">6.4E-07</ImageResolutionX>\n    </Image>')
        images = "  <Images>\n" + "\n".join(items) + "\n  </Images>\n"
    maps = ""
    if style in ("maps", "both"):
        entries = "\n".join(
            f'      <Entry ChannelID="{cid}">\n        <ChannelName>{name}</ChannelName>\n'
            f'        <ImageType>Signal</ImageType>\n        <AcquisitionType>NonConfocal</AcquisitionType>\n'
            f'        <ImageResolutionX Unit="m">6.4E-07</ImageResolutionX>\n      </Entry>'
            for cid, name in channels.items())
        maps = f"  <Maps>\n    <Map>\n{entries}\n    </Map>\n  </Maps>\n"
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<EvaluationInputData xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" Version="1" xmlns="{HARMONY_NS}">\n'
        "  <User>dcmix</User>\n  <InstrumentType>Phenix</InstrumentType>\n"
        "  <Plates>\n    <Plate>\n      <PlateID>a1b2</PlateID>\n      <PlateTypeName>96 PerkinElmer CellCarrier</PlateTypeName>\n"
        "      <PlateRows>8</PlateRows>\n      <PlateColumns>12</PlateColumns>\n    </Plate>\n  </Plates>\n"
        f"{images}{maps}</EvaluationInputData>\n"
    )


def write_operetta(root: Path, wells=("B02", "B03", "C04"), fields: int = 2, channels: int = 3, planes: int = 1,
                   timepoints: int = 1, size: int = 12, names: dict[str, str] | None = None, style: str = "maps",
                   xml_name: str = "Index.idx.xml") -> Path:
    """Harmony export: ``Images/r02c02f01p01-ch1sk1fk1fl1.tiff`` (+ ``Index.idx.xml`` when ``names``)."""
    images = root / "Images"
    images.mkdir(parents=True, exist_ok=True)
    for well in wells:
        row, col = "ABCDEFGHIJKLMNOP".index(well[0]) + 1, int(well[1:])
        for f in range(1, fields + 1):
            for c in range(1, channels + 1):
                for p in range(1, planes + 1):
                    for t in range(1, timepoints + 1):
                        img = site_pixels(well, f, c - 1, size) + 1000 * (p - 1) + 2000 * (t - 1)
                        tifffile.imwrite(images / f"r{row:02d}c{col:02d}f{f:02d}p{p:02d}-ch{c}sk{t}fk1fl1.tiff", img)
    if names is not None:
        (images / xml_name).write_text(harmony_xml(names, style), encoding="utf-8")
    return root


def write_rxrx1(root: Path, experiments=("HUVEC-01",), plates=(1, 2), wells=("B02", "B03", "C02"), sites: int = 2,
                channels: int = 6, size: int = 12) -> Path:
    """RxRx1 release: ``<experiment>/Plate<p>/<well>_s<site>_w<channel>.png`` (8-bit)."""
    import imageio.v3 as iio

    for exp in experiments:
        for p in plates:
            folder = root / exp / f"Plate{p}"
            folder.mkdir(parents=True, exist_ok=True)
            for well in wells:
                for s in range(1, sites + 1):
                    for c in range(1, channels + 1):
                        iio.imwrite(folder / f"{well}_s{s}_w{c}.png", png_pixels(well, s, c - 1, size))
    return root


def write_rxrx1_metadata(path: Path, rows) -> Path:
    """RxRx1 ``metadata.csv``; ``rows`` are (experiment, plate number, well, site, well_type, sirna)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["site_id", "well_id", "cell_type", "dataset", "experiment", "plate", "well", "site",
                         "well_type", "sirna", "sirna_id"])
        for exp, plate, well, site, well_type, sirna in rows:
            writer.writerow([f"{exp}_{plate}_{well}_{site}", f"{exp}_{plate}_{well}", exp.split("-")[0], "train",
                             exp, plate, well, site, well_type, sirna, sirna.split("_")[-1] if sirna else ""])
    return path


def write_ome_sites(root: Path, wells=("B02", "C03"), sites: int = 2, names=("DNA", "ER", "Mito"), size: int = 12,
                    plate: str = "", ome: bool = True) -> Path:
    """One multi-channel (OME-)TIFF per site: ``[<plate>_]<well>_s<site>.ome.tif`` holding (C, Y, X)."""
    root.mkdir(parents=True, exist_ok=True)
    prefix = f"{plate}_" if plate else ""
    for well in wells:
        for s in range(1, sites + 1):
            data = np.stack([site_pixels(well, s, c, size) for c in range(len(names))])
            if ome:
                tifffile.imwrite(root / f"{prefix}{well}_s{s}.ome.tif", data,
                                 metadata={"axes": "CYX", "Channel": {"Name": list(names)}}, ome=True)
            else:
                tifffile.imwrite(root / f"{prefix}{well}_s{s}.tif", data)
    return root


# --- OME-Zarr HCS plates, written by ome-zarr-py's own writer (NGFF 0.4 on zarr v2, 0.5 on zarr v3) ---

ZARR_CHANNELS = (("DNA", "0000FF"), ("ER", "00FF00"), ("Mito", "FF00FF"))


def write_ome_zarr_plate(root: Path, version: str = "0.4", wells=("B02", "B03", "C02"), fields: int = 2,
                         channels=ZARR_CHANNELS, size: int = 16, pixels=None, name: str = "ZPlate",
                         zyx: bool = True) -> Path:
    """An HCS plate as ``ome_zarr.writer`` writes it: plate → row/column wells → fields, a 2-level
    pyramid per field with (c, z, y, x) axes and omero channel labels and colours.

    ``pixels(well, field, channel) -> (size, size)`` sets the images (default :func:`site_pixels`).
    """
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    fmt = {"0.4": FormatV04(), "0.5": FormatV05()}[version]
    pixels = pixels or (lambda well, f, c: site_pixels(well, f, c, size))
    group = zarr.open_group(str(root), mode="w", zarr_format=fmt.zarr_format)
    rows = sorted({w[0] for w in wells})
    cols = sorted({str(int(w[1:])) for w in wells}, key=int)
    paths = [f"{w[0]}/{int(w[1:])}" for w in wells]
    write_plate_metadata(group, rows, cols, paths, fmt=fmt, field_count=fields, name=name)
    omero = {"channels": [{"label": label, "color": colour, "active": True,
                           "window": {"start": 0, "end": 1000, "min": 0, "max": 65535}} for label, colour in channels]}
    for well, path in zip(wells, paths):
        well_group = group.require_group(path)
        write_well_metadata(well_group, [{"path": str(f)} for f in range(fields)], fmt=fmt)
        for f in range(fields):
            data = np.stack([pixels(well, f + 1, c) for c in range(len(channels))])
            data = data[:, None] if zyx else data
            write_image(data, well_group.require_group(str(f)), axes="czyx" if zyx else "cyx", fmt=fmt,
                        scale_factors=[2], storage_options={"chunks": data.shape[:-2] + (size // 2, size // 2)}, omero=omero)
    return root


@pytest.fixture(params=["0.4", "0.5"])
def zarr_plate(request, tmp_path) -> Path:
    return write_ome_zarr_plate(tmp_path / f"plate{request.param}.zarr", request.param)


def write_zarr_signal_plate(root: Path, version: str = "0.5", wells_per_class: int = 6, size: int = 32,
                            seed: int = 0) -> tuple[Path, Path]:
    """An OME-Zarr plate whose classes differ only by texture in channel ER (index 1); (plate, labels.csv)."""
    rows = "BCDEFG"
    wells = [f"{rows[i % 6]}{2 + i // 6:02d}" for i in range(2 * wells_per_class)]
    classes = {w: ("positive" if i % 2 else "negative") for i, w in enumerate(wells)}

    def pixels(well, field, channel):
        rng = np.random.default_rng(zlib.crc32(f"{seed}-{well}-{field}-{channel}".encode()))
        img = rng.normal(1000, 60, size=(size, size))
        if channel == 1 and classes[well] == "positive":
            yy, xx = np.mgrid[:size, :size]
            img += 400 * np.sin(xx * 1.3 + rng.uniform(0, 6)) * np.sin(yy * 1.3)
        return np.clip(img, 0, 65535).astype(np.uint16)

    write_ome_zarr_plate(root, version, wells=wells, fields=2, size=size, pixels=pixels)
    csv_path = root.parent / f"{root.stem}_labels.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["well", "phenotype"])
        writer.writerows(classes.items())
    return root, csv_path


@pytest.fixture
def browser(make_napari_viewer, tmp_path, monkeypatch):
    """A factory for a shown viewer with the plate dock; HOME is a temporary folder (labels are
    saved there). A factory, because a fixture value holding the viewer would outlive napari's
    viewer teardown and count as a leaked viewer."""
    from napari_dcmix.widgets.plate_browser.dock import PlateBrowserWidget  # Qt only for the dock tests

    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def make():
        viewer = make_napari_viewer(show=True)
        dock = PlateBrowserWidget(viewer)
        viewer.window.add_dock_widget(dock, name="Plate browser")
        return viewer, dock

    return make


@pytest.fixture
def two_fold_threads(monkeypatch):
    """Explain as on the 2-core CI machine, whatever this one has: 2 torch threads, so 2 fold models
    side by side (the CLI and the engine) and the Explain dock's 2 fold threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr("napari_dcmix.widgets.explain.dock.FOLD_THREADS", 2)
    yield
    torch.set_num_threads(before)


def stop_after_first_fold(explainer):
    """Run explain until its first fold model has finished, then Stop (close the generator) as the
    dock's Cancel and the CLI's Ctrl-C do; returns the matrix it kept (that fold's rows, and the fold
    beside it too where that one had also finished: folds train side by side on 2 threads)."""
    run = explainer.run()
    for event in run:
        if event.kind == "row":
            break
    run.close()
    return explainer.result


# --- plates on a server: a local HTTP (and minimal S3) server on 127.0.0.1, see plate_server.py ---
REMOTE_ENV = ("NAPARI_DCMIX_CACHE_SIZE", "NAPARI_DCMIX_DISK_CACHE", "NAPARI_DCMIX_TIMEOUT", "NAPARI_DCMIX_S3_ENDPOINT",
              "NAPARI_DCMIX_S3_SIGNED")


@pytest.fixture
def plate_server(monkeypatch):
    """A factory: ``serve(folder)`` starts a PlateServer for ``folder``; every server stops after the
    test. The NAPARI_DCMIX_* settings of the environment are cleared: each test says what it uses."""
    from plate_server import PlateServer

    for name in REMOTE_ENV:
        monkeypatch.delenv(name, raising=False)
    servers = []

    def serve(folder: Path) -> PlateServer:
        server = PlateServer(folder)
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.stop()


def quick_remote(**overrides):
    """Remote settings for tests: a short timeout and back-off (every failure test stays bounded)."""
    from napari_dcmix.plate.remote import RemoteSettings

    return RemoteSettings(**{"timeout_s": 5.0, "backoff_s": 0.01, **overrides})
