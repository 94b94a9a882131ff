"""Sites a long run loses while it runs, and when the run must stop because of them.

Training reads every training site at each pass and the validation sites at each evaluation, for
hours. A site that this run has read before and now cannot read (its file deleted, truncated or
rewritten), or whose file has disappeared since the plate was opened, is *lost*: the plate's problems
name it once (``warning:`` in the CLI, the plate browser's Problems) and the run goes on without it.
Once more than :data:`MAX_SITE_SHARE` of the run's labelled sites, or :data:`MAX_WELL_SHARE` of one
class's wells (a well is gone when every one of its labelled sites is), are lost, what the model is
judged and chosen on is no longer the plate that was labelled: training stops and keeps its best model
so far (:class:`SitesLost`). A site that was unreadable from the start is no loss: it is skipped and
named as before, and the run never had it.

A storage that stops answering (:class:`SourceUnavailable`) is not a site's fault: nothing is counted
as lost, the run stops at the next step and keeps what it has; the sites it still needs are not asked
for again (each would wait out the storage's retries).

Each rank of a torchrun job watches its own reads; ``training/stopping.agree_step`` merges them at
every optimiser step, so every rank takes the same decision at the same step.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from ..errors import DcmixError, SourceUnavailable
from ..plate import SiteKey

#: a run that has lost more than this share of its labelled sites stops (keeping its best model)
MAX_SITE_SHARE = 0.05
#: ... or more than this share of the wells of one class
MAX_WELL_SHARE = 0.20
#: what a stop message lists by name; the plate's problems name every one
SHOWN = 6


class SitesLost(DcmixError):
    """Too many of a run's sites became unreadable while it ran: it stopped, keeping its best model."""


class SiteLosses:
    """The losses of one run over its labelled sites (``site_labels``: SiteKey -> class); thread-safe,
    since the decode threads read the sites."""

    def __init__(self, site_labels: dict[SiteKey, str], what: str = "training"):
        self.site_labels, self.what = dict(site_labels), what
        self.sites_of_well: dict[tuple[str, str], set[SiteKey]] = defaultdict(set)
        self.wells_of_class: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for key, label in self.site_labels.items():
            self.sites_of_well[(key.plate, key.well)].add(key)
            self.wells_of_class[label].add((key.plate, key.well))
        self.read_before: set[SiteKey] = set()
        self.never: set[SiteKey] = set()  # unreadable from the start: never part of the run
        self.lost: dict[SiteKey, str] = {}  # site -> why it could not be read any more
        self.fresh: list[tuple[SiteKey, str]] = []  # lost since the last agreement (torchrun merges them)
        self.unavailable: SourceUnavailable | None = None  # the storage stopped answering
        self._lock = threading.Lock()

    # --- what the site reads report (SiteSource.raw) -------------------------------------------
    def read(self, key: SiteKey) -> None:
        with self._lock:
            self.read_before.add(key)

    def failed(self, key: SiteKey, err: Exception) -> None:
        """A read failed: a loss when this run read the site before or its file has disappeared."""
        vanished = getattr(getattr(err, "problem", None), "kind", "") == "vanished"
        with self._lock:
            if key in self.lost:
                return
            if not (key in self.read_before or vanished):
                self.never.add(key)
                return
            self.lost[key] = str(err)
            self.fresh.append((key, str(err)))

    def source_down(self, key: SiteKey, err: SourceUnavailable) -> None:
        with self._lock:
            if self.unavailable is None:
                self.unavailable = err
                err.site_key = getattr(err, "site_key", None) or key

    def note_unavailable(self, message: str, site: SiteKey | None) -> None:
        """The storage stopped answering for another rank (torchrun): this rank stops too."""
        self.source_down(SiteKey(*site) if site is not None else None, SourceUnavailable(message))

    @property
    def down(self) -> bool:
        """The storage stopped answering: sites not in memory are not asked for again."""
        return self.unavailable is not None

    # --- decisions ------------------------------------------------------------------------------
    def take_fresh(self) -> list[tuple[SiteKey, str]]:
        with self._lock:
            fresh, self.fresh = self.fresh, []
        return fresh

    def merge(self, losses: list[tuple[SiteKey, str]]) -> None:
        """Losses another rank saw (torchrun): every rank then holds the same set."""
        with self._lock:
            for key, why in losses:
                self.lost.setdefault(SiteKey(*key), why)

    def check(self, where: str = "") -> None:
        """Raise when the run must stop: SourceUnavailable when the storage stopped answering,
        :class:`SitesLost` beyond the shares; ``where`` says at which step."""
        at = f" {where}" if where else ""
        if self.unavailable is not None:
            site = getattr(self.unavailable, "site_key", None)
            raise SourceUnavailable(
                f"{self.what} stopped{at}: the plate's storage stopped answering"
                + (f" at {site.label()}" if site is not None else "") + f" ({self.unavailable}); "
                f"re-run when the server answers") from None
        reason = self.too_many()
        if reason:
            raise SitesLost(f"{self.what} stopped{at}: {reason}; check the plate folder (a drive that went away? "
                            "files moved, overwritten or still being copied?), then start again")

    def too_many(self) -> str | None:
        """Why the losses are too many to go on, or None."""
        with self._lock:
            if not self.lost:  # every step asks: the usual answer must cost nothing
                return None
            lost, never = dict(self.lost), set(self.never)
        total = len(self.site_labels)
        if len(lost) > MAX_SITE_SHARE * total:
            return (f"{len(lost)} of its {total} labelled sites ({100 * len(lost) / total:.0f} %) could not be read "
                    f"any more ({_names(sorted(lost))}), more than the {100 * MAX_SITE_SHARE:.0f} % a run may lose")
        for label, wells in sorted(self.wells_of_class.items()):
            gone = sorted(w for w in wells if self.sites_of_well[w] <= lost.keys() | never
                          and self.sites_of_well[w] & lost.keys())
            if len(gone) > MAX_WELL_SHARE * len(wells):
                return (f"{len(gone)} of the {len(wells)} wells of class {label!r} ({100 * len(gone) / len(wells):.0f} %) "
                        f"could not be read any more ({_names(gone)}), more than the {100 * MAX_WELL_SHARE:.0f} % "
                        "of a class's wells a run may lose")
        return None

    def summary(self) -> str | None:
        """One line for a run that lost sites but went on (None without losses)."""
        with self._lock:
            lost = sorted(self.lost)
        if not lost:
            return None
        return (f"{len(lost)} of the {len(self.site_labels)} labelled sites could not be read any more during "
                f"{self.what} and were skipped ({_names(lost)}); check the plate folder")


def _names(items) -> str:
    labels = [item.label() if isinstance(item, SiteKey) else " ".join(p for p in item if p) for item in items]
    shown = ", ".join(labels[:SHOWN])
    return shown + (f" and {len(labels) - SHOWN} more" if len(labels) > SHOWN else "")
