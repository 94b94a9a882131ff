"""The CLI's data-quality report: ``warning:`` lines on stderr (the first 20, then a count) and the
``"problems"``/``"skipped"`` lists of every ``--json`` payload, from the plate's and labels' problems.

The CLI hooks in three places only (``_open``, ``_labels``, ``_emit``, plus the error path), so that
every command, present or future, reports without code of its own. State lives on the argparse
namespace: one run, one report, each problem printed once however often it is flushed.
"""

from __future__ import annotations

import sys
from typing import TextIO

from .plate.problems import SKIPPED, Problem, unique

#: Warning lines printed per run; the rest are counted (all of them are in ``--json``).
MAX_WARNINGS = 20
_STATE = "_dcmix_report"


class Report:
    """The sources of problems of one CLI run and what has been printed so far."""

    def __init__(self):
        self.sources: list[list] = []  # plate.problems, labels.problems: live lists, read when flushed
        self.printed: set[Problem] = set()
        self.shown = 0
        self.hidden = 0

    def add(self, problems: list) -> None:
        if not any(problems is s for s in self.sources):
            self.sources.append(problems)

    def problems(self) -> list[Problem]:
        return unique(*self.sources)

    def flush(self, stream: TextIO | None = None) -> None:
        """Print the problems not printed yet: the first MAX_WARNINGS as lines, the others counted."""
        stream = stream or sys.stderr
        for p in self.problems():
            if p in self.printed:
                continue
            self.printed.add(p)
            if self.shown < MAX_WARNINGS:
                stream.write(f"warning: {p.message}\n")
                self.shown += 1
            else:
                self.hidden += 1

    def close(self, stream: TextIO | None = None) -> None:
        """Flush, then say how many were not printed (once, at the end of the run)."""
        stream = stream or sys.stderr
        self.flush(stream)
        if self.hidden:
            stream.write(f"warning: … and {self.hidden} more problem{'s' if self.hidden > 1 else ''} "
                         "(all of them are listed by --json)\n")
            self.hidden = 0
        stream.flush()

    def payload(self) -> dict:
        problems = self.problems()
        skipped = dict.fromkeys(p.site or p.file for p in problems if p.action == SKIPPED and (p.site or p.file))
        return {"problems": [p.to_dict() for p in problems], "skipped": list(skipped)}


def report_of(args) -> Report:
    report = getattr(args, _STATE, None)
    if report is None:
        report = Report()
        setattr(args, _STATE, report)
    return report


def track(args, problems: list, flush: bool = True) -> None:
    """Report ``problems`` (a plate's or labels' live list) in this run; print what is known now."""
    report = report_of(args)
    report.add(problems)
    if flush:
        report.flush()


def finish(args, payload: dict) -> dict:
    """Print what is left and put ``problems``/``skipped`` into the payload (a copy)."""
    report = report_of(args)
    report.close()
    return {**payload, **report.payload()}


def on_error(args) -> None:
    """An error ends the run: the warnings that led to it come first."""
    if args is not None and getattr(args, _STATE, None) is not None:
        report_of(args).close()
