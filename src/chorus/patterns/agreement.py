"""The I/O-free logic that vote, consensus and weighted share.

Normalise an answer to a label, optionally extract the part that counts (a choice
letter, a number, yes/no, one of a label set, a regex group), group equal answers
exactly or by meaning, and pick a winner with an explicit tie-break rule. By meaning,
the words decide first (``chorus.meaning.answers_agree``: a contradiction never joins a
group, a short answer joins the long one that contains it) and the cosine similarity of
embeddings decides only what the words leave open. Everything here is a plain function
over plain values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from chorus.core.errors import ChorusError, MalformedResponse
from chorus.core.types import Completion
from chorus.embeddings import Embedder, Vectors, cosine_matrix
from chorus.meaning import Verdict, answers_agree
from chorus.patterns._concurrent import Outcome

__all__ = [
    "Answer",
    "collect",
    "TOOL_KEY",
    "tool_key",
    "ExtractKind",
    "Extractor",
    "Group",
    "TieBreak",
    "extractor",
    "group_answers",
    "group_exact",
    "display_labels",
    "medoid",
    "merge_by_meaning",
    "verdicts",
    "normalise",
    "pick",
    "tally",
]

ExtractKind = Literal["choice", "number", "yes_no", "label", "regex"]
TieBreak = Literal["order", "weight", "cheapest"]
Extractor = Callable[[str], "str | None"]

# Quotes, brackets and sentence punctuation that wrap an answer without changing it.
_WRAP = " \t\r\n\"'`“”‘’«».,;:!?*_()[]{}<>"
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The label an answer stands for: lower case, single spaces, no wrapping punctuation."""
    return _SPACE.sub(" ", text.strip().strip(_WRAP).lower()).strip()


# -- extraction -------------------------------------------------------------------------

# The letter itself is matched case-sensitively: "the answer is a dog" names no choice.
_CHOICE_STATED = re.compile(
    r"\b(?:answer|option|choice)\s*(?:is|:|=)?\s*(?:option\s+)?[(\[]?((?-i:[A-J]))\b(?![-'])",
    re.IGNORECASE,
)
# A leading letter: "B", "B) Paris", "b." -- but not the article in "A cat ...".
_CHOICE_LEAD = re.compile(r"^\W*(?:([A-J])(?![\w'-])(?!\s+[a-z])|([a-j])[)\].:](?!\w))")
_CHOICE_PAREN = re.compile(r"[(\[]([A-J])[)\]]", re.IGNORECASE)
# A bare capital letter; "A" only when it is not the article.
_CHOICE_BARE = re.compile(r"\b(?:([B-J])|(A)(?!\s+[a-z]))\b(?![-'])")

_NUMBER = r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+−]?\.\d+"
_NUMBER_STATED = re.compile(
    rf"\b(?:answer|result|total)\b[^0-9+\-−.]{{0,20}}({_NUMBER})", re.IGNORECASE
)
_NUMBER_ANY = re.compile(rf"(?<![\w.])({_NUMBER})")
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def _choice(text: str) -> str | None:
    text = text.strip()
    for pattern in (_CHOICE_STATED, _CHOICE_LEAD, _CHOICE_PAREN, _CHOICE_BARE):
        m = pattern.search(text)
        if m:
            return next(g for g in m.groups() if g).upper()
    return None


def _canonical_number(raw: str) -> str:
    value = raw.replace(",", "").replace("−", "-").lstrip("+")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    if value.startswith("-."):
        value = "-0" + value[1:]
    elif value.startswith("."):
        value = "0" + value
    return "0" if value in ("-0", "") else value


def _number(text: str) -> str | None:
    # An explicitly stated answer wins; otherwise the last number, since reasoning
    # usually ends with the result ("6 x 7 = 42").
    m = _NUMBER_STATED.search(text)
    if m:
        return _canonical_number(m.group(1))
    found = _NUMBER_ANY.findall(text)
    return _canonical_number(found[-1]) if found else None


def _yes_no(text: str) -> str | None:
    m = _YES_NO.search(text)
    return m.group(1).lower() if m else None


def _label_finder(labels: Sequence[str]) -> Extractor:
    canonical = {normalise(label): label for label in labels}
    # Longest first so "very positive" wins over "positive" at the same place.
    alternatives = sorted(canonical, key=len, reverse=True)
    pattern = re.compile(
        r"(?<!\w)(" + "|".join(re.escape(a) for a in alternatives) + r")(?!\w)", re.IGNORECASE
    )

    def find(text: str) -> str | None:
        m = pattern.search(_SPACE.sub(" ", text))
        return canonical[normalise(m.group(1))] if m else None

    return find


def _regex_finder(expr: str) -> Extractor:
    pattern = re.compile(expr, re.IGNORECASE)

    def find(text: str) -> str | None:
        m = pattern.search(text)
        if m is None:
            return None
        picked = m.group(1) if pattern.groups else m.group(0)
        return normalise(picked) if picked is not None else None

    return find


def extractor(
    kind: ExtractKind | None, *, labels: Sequence[str] = (), pattern: str | None = None
) -> Extractor:
    """A function from an answer to the label it votes for (None: no label found).

    With ``kind=None`` the whole answer, normalised, is the label.
    """
    if kind is None:
        if labels or pattern:
            raise ValueError("labels and pattern need extract: label or extract: regex")
        return normalise
    if kind not in get_args(ExtractKind):
        raise ValueError(f"extract must be one of {', '.join(get_args(ExtractKind))}")
    if kind == "label":
        if not labels:
            raise ValueError("extract: label needs a non-empty labels list")
        return _label_finder(labels)
    if labels:
        raise ValueError("labels only apply to extract: label")
    if kind == "regex":
        if not pattern:
            raise ValueError("extract: regex needs a pattern")
        try:
            return _regex_finder(pattern)
        except re.error as exc:
            raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
    if pattern:
        raise ValueError("pattern only applies to extract: regex")
    return {"choice": _choice, "number": _number, "yes_no": _yes_no}[kind]


# -- grouping ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One model's answer. ``index`` is its place among the children (for ``order``)."""

    index: int
    model: str
    key: str
    text: str
    weight: float = 1.0
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Group:
    """Answers that agree. ``representative`` is the member whose words are returned."""

    key: str
    members: tuple[Answer, ...]
    representative: Answer

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def weight(self) -> float:
        return sum(a.weight for a in self.members)

    @property
    def cost(self) -> float:
        return sum(a.cost for a in self.members)

    @property
    def first(self) -> int:
        return min(a.index for a in self.members)

    @property
    def models(self) -> list[str]:
        return [a.model for a in self.members]


def group_exact(answers: Sequence[Answer]) -> list[Group]:
    """Answers with equal keys, in the order each key was first seen."""
    by_key: dict[str, list[Answer]] = {}
    for a in sorted(answers, key=lambda a: a.index):
        by_key.setdefault(a.key, []).append(a)
    return [Group(k, tuple(m), m[0]) for k, m in by_key.items()]


def medoid(indices: Sequence[int], sim: Vectors, counts: Sequence[int] | None = None) -> int:
    """The index (from ``indices``) most similar to all the others; earliest on a tie.

    ``counts`` weighs each index by how many identical answers it stands for.
    """
    n = counts or [1] * sim.shape[0]
    best, best_score = indices[0], -np.inf
    for i in indices:
        score = sum(n[j] * float(sim[i, j]) for j in indices)
        if score > best_score + 1e-9:
            best, best_score = i, score
    return best


def verdicts(groups: Sequence[Group], question: str = "") -> list[list[Verdict]]:
    """What the words say about each pair of groups' representatives (``answers_agree``)."""
    texts = [g.representative.text for g in groups]
    out = [[Verdict(True)] * len(texts) for _ in texts]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            out[i][j] = out[j][i] = answers_agree(texts[i], texts[j], question)
    return out


def merge_by_meaning(groups: Sequence[Group], sim: Vectors, threshold: float,
                     said: Sequence[Sequence[Verdict]] | None = None) -> list[Group]:
    """Merge exact groups whose answers mean the same thing.

    ``sim[i, j]`` is the cosine similarity of the representatives of ``groups[i]`` and
    ``groups[j]``; ``said[i][j]``, when given, what their words say (``verdicts``): a pair
    that agrees counts as similarity 1, a pair that disagrees never shares a cluster,
    whatever its similarity. Greedy average linkage in order: each group joins the
    earlier cluster it is most similar to on average (weighted by member count) when that
    average reaches ``threshold``, else starts a cluster. The representative of a cluster
    is its medoid, so the answer returned is the most central wording.
    """
    counts = [g.count for g in groups]
    n = len(groups)
    eff = np.array(sim, dtype=np.float64, copy=True)
    apart = np.zeros((n, n), dtype=bool)
    if said is not None:
        for i in range(n):
            for j in range(n):
                if i != j and said[i][j].same is True:
                    eff[i, j] = 1.0
                elif i != j and said[i][j].same is False:
                    apart[i, j] = True
    clusters: list[list[int]] = []
    for i in range(n):
        best, best_mean = -1, -np.inf
        for c, members in enumerate(clusters):
            if apart[i, members].any():
                continue
            total = sum(counts[j] for j in members)
            mean = sum(counts[j] * float(eff[i, j]) for j in members) / total
            if mean > best_mean:
                best, best_mean = c, mean
        if best >= 0 and best_mean >= threshold:
            clusters[best].append(i)
        else:
            clusters.append([i])
    out: list[Group] = []
    for members in clusters:
        # Each cluster's representative is a distinct exact group, so keys stay unique.
        rep = groups[medoid(members, sim, counts)].representative
        answers = tuple(sorted((a for j in members for a in groups[j].members),
                               key=lambda a: a.index))
        out.append(Group(rep.key, answers, rep))
    return out


async def group_answers(
    answers: Sequence[Answer], embedder: Embedder | None = None, threshold: float = 0.8,
    question: str = "",
) -> list[Group]:
    """Exact groups, then merged by meaning when an embedder is given (``question`` is what
    the answers answer: words that only echo it say nothing)."""
    groups = group_exact(answers)
    # Tool calls agree only when they are the same calls (by name and canonical
    # arguments): they are never merged by meaning.
    calls = [g for g in groups if g.key.startswith(TOOL_KEY)]
    texts = [g for g in groups if not g.key.startswith(TOOL_KEY)]
    if embedder is None or len(texts) < 2:
        return groups
    vectors = await embedder.embed([g.representative.text.strip() for g in texts])
    merged = merge_by_meaning(texts, cosine_matrix(vectors, vectors), threshold,
                              verdicts(texts, question))
    first = {id(g): min(a.index for a in g.members) for g in (*merged, *calls)}
    return sorted((*merged, *calls), key=lambda g: first[id(g)])


# -- deciding ---------------------------------------------------------------------------


def pick(
    groups: Sequence[Group],
    tie_break: TieBreak = "order",
    score: Callable[[Group], float] = lambda g: g.count,
) -> tuple[Group, list[str]]:
    """The group with the highest ``score``, and the keys of the groups it tied with.

    Ties go to the highest total weight (``weight``), the lowest total cost
    (``cheapest``) or the earliest answer (``order``); whatever still ties after
    that goes to the earliest answer.
    """
    if not groups:
        raise ValueError("no answers to choose from")
    top = max(score(g) for g in groups)
    tied = [g for g in groups if score(g) >= top - 1e-9]
    rules: dict[str, Callable[[Group], tuple[float, int]]] = {
        "weight": lambda g: (-g.weight, g.first),
        "cheapest": lambda g: (g.cost, g.first),
        "order": lambda g: (0.0, g.first),
    }
    if tie_break not in rules:
        raise ValueError(f"tie_break must be one of {', '.join(get_args(TieBreak))}")
    key = rules[tie_break]
    winner = min(tied, key=key)
    return winner, [g.key for g in tied] if len(tied) > 1 else []


def display_labels(groups: Sequence[Group], width: int = 80) -> dict[str, str]:
    """A short, unique label per group key, for the trace (long free-text keys are cut)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for i, g in enumerate(groups):
        key = "tool_calls " + g.key[len(TOOL_KEY):] if g.key.startswith(TOOL_KEY) else g.key
        label = key if len(key) <= width else key[: width - 1] + "…"
        if label in taken:
            label = f"{label} #{i + 1}"
        taken.add(label)
        out[g.key] = label
    return out


def tally(groups: Sequence[Group], total: int | None = None) -> dict[str, dict[str, Any]]:
    """The decision as span attributes: per label, count, weight, share and models."""
    shown = display_labels(groups)
    out: dict[str, dict[str, Any]] = {}
    for g in groups:
        row: dict[str, Any] = {"count": g.count, "weight": round(g.weight, 6), "models": g.models}
        if total:
            row["share"] = round(g.count / total, 4)
        out[shown[g.key]] = row
    return out


#: The start of the key of an answer that is tool calls (no text answer starts so).
TOOL_KEY = "\x00tool_calls "


def tool_key(completion: Completion) -> str | None:
    """The vote key of an answer that calls tools: the calls by name and canonical
    arguments, in a fixed order (parallel calls agree whatever order they came in)."""
    if not completion.tool_calls:
        return None
    calls = sorted(c.canonical() for c in completion.tool_calls)
    return TOOL_KEY + json.dumps(calls, separators=(",", ":"), ensure_ascii=False)


def collect(
    outcomes: Sequence[Outcome],
    names: Sequence[str],
    extract: Extractor = normalise,
    weights: Mapping[str, float] | None = None,
) -> tuple[list[Answer], dict[str, ChorusError]]:
    """Answers from the children's outcomes (``names[i]`` names outcome i), and the
    errors of those that failed or whose answer held no label to extract."""
    answers: list[Answer] = []
    errors: dict[str, ChorusError] = {}
    for i, (o, name) in enumerate(zip(outcomes, names, strict=True)):
        if o.completion is None:
            errors[name] = o.error or ChorusError(f"{name} gave no answer")
            continue
        calls = tool_key(o.completion)
        key = calls if calls is not None else extract(o.completion.text)
        if not key:
            shown = o.completion.text.strip()[:60]
            errors[name] = MalformedResponse(f"no answer label found in {shown!r}", model=name)
            continue
        weight = (weights or {}).get(name, 1.0)
        answers.append(Answer(i, name, key, o.completion.text.strip(), weight,
                              o.completion.cost_usd))
    return answers, errors

