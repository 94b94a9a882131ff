"""Renaming channels: ``w1=DNA,w2=ER`` turns instrument channel ids into the stains a biologist knows.

The rename is applied when the plate is opened, so every consumer (model metadata, fine-tune
matching, charts, layers, CSVs) sees only the new names. A channel is found by its current name,
its raw id in the file names (``1``), or that id spelled as the layouts do (``w1``, ``ch1``, ``C1``).
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping

from ..errors import PlateError

_EXAMPLE = "write it like w1=DNA,w2=ER"


def parse_channel_names(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"w1=DNA, w2=ER"`` (or a mapping) -> {"w1": "DNA", "w2": "ER"}; PlateError if malformed."""
    if not text:
        return {}
    if isinstance(text, Mapping):
        items = [(str(k), str(v)) for k, v in text.items()]
    else:
        items = []
        for part in str(text).split(","):
            if not part.strip():
                continue
            old, sep, new = part.partition("=")
            if not sep:
                raise PlateError(f"channel rename '{part.strip()}' has no '='; {_EXAMPLE}")
            if "=" in new:  # 'w1=DNA;w2=ER' or 'w1=DNA w2=ER': several renames glued together
                glue = next((c for c in ";| \t" if c in new.strip()), "")
                said = f" ('{glue}' is not a separator)" if glue.strip() else " (not spaces)" if glue else ""
                raise PlateError(f"channel rename '{part.strip()}' holds several renames; separate them with "
                                 f"commas{said}: {_EXAMPLE}")
            items.append((old, new))
    mapping: dict[str, str] = {}
    for old, new in items:
        old, new = old.strip(), new.strip()
        if not old or not new:
            raise PlateError(f"channel rename '{old}={new}' needs a name on both sides; {_EXAMPLE}")
        if old in mapping and mapping[old] != new:
            raise PlateError(f"channel '{old}' is renamed twice ({mapping[old]}, {new}); keep one")
        mapping[old] = new
    return mapping


def distinct_names(names: list[str], keys: list[str]) -> list[str]:
    """Channel names are layer names and statistics keys: make repeats distinct (``GFP (ch2)``)."""
    counts = Counter(names)
    return [f"{name} ({key})" if counts[name] > 1 else name for name, key in zip(names, keys)]


def _aliases(key: str) -> set[str]:
    spelled = {key} | ({f"w{key}", f"ch{key}", f"c{key}"} if key.isdigit() else set())
    return {a.casefold() for a in spelled}


def _find(old: str, names: list[str], keys: list[str]) -> int:
    for matches in ([i for i, n in enumerate(names) if n == old],
                    [i for i, n in enumerate(names) if n.casefold() == old.casefold()],
                    [i for i, k in enumerate(keys) if old.casefold() in _aliases(k)]):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise PlateError(f"channel '{old}' is ambiguous on this plate ({', '.join(names[i] for i in matches)}); "
                             "use the full channel name")
    raise PlateError(f"channel '{old}' is not on this plate (channels: {', '.join(names)}); "
                     f"rename one of these, {_EXAMPLE}")


def renamed_channels(names: list[str], keys: list[str], rename: str | Mapping[str, str] | None) -> list[str]:
    """``names`` after applying ``rename``; PlateError for unknown channels or clashing results."""
    mapping = parse_channel_names(rename)
    result = list(names)
    done: dict[int, str] = {}
    for old, new in mapping.items():
        i = _find(old, names, keys)
        if i in done:
            raise PlateError(f"'{done[i]}' and '{old}' are the same channel ({names[i]}); rename it once")
        done[i], result[i] = old, new
    clashes = sorted({n for n in result if result.count(n) > 1})
    if clashes:
        raise PlateError(f"after renaming, several channels are called {', '.join(clashes)}; "
                         "give every channel its own name")
    return result


def rename_hint(model_channels: list[str], plate_channels: list[str]) -> str:
    """A suggestion for a model/plate channel mismatch that is only a matter of names."""
    if len(model_channels) != len(plate_channels):
        return ""
    pairs = [f"{p}={m}" for p, m in zip(plate_channels, model_channels) if p != m]
    return (f"; if only the names differ, rename the plate's channels in the model's order, e.g. "
            f"--channel-names {','.join(pairs)} (check each pair)") if pairs else ""
