"""The file-naming conventions of screening instruments, as regular expressions over relative paths.

A layout is a regex with named groups ``well`` (or ``row`` + ``col``), ``channel``, and optionally
``site``, ``plate``, ``plane``, ``timepoint``. Files are matched by name only: no pixels are read to
open a plate. Multi-channel layouts (one OME-TIFF per site) have no ``channel`` group.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from ..errors import PlateError

SAMPLE_MANIFEST = "dcmix_plate.json"

#: Stains of the RxRx1 release as commonly cited (w1..w6), used as channel names.
RXRX1_CHANNELS = {"1": "Hoechst", "2": "ConA", "3": "Phalloidin", "4": "SYTO14", "5": "MitoTracker", "6": "WGA"}

_WELL = r"[A-Za-z]{1,2}\d{1,3}"


@dataclass
class Layout:
    name: str
    regex: re.Pattern
    multichannel: bool = False
    channel_names: dict[str, str] = field(default_factory=dict)  # raw key -> display name
    channel_order: list[str] | None = None  # raw keys in a fixed order (else natural sort)
    exclude: re.Pattern | None = None
    site_offset: int = 0  # added to captured site numbers: 1 where the instrument counts fields from 0

    def match(self, relpath: str) -> dict[str, str] | None:
        if self.exclude is not None and self.exclude.search(relpath):
            return None
        m = self.regex.search(relpath)
        return None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}


IMAGEXPRESS = Layout(
    "imagexpress",
    re.compile(
        # The plate prefix is optional and lazy (``??``): ``B02_s1_w1.tif`` is well B02, not plate B02
        # with well "s1"; a plate name may hold underscores (``Week1_150607_B02_s1_w1….tif``). The
        # channel digits are lazy so that a GUID glued to them (``w2A1B2C3D4-…``, ``w112345678-…``)
        # is not read as part of the channel number.
        rf"(?:^|/)(?:TimePoint_(?P<timepoint>\d+)/)?(?:ZStep_(?P<plane>\d+)/)?"
        rf"(?:(?P<plate>[^/]+?)_)??(?P<well>{_WELL})(?:_s(?P<site>\d+))?_w(?P<channel>\d+?)"
        # The GUID may be bracketed, as in 101210OranePlt1_C16_w1_[9AA4D9EA-18E4-…].tif.
        r"(?:[_-]?\[?[0-9A-Fa-f]{8}-[0-9A-Fa-f-]+\]?)?\.tiff?$",
        re.IGNORECASE,
    ),
    exclude=re.compile(r"_thumb[^/]*$", re.IGNORECASE),  # thumbnails (file names only, not folders)
)

OPERETTA = Layout(
    "operetta",
    re.compile(
        r"(?:^|/)r(?P<row>\d{2})c(?P<col>\d{2})f(?P<site>\d{2,3})p(?P<plane>\d{2})"
        r"-ch(?P<channel>\d+)sk(?P<timepoint>\d+)fk\d+fl\d+\.tiff?$",
        re.IGNORECASE,
    ),
)

RXRX1 = Layout(
    "rxrx1",
    re.compile(
        # ``<experiment>/Plate<p>/B02_s1_w3.png``; the plate folders are optional so that one plate
        # (or one experiment) can be opened on its own (build_index names the plate from the folder).
        rf"(?:^|/)(?:(?P<plate>(?:[^/]+/)?Plate\d+)/)?(?P<well>{_WELL})_s(?P<site>\d+)_w(?P<channel>\d+)\.png$",
        re.IGNORECASE,
    ),
    channel_names=dict(RXRX1_CHANNELS),
)

# One file per site holding every channel: ``[<plate>_]<well>[_<site>[<anything>]].ome.tif``. The
# first well-like token is the well (lazy plate); text after the well is allowed only after a site
# number (``B02_s1_T0``, ``r02c02f01p01``), so that ``P1_B02.ome.tif`` is plate P1, well B02.
_MULTI = (
    rf"(?:^|/)(?:(?P<plate>[^/]*?)_)??(?P<well>{_WELL}|r\d{{1,3}}c\d{{1,3}})"
    r"(?:(?:_?(?:site|field|s|f)|_)(?P<site>\d+)(?:[^\d/][^/]*?)?)?"
)

OME_TIFF = Layout(
    "ome-tiff",
    re.compile(_MULTI + r"\.ome\.tiff?$", re.IGNORECASE),
    multichannel=True,
)

#: Plain (not OME) multi-channel TIFFs, one per site: tried only when no other layout matches, and
#: only for names that hold nothing but plate, well and site (``B02_s1.tif``, ``Plate1_B02.tif``),
#: never a channel: no part of the plate name may look like a well or site (``B02_s1_c1.tif`` is
#: one channel of a site, not plate ``B02_s1`` well C01), and rows stop at AF (1536 wells).
_PLATE_TOKEN = r"(?![A-Za-z]{1,2}\d{1,3}(?:_|\.|$))[^/_]+"
MULTICHANNEL_TIFF = Layout(
    "multichannel-tiff",
    re.compile(
        rf"(?:^|/)(?:(?P<plate>{_PLATE_TOKEN}(?:_{_PLATE_TOKEN})*?)_)??"
        r"(?P<well>(?:[A-Za-z]|A[A-F])\d{1,3}|r\d{1,3}c\d{1,3})"
        r"(?:(?:_?(?:site|field|s|f)|_)(?P<site>\d+))?\.tiff?$",
        re.IGNORECASE,
    ),
    multichannel=True,
)

ARRAYSCAN = Layout(
    "arrayscan",
    re.compile(
        # Thermo Cellomics ArrayScan / CellInsight: ``AS_09125_050116030001_D03f00d0.tif`` is plate
        # AS_09125_050116030001, well D03, field 00 (counted from 0), channel d0; ``.TIF`` too.
        r"(?:^|/)(?:(?P<plate>[^/]+)_)?(?P<well>[A-Za-z]{1,2}\d{2,3})f(?P<site>\d{2,3})"
        r"(?P<channel>d\d{1,2})(?:o\d+)?\.tiff?$",
        re.IGNORECASE,
    ),
    site_offset=1,
)

BUILTIN_LAYOUTS = (OPERETTA, IMAGEXPRESS, RXRX1, OME_TIFF, ARRAYSCAN)
FALLBACK_LAYOUTS = (MULTICHANNEL_TIFF,)


def user_layout(pattern: str) -> Layout:
    """A layout from the user's own regex; bad patterns get a message that says how to fix them."""
    try:
        regex = re.compile(pattern)
    except (re.error, TypeError, ValueError, OverflowError, RecursionError) as err:
        raise PlateError(f"the pattern is not a valid regular expression ({err}); check brackets and escapes") from None
    groups = set(regex.groupindex)
    if "channel" not in groups:
        raise PlateError("the pattern needs a named group for the channel, e.g. _(?P<channel>w\\d)\\.tif")
    if "well" not in groups and not {"row", "col"} <= groups:
        raise PlateError("the pattern needs a named group (?P<well>…) or both (?P<row>…) and (?P<col>…)")
    return Layout("pattern", regex)


def sample_layout(root: Path) -> Layout:
    """The plugin's own sample-plate layout, described by the ``dcmix_plate.json`` it writes last."""
    try:
        manifest = json.loads((root / SAMPLE_MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest["channels"], list) or not isinstance(manifest["pattern"], str):
            raise TypeError("'channels' must be a list and 'pattern' a string")
        channels = [str(c) for c in manifest["channels"]]
        regex = re.compile(manifest["pattern"])
        if "channel" not in regex.groupindex:
            raise KeyError("the pattern has no channel group")
    except (OSError, ValueError, KeyError, TypeError, re.error) as err:
        raise PlateError(f"{root / SAMPLE_MANIFEST} is damaged ({err}); generate the sample plate again") from None
    return Layout("dcmix-sample", regex, channel_order=channels)


def harmony_channel_names(root: Path) -> dict[str, str]:
    """Channel id -> name from an Operetta/Opera Phenix ``Index.idx.xml`` or ``Index.xml``, if present."""
    for name in ("Index.idx.xml", "Index.xml", "index.idx.xml", "index.xml"):
        path = root / name
        if path.is_file():
            break
    else:
        return {}
    names: dict[str, str] = {}
    try:
        for _, elem in ElementTree.iterparse(path, events=("end",)):
            tag = elem.tag.rsplit("}", 1)[-1]
            if tag in ("Entry", "Image"):
                cid = elem.get("ChannelID")
                fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in elem}
                cid = cid or fields.get("ChannelID")
                if tag == "Image" and cid in names:
                    break  # image entries repeat the channel names: the first round is enough
                if cid and fields.get("ChannelName"):
                    names[cid] = fields["ChannelName"]
                elem.clear()
    except (ElementTree.ParseError, OSError):
        return names
    return names


_WAVE_NAME = re.compile(r'^\s*"WaveName(\d+)"\s*,\s*"([^"]*)"', re.IGNORECASE | re.MULTILINE)
_N_WAVES = re.compile(r'^\s*"NWavelengths"\s*,\s*(\d+)', re.IGNORECASE | re.MULTILINE)


def htd_wavelength_mismatch(folders: list[Path], present: list[str]) -> str | None:
    """What the first ``.HTD`` found in ``folders`` says that the files do not: wavelengths it names
    (``NWavelengths``, ``WaveName<n>``) with no file on the plate, or files of wavelengths it lacks.
    ``present``: the wavelength ids of the channel files (``"1"``, ``"2"``…)."""
    for folder in folders:
        try:
            path = next(iter(sorted(p for p in folder.iterdir() if p.suffix.lower() == ".htd" and p.is_file())), None)
            text = path.read_text(encoding="latin-1") if path is not None else None
        except OSError:
            continue
        if text is None:
            continue
        named = {str(int(n)): name.strip() for n, name in _WAVE_NAME.findall(text)}
        count = _N_WAVES.search(text)
        declared = {str(i) for i in range(1, int(count.group(1)) + 1)} if count else set(named)
        missing = sorted(declared - set(present), key=int)
        extra = sorted((k for k in present if k.isdigit() and k not in declared), key=int)
        said = lambda ks: ", ".join(f"w{k}" + (f" ({named[k]})" if named.get(k) else "") for k in ks)  # noqa: E731
        parts = []
        if missing:
            parts.append(f"names {len(declared)} wavelengths but no file of the plate has {said(missing)}")
        if extra:
            parts.append(f"does not name {said(extra)}, which files of the plate have")
        return f"{path.name} {' and '.join(parts)}" if parts else None
    return None


def htd_channel_names(root: Path) -> dict[str, str]:
    """Wavelength number -> name from a MetaXpress ``.HTD`` plate file (``"WaveName1", "DAPI"``).

    Several ``.HTD`` files (several plates in one folder) are read in name order; the first name
    given for a wavelength wins.
    """
    names: dict[str, str] = {}
    try:
        files = sorted(p for p in root.iterdir() if p.suffix.lower() == ".htd" and p.is_file())
    except OSError:
        return names
    for path in files:
        try:
            text = path.read_text(encoding="latin-1")
        except OSError:
            continue
        for number, name in _WAVE_NAME.findall(text):
            if name.strip():
                names.setdefault(str(int(number)), name.strip())
    return names
