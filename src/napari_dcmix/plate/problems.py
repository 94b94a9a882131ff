"""The data-quality report: every file or site that was skipped, repaired, re-planed or only warned
about, as a structured record that the CLI, the JSON payloads, the docks and model metadata share.

A :class:`Problem` prints as its message, and ``"text" in problem`` searches the message, so code
(and tests) that treated problems as strings keep working. tifffile logs some damage through the
``tifffile`` logger instead of raising; :func:`capture_tifffile_log` turns those lines into text we
can put into a named problem, so they never reach the user unexplained.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

#: What happened to the file or site (``Problem.action``).
SKIPPED, REPAIRED, REPLANED, IGNORED, WARNING = "skipped", "repaired", "re-planed", "ignored", "warning"


@dataclass(frozen=True)
class Problem:
    """One named data-quality finding.

    ``kind`` is a stable machine name (``unreadable``, ``vanished``, ``missing-channel``, ``mixed-shapes``, ``stack``,
    ``non-finite``, ``mixed-bit-depth``, ``labels``, …); ``file`` is relative to the plate folder;
    ``site`` is a site label (``Plate1 B02 s1``); ``action`` says what was done; ``fix`` what to do.
    """

    kind: str
    message: str
    file: str = ""
    site: str = ""
    action: str = WARNING
    fix: str = ""

    def __str__(self) -> str:
        return self.message

    def __contains__(self, text: str) -> bool:  # str compatibility: ``"H12" in problem``
        return text in self.message

    def to_dict(self) -> dict:
        """What ``--json`` and model metadata hold: every field, plus the well for filtering."""
        return {**asdict(self), "well": self.well}

    @property
    def well(self) -> str:
        """The well of ``site`` (``Plate1 B02 s1`` -> ``B02``), '' when the problem names no site."""
        parts = self.site.split()
        return parts[-2] if len(parts) >= 2 else (parts[0] if parts else "")


def per_file(problems: list, paths: list[str], kind: str, what: str, action: str, fix: str) -> None:
    """One named problem per file: the report names every file, the front ends decide how many to show."""
    for path in paths:
        problems.append(make(kind, f"{path}: {what}", fix, file=path, action=action))


def unique(*sources) -> list[Problem]:
    """The problems of several live lists, in order, each once (hashing: plates can list 80k)."""
    return list(dict.fromkeys(as_problem(p) for source in sources for p in list(source)))


def as_problem(item, kind: str = "note") -> Problem:
    """A Problem from a Problem or a bare string (older code appends strings)."""
    return item if isinstance(item, Problem) else Problem(kind, str(item))


def make(kind: str, what: str, fix: str = "", *, file: str = "", site: str = "", action: str = WARNING) -> Problem:
    """A Problem whose message reads ``<what>: <action>; <fix>``, so one line says it all."""
    message = what if action == WARNING else f"{what}: {action}"
    if fix:
        message += f"; {fix}"
    return Problem(kind, message, file=file, site=site, action=action, fix=fix)


class ProblemLog(list):
    """The plate's problems: a plain list of Problems (so ``==``, ``len``, iteration work) plus a
    thread-safe, de-duplicating :meth:`report` for the readers running in background threads."""

    def __init__(self, items: Iterable = ()):
        super().__init__(as_problem(p) for p in items)
        self._lock = threading.Lock()
        self._seen = set(self)  # a plate with 80k incomplete sites must not make each read O(n)

    def report(self, problem) -> bool:
        """Add ``problem`` unless an equal one is listed; True if it was new."""
        problem = as_problem(problem)
        with self._lock:
            if problem in self._seen:
                return False
            self._seen.add(problem)
            self.append(problem)
            return True

    def skipped(self) -> list[str]:
        """What was left out: the site (or, without one, the file) of every skipped problem."""
        out = []
        for p in map(as_problem, list(self)):
            if p.action == SKIPPED:
                name = p.site or p.file
                if name and name not in out:
                    out.append(name)
        return out


# --- tifffile's logger ------------------------------------------------------------------------------
_capture = threading.local()


class _CaptureFilter(logging.Filter):
    """Keeps tifffile records of a thread inside :func:`capture_tifffile_log` for that thread only."""

    def filter(self, record: logging.LogRecord) -> bool:
        lines = getattr(_capture, "lines", None)
        if lines is None:
            return True  # not inside a plate read: leave the record alone
        lines.append(record.getMessage())
        return False


_FILTER = _CaptureFilter()
logging.getLogger("tifffile").addFilter(_FILTER)


@contextlib.contextmanager
def capture_tifffile_log() -> Iterator[list[str]]:
    """Collect (and hide) what tifffile logs in this thread meanwhile; nests, per thread."""
    outer = getattr(_capture, "lines", None)
    lines: list[str] = []
    _capture.lines = lines
    try:
        yield lines
    finally:
        _capture.lines = outer
        if outer is not None:
            outer.extend(lines)


def tiff_detail(lines: list[str]) -> str:
    """tifffile's log lines without its object reprs (``<tifffile.TiffPages @8> invalid offset …``)."""
    import re

    cleaned = [re.sub(r"raised \w+\((['\"])(.*)\1\)", r"\2", re.sub(r"<[\w.]+(?: @\d+)?>\s*", "", line)).strip()
               for line in lines]
    return "; ".join(dict.fromkeys(c for c in cleaned if c))
