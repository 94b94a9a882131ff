"""Where a plate lives: a folder on this computer, or a URL (``http(s)://``, ``s3://``).

Every caller that needs a plate's identity asks its :class:`PlateLocation` — its name, whether a
path lies inside it, where outputs go by default — instead of testing strings for ``://``. Outputs
are always local files: a plate on a server has a local output folder derived from its name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import PlateError

#: the URL schemes a plate can be opened from (s3 needs the optional ``s3`` extra: s3fs)
REMOTE_SCHEMES = ("http", "https", "s3")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def url_scheme(text: str) -> str | None:
    """The scheme of ``text`` when it is written as a URL (``https://…`` -> ``https``), else None.
    ``C:\\plates`` and ``/data/plate`` are paths, not URLs."""
    match = _SCHEME.match(str(text).strip())
    return match.group(1).lower() if match else None


def is_url(text) -> bool:
    """Whether ``text`` is written as a URL (any scheme but ``file://``)."""
    scheme = url_scheme(os.fspath(text)) if isinstance(text, (str, os.PathLike)) else None
    return scheme is not None and scheme != "file"


@dataclass(frozen=True)
class PlateLocation:
    """A plate's folder (``folder``) or its URL (``url``, without a trailing slash): exactly one is set."""

    folder: Path | None = None
    url: str | None = None

    @classmethod
    def of(cls, where: "str | os.PathLike | PlateLocation") -> "PlateLocation":
        """The location ``where`` names: a URL of a supported scheme, ``file://`` or a path (``~`` expanded).
        PlateError for a URL napari-dcmix cannot read (``ftp://``, a URL without a host or bucket)."""
        if isinstance(where, PlateLocation):
            return where
        text = os.fspath(where).strip() if isinstance(where, (str, os.PathLike)) else str(where)
        scheme = url_scheme(text)
        if scheme is None:
            return cls(folder=Path(text).expanduser())
        if scheme == "file":
            return cls(folder=Path(urlsplit(text).path).expanduser())
        if scheme not in REMOTE_SCHEMES:
            raise PlateError(f"{text}: napari-dcmix opens plates from folders, http(s):// and s3:// URLs, "
                             f"not {scheme}://; give the plate's folder or its http(s):// or s3:// address")
        parts = urlsplit(text)
        if not parts.netloc:
            what = "bucket" if scheme == "s3" else "server"
            raise PlateError(f"{text} names no {what}; write it like {scheme}://{what}/path/plate.zarr")
        return cls(url=text.rstrip("/"))

    # --- what it is ------------------------------------------------------------------------------
    @property
    def is_remote(self) -> bool:
        return self.url is not None

    @property
    def scheme(self) -> str:
        """``file`` for a folder, else the URL's scheme (``https``, ``s3``)."""
        return "file" if self.url is None else urlsplit(self.url).scheme.lower()

    @property
    def name(self) -> str:
        """The last part of the folder or URL path (``2551.zarr``): what file names are derived from."""
        if self.url is None:
            return self.folder.name
        parts = urlsplit(self.url)
        return parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.netloc

    @property
    def stem(self) -> str:
        """The name without a ``.zarr`` suffix (``2551``)."""
        name = self.name
        return name[:-5] if name.lower().endswith(".zarr") and len(name) > 5 else name

    def __str__(self) -> str:
        return self.url if self.url is not None else str(self.folder)

    def same_as(self, other) -> bool:
        """Whether ``other`` (a location, a path or a URL) names this plate (folders compared resolved)."""
        try:
            other = PlateLocation.of(other)
        except PlateError:
            return False
        if self.url is not None or other.url is not None:
            return self.url == other.url
        return self.folder.resolve() == other.folder.resolve()

    # --- outputs ---------------------------------------------------------------------------------
    def contains(self, path: str | os.PathLike) -> bool:
        """Whether the local ``path`` is this plate's folder or lies inside it (never, for a URL)."""
        if self.folder is None:
            return False
        try:
            Path(path).expanduser().resolve().relative_to(self.folder.resolve())
            return True
        except (ValueError, OSError):
            return False

    def output_folder(self, cwd: Path | None = None, home: Path | None = None) -> Path:
        """Where outputs of this plate go unless the user says otherwise: beside a plate folder (its
        parent); for a plate at a URL ``<working folder>/<stem>-dcmix`` (the home folder when the
        working folder is not writable)."""
        if self.folder is not None:
            return self.folder.parent
        base = Path(cwd) if cwd is not None else Path.cwd()
        if not (base.is_dir() and os.access(base, os.W_OK)):
            base = Path(home) if home is not None else Path.home()
        return base / f"{self.stem}-dcmix"
