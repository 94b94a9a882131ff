"""Faults injected into the writes of napari-dcmix's one atomic writer (``_io.atomic_write``), without
filling a real disk: the temporary file's writes stop with ENOSPC after some bytes (a disk that fills
up mid-file, as write(2) does: a short write, then the error), its fsync fails, or the final rename
fails with EIO (a network drive gone). Shared by the CLI, core and dock fault tests."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from pathlib import Path

#: where a write fails: at its first byte (the disk was full), after 40 bytes (it fills up mid-file),
#: at fsync, at the rename over the output
FAULTS = ("write", "write-mid", "fsync", "replace")


class _FillingFile(io.FileIO):
    """A file whose writes stop with ENOSPC once ``budget`` bytes are in (the last write short)."""

    budget = 0

    def write(self, data) -> int:
        if _FillingFile.budget <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        data = bytes(data)[:_FillingFile.budget]
        _FillingFile.budget -= len(data)
        return super().write(data)


def _filling_fdopen(fd, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True):
    raw = _FillingFile(fd, "w", closefd=closefd)
    buffered = io.BufferedWriter(raw)
    return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding=encoding, errors=errors, newline=newline)


def inject(monkeypatch, fault: str, budget: int | None = None) -> str:
    """Make every atomic write of this test fail at ``fault`` (``budget``: the bytes a write lets in);
    returns the reason the error must name."""
    from napari_dcmix import _io

    if fault in ("write", "write-mid"):
        _FillingFile.budget = budget if budget is not None else 0 if fault == "write" else 40
        monkeypatch.setattr(_io.os, "fdopen", _filling_fdopen)
        return "No space left on device"
    if fault == "fsync":
        def fsync(_fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(_io.os, "fsync", fsync)
        return "No space left on device"
    if fault == "replace":
        def replace(_src, _dst):
            raise OSError(errno.EIO, "Input/output error")
        monkeypatch.setattr(_io.os, "replace", replace)
        return "Input/output error"
    raise ValueError(fault)


def digest(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden temporary files too) -> its sha256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def temporary_files(folder: Path) -> list[str]:
    """Temporary files an atomic write left behind (``.<name>.<random>.tmp``)."""
    return sorted(p.name for p in Path(folder).rglob(".*.tmp"))


def previous_files(*paths: Path) -> dict[Path, bytes]:
    """Give each output an earlier version (what a failed write must leave byte for byte)."""
    for path in paths:
        Path(path).write_bytes(b"an earlier " + Path(path).name.encode() + b"\n" + os.urandom(64))
    return {Path(p): Path(p).read_bytes() for p in paths}
