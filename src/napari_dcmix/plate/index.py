"""Index a plate folder by file names alone: which files hold which channel of which site.

Opening a plate never reads pixels, so a 1536-well plate with 80k files opens in about a second.
Sites are keyed by :class:`SiteKey` (plate, well, site): plain sortable tuples a sampler can shard.
"""

from __future__ import annotations

import gc
import os
import re
from collections import defaultdict
from pathlib import Path

from ..errors import PlateError
from .channels import distinct_names
from .layouts import (
    BUILTIN_LAYOUTS, FALLBACK_LAYOUTS, IMAGEXPRESS, OPERETTA, RXRX1, SAMPLE_MANIFEST, Layout, harmony_channel_names,
    htd_channel_names, htd_wavelength_mismatch, sample_layout, user_layout,
)
from .location import PlateLocation
from .ome_zarr import ZarrSource, build_zarr_index, is_hcs_plate, iter_zarr_index, plates_inside
from .problems import IGNORED, REPLANED, SKIPPED, Problem, make, per_file
from .reader import multichannel_info
from .sites import ChannelRef, PlateIndex, SiteKey
from .wells import normalize_well, row_col_to_well

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def list_image_files(root: Path) -> list[str]:
    """Relative posix paths of every image under ``root`` (hidden folders skipped), names only.

    Folders reached through symbolic links are followed once: a link back to a parent is not a loop.
    """
    found: list[str] = []
    stack = [""]
    seen: set[tuple[int, int]] = set()
    try:
        st = root.stat()
        seen.add((st.st_dev, st.st_ino))
    except OSError:
        pass
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(root / rel if rel else root) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            child = f"{rel}/{name}" if rel else name
            try:
                is_dir = entry.is_dir()
                if is_dir and entry.is_symlink():
                    st = entry.stat()
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
            except OSError:
                continue
            if is_dir:
                stack.append(child)
            elif name.lower().endswith(IMAGE_SUFFIXES):
                found.append(child)
    found.sort()
    return found


def _score(layout: Layout, probe: list[str]) -> int:
    return sum(layout.match(p) is not None for p in probe)


def _choose_layout(root: Path, files: list[str], pattern: str | None) -> Layout:
    if pattern:
        return user_layout(pattern)
    if (root / SAMPLE_MANIFEST).is_file():
        return sample_layout(root)
    probe = files if len(files) <= 2000 else files[:: max(1, len(files) // 2000)]
    for layouts in (BUILTIN_LAYOUTS, FALLBACK_LAYOUTS):
        best_score, best = max(((_score(layout, probe), layout) for layout in layouts), key=lambda item: item[0])
        if best_score:
            return best
    examples = ", ".join(files[:3])
    raise PlateError(
        f"no known plate layout in {root} (files like {examples}); "
        "describe your file names with --pattern, e.g. "
        "'(?P<well>[A-P]\\d+)_s(?P<site>\\d+)_(?P<channel>\\w+)\\.tif'"
    )


def _number(text: str | None, default: int) -> int:
    """A site, time point or plane number as captured (``3``, ``s3``, ``f03``); ValueError if none."""
    if text is None or text == "":
        return default
    if text.isdigit():
        return int(text)
    digits = re.findall(r"\d+", text)
    if len(digits) != 1:
        raise ValueError(text)
    return int(digits[0])


def _rxrx1_plate(root: Path, plate: str) -> str:
    """RxRx1 plate ids are ``<experiment>/Plate<p>`` however deep the folder was opened."""
    if "/" in plate:
        return plate
    if not plate:  # a single plate folder was opened: name it from the folder itself
        if not re.fullmatch(r"Plate\d+", root.name, re.IGNORECASE):
            return ""
        plate, root = root.name, root.parent
    return f"{root.name}/{plate}" if root.name else plate


def _harmony_names(root: Path, files: list[str]) -> dict[str, str]:
    """Harmony writes ``Index.idx.xml`` beside the images (``Images/``): look there and in ``root``."""
    names = harmony_channel_names(root)
    if names:
        return names
    for folder in sorted({f.rsplit("/", 1)[0] for f in files if "/" in f})[:10]:
        names = harmony_channel_names(root / folder)
        if names:
            return names
    return {}


def build_index(root: str | os.PathLike, pattern: str | None = None, remote=None) -> PlateIndex:
    """Index ``root`` (a folder or a URL); raises PlateError with a fix when nothing usable is found.
    ``remote``: how a plate at a URL is read (``remote.RemoteSettings``; default: from the environment)."""
    steps = iter_index(root, pattern, remote)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def iter_index(root, pattern: str | None = None, remote=None):
    """:func:`build_index` as a generator of ``OpenProgress`` (a plate at a URL reports its wells'
    metadata as it arrives); returns the PlateIndex.

    The garbage collector is paused while a folder is indexed: indexing allocates a few objects per
    file, and in a large heap (napari's) the full collections this triggers cost more than the index.
    """
    location = PlateLocation.of(root)
    if location.is_remote:
        index = yield from iter_zarr_index(ZarrSource(location, remote))
        if pattern:
            index.problems.append("--pattern ignored: an OME-Zarr plate names its wells and fields itself")
        return index
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_index(location.folder, pattern)
    finally:
        if was_enabled:
            gc.enable()


def _build_index(root: Path, pattern: str | None = None) -> PlateIndex:
    """Index the folder ``root``; raises PlateError with a fix when nothing usable is found."""
    _check_folder(root)
    if is_hcs_plate(root):
        index = build_zarr_index(root)
        if pattern:
            index.problems.append("--pattern ignored: an OME-Zarr plate names its wells and fields itself")
        return index
    files = _image_files(root)
    layout = _choose_layout(root, files, pattern)
    problems: list[Problem] = []
    matched = _first_time_point_and_plane(_match_files(root, layout, files, problems), problems)
    if layout.multichannel:
        return _multichannel_index(root, layout, matched, problems)
    keys = _channel_keys(layout, matched)
    channels = _channel_names(root, layout, matched, keys, problems)
    sites = _complete_sites(matched, keys, channels, problems)
    if not sites:
        raise PlateError(f"no site in {root} has a file for every channel ({', '.join(channels)}); check the folder or the pattern")
    return PlateIndex(root, layout.name, keys, channels, sites, problems)


def _check_folder(root: Path) -> None:
    """A plate is an existing folder: say so before anything is listed."""
    if not root.exists():
        raise PlateError(f"{root} does not exist; choose the folder that holds the plate's images")
    if not root.is_dir():
        raise PlateError(f"{root} is not a folder; choose the folder that holds the plate's images")


def _image_files(root: Path) -> list[str]:
    """The images under ``root``, or a PlateError that points at the OME-Zarr plates inside, if any."""
    files = list_image_files(root)
    if not files:
        inside = plates_inside(root)
        if inside:
            raise PlateError(f"{root} holds OME-Zarr plates ({', '.join(inside)}); open one .zarr folder itself")
        raise PlateError(f"{root} holds no images (.tif, .tiff, .png) and is not an OME-Zarr plate; "
                         "choose the folder that holds the plate's images")
    return files


def _match_files(root: Path, layout: Layout, files: list[str], problems: list[Problem]) -> list[tuple]:
    """(key, channel, path, timepoint, plane) of every file the layout names; files whose well id or
    numbers cannot be read become problems, and a layout that matches nothing is a PlateError."""
    matched: list[tuple[SiteKey, str, str, int, int]] = []  # key, channel, path, timepoint, plane
    bad_wells: list[str] = []
    bad_numbers: list[str] = []
    is_rxrx1 = layout is RXRX1
    plate_ids: dict[str, str] = {}
    match = layout.match
    for path in files:
        groups = match(path)
        if groups is None:
            continue
        try:
            if "well" in groups:
                well = normalize_well(groups["well"])
            else:
                well = row_col_to_well(groups["row"], groups["col"])
        except (PlateError, KeyError):
            bad_wells.append(path)
            continue
        try:
            site = _number(groups.get("site"), 1) + (layout.site_offset if "site" in groups else 0)
            timepoint = _number(groups.get("timepoint"), 0)
            plane = _number(groups.get("plane"), 0)
        except ValueError:
            bad_numbers.append(path)
            continue
        plate = groups.get("plate", "")
        if is_rxrx1:
            if plate not in plate_ids:
                plate_ids[plate] = _rxrx1_plate(root, plate)
            plate = plate_ids[plate]
        matched.append((SiteKey(plate, well, site), groups.get("channel", ""), path, timepoint, plane))
    if not matched:
        raise PlateError(
            f"no file in {root} matches the {layout.name} layout; check the pattern against a file name such as {files[0]}"
        )
    per_file(problems, bad_wells, "well-id", "the well id could not be read", SKIPPED,
            "rename the file (e.g. B02) or fix the pattern's well group")
    per_file(problems, bad_numbers, "file-name", "the site, time point or plane is not a number", SKIPPED,
            "fix the pattern's site group")
    return matched


def _first_time_point_and_plane(matched: list[tuple], problems: list[Problem]) -> list[tuple]:
    """A time series or z-stack is indexed at its first time point and plane (and says so)."""
    first_t = min(m[3] for m in matched)
    first_p = min(m[4] for m in matched)
    if any(m[3] != first_t for m in matched):
        problems.append(make("stack", f"time series found: using time point {first_t} only", action=REPLANED))
    if any(m[4] != first_p for m in matched):
        problems.append(make("stack", f"z-stack found: using plane {first_p} only", action=REPLANED))
    return [m for m in matched if m[3] == first_t and m[4] == first_p]


def _channel_keys(layout: Layout, matched: list[tuple]) -> list[str]:
    """The channel ids found in the file names: the layout's order first, the rest naturally sorted."""
    present = {m[1] for m in matched}
    if layout.channel_order:
        return [c for c in layout.channel_order if c in present] + sorted(present - set(layout.channel_order), key=_natural_key)
    return sorted(present, key=_natural_key)


def _channel_names(root: Path, layout: Layout, matched: list[tuple], keys: list[str], problems: list[Problem]) -> list[str]:
    """Display names of the channels: from the layout, Harmony's Index.idx.xml or MetaXpress's .HTD."""
    names = dict(layout.channel_names)
    prefix = "w"
    if layout is OPERETTA:
        names.update(_harmony_names(root, [m[2] for m in matched[:1]]))
        prefix = "ch"
    elif layout is IMAGEXPRESS:  # MetaXpress writes the plate's .HTD beside the images (or TimePoint_n/)
        names.update(htd_channel_names(root) or htd_channel_names((root / matched[0][2]).parent))
        mismatch = htd_wavelength_mismatch([root, (root / matched[0][2]).parent], keys)
        if mismatch:
            problems.append(make("htd", mismatch, "check that the export is complete (or the .HTD belongs to "
                                 "this plate); the channels found in the file names are used"))
    return distinct_names([names.get(k) or (f"{prefix}{k}" if k.isdigit() else k) or "channel" for k in keys], keys)


def _complete_sites(matched: list[tuple], keys: list[str], channels: list[str],
                    problems: list[Problem]) -> dict[SiteKey, list[ChannelRef]]:
    """Sites with one file per channel, in key order; duplicate files and incomplete sites become problems."""
    slot = {k: i for i, k in enumerate(keys)}
    per_site: dict[SiteKey, list[ChannelRef | None]] = defaultdict(lambda: [None] * len(keys))
    duplicates: list[str] = []
    for key, channel, path, _, _ in matched:
        refs = per_site[key]
        if refs[slot[channel]] is not None:
            duplicates.append(path)
            continue
        refs[slot[channel]] = ChannelRef(path)
    per_file(problems, duplicates, "duplicate", "names a channel that another file of the same site already has",
            IGNORED, "move one of the two files out of the plate folder")

    sites: dict[SiteKey, list[ChannelRef]] = {}
    for key in sorted(per_site):
        refs = per_site[key]
        missing = [channels[i] for i, ref in enumerate(refs) if ref is None]
        if missing:
            present = next((r.path for r in refs if r is not None), "")
            problems.append(make("missing-channel", f"{key.label()} lacks {', '.join(missing)} (missing channel files)",
                                 "add the missing files, or leave the site out", file=present, site=key.label(),
                                 action=SKIPPED))
        else:
            sites[key] = refs  # type: ignore[assignment]
    return sites


def _multichannel_index(root: Path, layout: Layout, matched, problems: list[str]) -> PlateIndex:
    matched.sort(key=lambda m: (m[0], m[2]))
    try:
        n_channels, names = multichannel_info(root / matched[0][2])
    except PlateError as err:
        raise PlateError(f"cannot read the channels of {matched[0][2]}: {err}") from None
    keys = [str(i) for i in range(n_channels)]
    sites: dict[SiteKey, list[ChannelRef]] = {}
    duplicates = []
    for key, _, path, _, _ in matched:
        if key in sites:
            duplicates.append(path)
            continue
        sites[key] = [ChannelRef(path, i) for i in range(n_channels)]
    per_file(problems, duplicates, "duplicate", "extra files for a site that already has one", IGNORED,
            "if each file holds one channel, describe the names with --pattern and a channel group")
    return PlateIndex(root, layout.name, keys, names, sites, problems)
