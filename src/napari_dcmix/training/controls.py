"""The negative control of a screen and the Z′ of every phenotype against it: one rule for explain,
the Apply dock and ``predict --labels``.

The reference (negative control) is guessed from class names (DMSO, negative, NT, untreated, ctrl…;
never one named like a positive control); when no class or several look like one, the guess says so
and the caller asks (the dock's box, ``--reference``). Z′ of a phenotype is computed on the per-well
predicted P(phenotype) of the wells labeled with that phenotype against the wells labeled reference.
"""

from __future__ import annotations

import math
import re
from typing import Mapping

from ..errors import DcmixError
from .zfactor import z_prime

_REFERENCE = re.compile(r"(?<![a-z])(neg(ative)?|controls?|ctrl|dmso|untreated|mock|vehicle|"
                        r"non[-_ ]?targeting|nt|ntc|wild[-_ ]?type|wt)(?![a-z])", re.IGNORECASE)
_POSITIVE = re.compile(r"(?<![a-z])(pos(itive)?)(?![a-z])", re.IGNORECASE)


def _words(name: str) -> str:
    """'negative_control' -> 'negative control', 'NegCtrl' -> 'Neg Ctrl': the words the rule looks at."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name.replace("_", " "))


def looks_like_reference(name: str) -> bool:
    """Named like a negative control (and not like a positive one)."""
    words = _words(name)
    return bool(_REFERENCE.search(words)) and not _POSITIVE.search(words)


def reference_guess(classes: list[str]) -> tuple[str | None, str]:
    """(the negative-control class, or None when it is absent or ambiguous; why, in words)."""
    found = [c for c in classes if looks_like_reference(c)]
    if len(found) == 1:
        return found[0], f"reference guessed from the class names: {found[0]}"
    why = "none of them is named like one" if not found else f"{', '.join(found)} all look like one"
    return None, (f"cannot tell which class is the negative control among {', '.join(classes) or 'no classes'} "
                  f"({why}); choose the reference class (--reference in the CLI, the Reference box in the dock)")


def guess_reference(classes: list[str]) -> str:
    """The negative-control class by name; DcmixError saying what to do when absent or ambiguous."""
    guess, why = reference_guess(classes)
    if guess is None:
        raise DcmixError(why)
    return guess


def resolve_reference(classes: list[str], given: str | None = None) -> str:
    """The reference the user gave (which must be one of ``classes``), else the guess by name."""
    if given is None:
        return guess_reference(classes)
    if given not in classes:
        raise DcmixError(f"reference class {given!r} is not among the labeled classes ({', '.join(classes)}); "
                         "choose one of them (names are case-sensitive)")
    return given


#: the negative-control box's item while the class names do not tell which class it is (every dock)
CHOOSE_REFERENCE = "choose the negative control…"
#: the Z′ "positive control" item that judges each phenotype against the negative control
EVERY_PHENOTYPE = "every phenotype"


def reference_choices(classes: list[str]) -> tuple[list[str], str, str]:
    """The one negative-control picker of the docks: (items, pre-selected item, hint). The guess by
    name is pre-selected; without one, a 'choose' item comes first and the hint says why."""
    classes = list(classes)
    guess, why = reference_guess(classes)
    if guess is None:
        return [CHOOSE_REFERENCE, *classes], CHOOSE_REFERENCE, why
    return classes, guess, why


def chosen_reference(text: str, classes: list[str]) -> str:
    """The reference picked in a box showing :func:`reference_choices`; DcmixError (saying what to do)
    while none is chosen and the names do not tell."""
    if text in classes:
        return text
    guess, _why = reference_guess(list(classes))
    if guess is None:
        raise DcmixError("choose the reference class (the negative control) in the Reference box; "
                         "no class is named like one")
    return guess


def positive_choices(classes: list[str], reference: str) -> tuple[list[str], str]:
    """(Z′ positive-control items, default): with several phenotypes, every one of them by default."""
    others = [c for c in classes if c != reference]
    if len(others) > 1:
        return [EVERY_PHENOTYPE, *classes], EVERY_PHENOTYPE
    return list(classes), (others or [""])[0]


def control_values(well_probs: Mapping, well_labels: Mapping, reference: str,
                   phenotype: str) -> tuple[list[float], list[float]]:
    """The phenotype-vs-reference score of the predicted wells labeled ``phenotype`` and of those labeled
    ``reference``: P(phenotype) / (P(phenotype) + P(reference)).

    Z′ compares two populations, so its readout is the two-class posterior: the share of the phenotype in
    the well's phenotype-or-reference probability. With several phenotypes, P(phenotype) alone also drops
    whenever another phenotype's score rises (a well called a bit of both), which widens the spread of a
    phenotype's wells without saying anything about phenotype vs control. For a two-class model the two
    readouts are the same number.
    ``well_probs``: well -> {class: probability}; ``well_labels``: well -> class (unlabeled wells are absent).
    """
    def score(probs) -> float:
        p, r = float(probs[phenotype]), float(probs.get(reference, 0.0))
        return p / (p + r) if p + r > 0 else 0.5

    def values(cls):
        return [score(well_probs[w]) for w, label in well_labels.items()
                if label == cls and w in well_probs and phenotype in well_probs[w]]
    return values(phenotype), values(reference)


def z_primes(well_probs: Mapping, well_labels: Mapping, reference: str,
             classes: list[str]) -> dict[str, float | None]:
    """Z′ of every class but the reference on its own P(class); None where a side has under 2 wells."""
    found: dict[str, float | None] = {}
    for phenotype in (c for c in classes if c != reference):
        pos, neg = control_values(well_probs, well_labels, reference, phenotype)
        try:
            found[phenotype] = z_prime(pos, neg)
        except DcmixError:
            found[phenotype] = None
    return found


def json_z_primes(values: dict[str, float | None]) -> dict[str, float | None]:
    """JSON has no infinity: identical means (−inf, no separation at all) become null like too few wells."""
    return {c: v if v is not None and math.isfinite(v) else None for c, v in values.items()}


def z_primes_text(values: dict[str, float | None], reference: str) -> str:
    """One line: each phenotype's Z′ against the reference, and how many reach 0.5 (or what to do)."""
    if not values or all(v is None for v in values.values()):
        return (f"Z′ vs {reference}: needs at least 2 predicted wells of {reference} and of each phenotype; "
                "label and predict more wells")
    parts = " · ".join(f"{c} {v:.2f}" if v is not None else f"{c} –" for c, v in values.items())
    good = sum(v is not None and v >= 0.5 for v in values.values())
    return (f"Z′ vs {reference} on P(phenotype vs {reference}): {parts}  ({good} of {len(values)} excellent, ≥ 0.5; "
            f"< 0 means the controls overlap; – too few labeled wells)")


def z_prime_pair_text(well_probs: Mapping, well_labels: Mapping, reference: str, phenotype: str) -> str:
    """Z′ of one phenotype against the reference: value, how many wells, what it means (or what to do)."""
    from .zfactor import z_prime_quality

    if not reference or not phenotype or reference == phenotype:
        return "Z′: choose two different control classes (labeled wells)"
    pos, neg = control_values(well_probs, well_labels, reference, phenotype)
    try:
        z = z_prime(pos, neg)
    except DcmixError as err:
        return f"Z′: {err}"
    return (f"Z′ = {z:.2f} on P({phenotype} vs {reference}), {len(pos)} {phenotype} vs {len(neg)} {reference} wells: "
            f"{z_prime_quality(z)}")


def z_prime_text(predictions: dict, labels: dict, negative: str, positive: str, classes: list[str]) -> str:
    """The dock's Z′ line (the core's text) for the chosen controls, on the session's per-well records."""
    classes = classes or sorted({c for c in labels.values() if c})
    if not negative or negative == CHOOSE_REFERENCE:
        return f"Z′: {reference_guess(classes)[1]}"
    well_probs = {w: rec["probabilities"] for w, rec in predictions.items()}
    if positive == EVERY_PHENOTYPE:
        return z_primes_text(z_primes(well_probs, labels, negative, classes), negative)
    if classes and positive not in classes:
        return f"Z′: the model has no class '{positive}'; choose one of {', '.join(classes)}"
    return z_prime_pair_text(well_probs, labels, negative, positive)
