"""Where a multiple-choice answer stands among the options the prompt lists.

Which option a model picks says something of whether it is right, beside which letter
it is: on many multiple-choice sets the right option is the most detailed one, and a
model that picks the shortest or an extreme number among numeric options is guessing
more often. These are features of the prompt and the answer's label alone, so a learned
acceptance check reads them live exactly as ``chorus tune`` reads them from recorded
outcomes; the check's weights (fitted per table) decide how much each counts, and a
table where they say nothing gives them no weight.

- ``len_rank``: the share of the other options shorter than the chosen one.
- ``longest`` / ``shortest``: the chosen option is (one of) the longest / shortest.
- ``len_z``: its length against the options' mean, in standard deviations (clipped).
- ``numeric``: every option is a number (with a unit at most).
- ``num_rank``: among numeric options, the share with a smaller value.
- ``num_extreme``: among numeric options, the chosen one is the smallest or largest.
- ``position``: its place in the list, 0 for the first and 1 for the last.

All are 0 when the prompt lists fewer than two options or the answer is none of them.
"""

from __future__ import annotations

import functools
import re

__all__ = ["CHOICE_FEATURES", "choice_features", "options"]

CHOICE_FEATURES = ("choice:len_rank", "choice:longest", "choice:shortest", "choice:len_z",
                   "choice:numeric", "choice:num_rank", "choice:num_extreme",
                   "choice:position")

# "A. text", "A) text", "(A) text", "A: text" at the start of a line.
_OPTION = re.compile(r"^[ \t]*\(?([A-Z])[.):][ \t]+(\S.*?)[ \t]*$", re.MULTILINE)
# A number, then at most a short unit ("12.5 kg", "$3,000", "-4 m/s^2", "25%", "750 mm Hg").
_NUMERIC = re.compile(r"\$?\s*([-−]?\d[\d,]*(?:\.\d+)?)(?:\s*[a-zA-Z%/^°·\-\d ]{0,16})?")


def options(prompt: str) -> dict[str, str]:
    """The options the prompt lists, label -> text: the run of lines labelled A, B, C,
    ... in order (the longest such run, the later of two as long: a prompt may quote an
    earlier list before its own); {} when there are fewer than two."""
    return dict(_listed(prompt))


# A prompt is read once however often it is asked about: tune asks about each training
# prompt for every stage and vote it searches, and a live vote for every answer it got.
@functools.lru_cache(maxsize=8192)
def _listed(prompt: str) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    best: dict[str, str] = {}
    for m in _OPTION.finditer(prompt):
        label, text = m.group(1), m.group(2)
        if label == "A":
            found = {}
        if len(found) == ord(label) - ord("A"):
            found[label] = text
            if len(found) >= len(best):
                best = dict(found)
    return tuple(best.items()) if len(best) >= 2 else ()


@functools.lru_cache(maxsize=8192)
def _shape(prompt: str) -> tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...] | None]:
    """The prompt's option labels, their lengths and, when every option is a number,
    their values."""
    listed = _listed(prompt)
    values = [_number(text) for _, text in listed]
    numbers = (tuple(float(v) for v in values if v is not None)
               if all(v is not None for v in values) else None)
    return tuple(k for k, _ in listed), tuple(len(text) for _, text in listed), numbers


def _number(text: str) -> float | None:
    m = _NUMERIC.fullmatch(text.strip())
    if m is None:
        return None
    try:
        return float(m.group(1).replace(",", "").replace("−", "-"))
    except ValueError:
        return None


def choice_features(prompt: str, label: str | None) -> list[float]:
    """The ``CHOICE_FEATURES`` of answering ``label`` (a letter, either case) to
    ``prompt``."""
    labels, lengths, nums = _shape(prompt)
    label = label.strip().upper() if label else None
    if not label or label not in labels:
        return [0.0] * len(CHOICE_FEATURES)
    i = labels.index(label)
    mine, n = lengths[i], len(labels)
    mean = sum(lengths) / n
    std = (sum((v - mean) ** 2 for v in lengths) / n) ** 0.5
    num_rank = num_extreme = 0.0
    if nums is not None:
        num_rank = sum(v < nums[i] for v in nums) / (n - 1)
        num_extreme = float(nums[i] in (min(nums), max(nums)))
    return [sum(v < mine for v in lengths) / (n - 1), float(mine == max(lengths)),
            float(mine == min(lengths)), max(-3.0, min(3.0, (mine - mean) / (std + 1.0))),
            float(nums is not None), num_rank, num_extreme, i / (n - 1)]
