"""The pure agreement logic: normalising, extracting, grouping, picking a winner."""

from __future__ import annotations

import numpy as np
import pytest

from chorus.core.errors import MalformedResponse, ServerError
from chorus.core.types import Completion, Span
from chorus.patterns._concurrent import Outcome
from chorus.patterns.agreement import (
    Answer,
    collect,
    display_labels,
    extractor,
    group_answers,
    group_exact,
    medoid,
    merge_by_meaning,
    normalise,
    pick,
    tally,
)
from chorus.providers.scripted import ScriptedModel
from tests.patterns._fakes import TableEmbedder


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Paris", "paris"),
        ("  PARIS.  ", "paris"),
        ('"Paris!"', "paris"),
        ("**Paris**", "paris"),
        ("'New   York'\n", "new york"),
        ("«Yes»", "yes"),
        ("(positive)", "positive"),
        ("3.14", "3.14"),
        ("", ""),
    ],
)
def test_normalise(text: str, label: str) -> None:
    assert normalise(text) == label


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("(c)", "C"),
        ("D) Paris", "D"),
        ("The answer is C.", "C"),
        ("Answer: (E)", "E"),
        ("A cat is a mammal, so the correct option is B", "B"),
        ("I think (A) fits best", "A"),
        ("A", "A"),
        ("J.", "J"),
        ("none of them", None),
        ("K", None),
    ],
)
def test_extract_choice(text: str, letter: str | None) -> None:
    assert extractor("choice")(text) == letter


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("42", "42"),
        ("The answer is 42.", "42"),
        ("6 x 7 = 42", "42"),
        ("Result: -3.50", "-3.5"),
        ("about 1,234,567 people", "1234567"),
        ("42.0", "42"),
        ("The answer is 12, since 3 * 4 makes 12 and not 13", "12"),
        ("no digits here", None),
    ],
)
def test_extract_number(text: str, number: str | None) -> None:
    assert extractor("number")(text) == number


@pytest.mark.parametrize(
    ("text", "answer"),
    [("Yes.", "yes"), ("no", "no"), ("NO, it is not", "no"),
     ("Well, yes and no", "yes"), ("maybe", None), ("nothing", None)],
)
def test_extract_yes_no(text: str, answer: str | None) -> None:
    assert extractor("yes_no")(text) == answer


def test_extract_label_returns_the_users_spelling_and_prefers_longer_labels() -> None:
    find = extractor("label", labels=["Positive", "Negative", "very positive"])
    assert find("Sentiment: NEGATIVE.") == "Negative"
    assert find("It is very   positive!") == "very positive"
    assert find("positively good") is None  # whole words only
    assert find("neutral") is None


def test_extract_regex_takes_the_first_group() -> None:
    find = extractor("regex", pattern=r"category:\s*(\w+)")
    assert find("Category: Sports. Confidence high") == "sports"
    assert find("no category") is None
    assert extractor("regex", pattern=r"\d{4}")("In 1969, men walked") == "1969"


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("label", {}, "labels"),
        ("regex", {}, "pattern"),
        ("regex", {"pattern": "("}, "not a valid regular expression"),
        ("number", {"labels": ["a"]}, "labels only apply"),
        ("choice", {"pattern": "x"}, "pattern only applies"),
        ("letters", {}, "extract must be one of"),
        (None, {"labels": ["a"]}, "labels and pattern"),
    ],
)
def test_extractor_rejects_bad_settings(kind: str | None, kwargs: dict[str, object],
                                        message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extractor(kind, **kwargs)  # type: ignore[arg-type]


def _answers(*keys: str, weights: tuple[float, ...] = (), costs: tuple[float, ...] = ()
             ) -> list[Answer]:
    return [
        Answer(i, f"m{i}", k, k.title(), weights[i] if weights else 1.0,
               costs[i] if costs else 0.0)
        for i, k in enumerate(keys)
    ]


def test_group_exact_keeps_first_seen_order_and_first_member_as_representative() -> None:
    groups = group_exact(_answers("b", "a", "b", "c", "a", "b"))
    assert [(g.key, g.count, g.representative.index) for g in groups] == [
        ("b", 3, 0), ("a", 2, 1), ("c", 1, 3)
    ]
    assert groups[0].models == ["m0", "m2", "m5"]


def test_pick_majority() -> None:
    winner, tied = pick(group_exact(_answers("a", "b", "b")))
    assert winner.key == "b"
    assert tied == []


def test_pick_tie_by_order_goes_to_the_earliest_answer() -> None:
    winner, tied = pick(group_exact(_answers("x", "y", "y", "x")), "order")
    assert winner.key == "x"
    assert sorted(tied) == ["x", "y"]


def test_pick_tie_by_weight() -> None:
    groups = group_exact(_answers("x", "y", "x", "y", weights=(1.0, 2.0, 0.5, 0.1)))
    assert pick(groups, "weight")[0].key == "y"  # 2.1 against 1.5
    groups = group_exact(_answers("x", "y", weights=(1.0, 1.0)))
    assert pick(groups, "weight")[0].key == "x"  # equal weights: order decides


def test_pick_tie_by_cost() -> None:
    groups = group_exact(_answers("x", "y", costs=(0.003, 0.001)))
    assert pick(groups, "cheapest")[0].key == "y"
    assert pick(groups, "order")[0].key == "x"


def test_pick_majority_beats_weight() -> None:
    groups = group_exact(_answers("x", "x", "y", weights=(0.1, 0.1, 5.0)))
    assert pick(groups, "weight")[0].key == "x"


def test_pick_with_a_custom_score_and_bad_rule() -> None:
    groups = group_exact(_answers("x", "y", "y"))
    assert pick(groups, score=lambda g: 10.0 if g.key == "x" else 1.0)[0].key == "x"
    with pytest.raises(ValueError, match="tie_break"):
        pick(groups, "random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no answers"):
        pick([])


def test_medoid_is_the_most_central_and_counts_weigh_in() -> None:
    sim = np.array([[1.0, 0.9, 0.5], [0.9, 1.0, 0.9], [0.5, 0.9, 1.0]], dtype=np.float32)
    assert medoid([0, 1, 2], sim) == 1
    assert medoid([0, 2], sim) == 0  # a tie goes to the earliest
    assert medoid([0, 2], sim, counts=[1, 1, 3]) == 2


def test_merge_by_meaning_clusters_above_threshold_only() -> None:
    groups = group_exact(_answers("paris", "it is paris", "london", "paris"))
    sim = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]], dtype=np.float32)
    merged = merge_by_meaning(groups, sim, threshold=0.8)
    assert [(g.count, sorted(g.models)) for g in merged] == [
        (3, ["m0", "m1", "m3"]), (1, ["m2"])
    ]
    # The exact group of two outweighs the single paraphrase: it is the medoid.
    assert merged[0].representative.key == "paris"
    strict = merge_by_meaning(groups, sim, threshold=0.95)
    assert len(strict) == 3


def test_merge_by_meaning_uses_average_linkage() -> None:
    groups = group_exact(_answers("a", "b", "c"))
    # c is close to b but far from a: on average it does not belong with {a, b}.
    sim = np.array([[1.0, 0.85, 0.3], [0.85, 1.0, 0.9], [0.3, 0.9, 1.0]], dtype=np.float32)
    assert [g.models for g in merge_by_meaning(groups, sim, 0.8)] == [["m0", "m1"], ["m2"]]


async def test_group_answers_embeds_each_distinct_answer_once() -> None:
    emb = TableEmbedder({"Paris": [1, 0], "The Capital Is Paris": [0.95, 0.31],
                         "London": [0, 1]})
    answers = _answers("paris", "the capital is paris", "paris", "london")
    groups = await group_answers(answers, emb, threshold=0.8)
    assert [(g.key, g.count) for g in groups] == [("paris", 3), ("london", 1)]
    assert emb.batches == [["Paris", "The Capital Is Paris", "London"]]
    assert [g.key for g in await group_answers(answers)] == [
        "paris", "the capital is paris", "london"
    ]


def test_tally_reports_counts_weights_shares_and_models() -> None:
    groups = group_exact(_answers("x", "y", "x", weights=(1.0, 2.0, 0.5)))
    assert tally(groups, total=4) == {
        "x": {"count": 2, "weight": 1.5, "models": ["m0", "m2"], "share": 0.5},
        "y": {"count": 1, "weight": 2.0, "models": ["m1"], "share": 0.25},
    }


def test_collect_keeps_errors_and_unlabelled_answers_apart() -> None:
    m = ScriptedModel("m")
    ok = Completion("Yes, surely", "leaf-a", cost_usd=0.5)
    vague = Completion("It depends", "leaf-b")
    outcomes = [
        Outcome(m, ok, None, Span("model", "a")),
        Outcome(m, None, ServerError("down", model="b"), Span("model", "b", error="down")),
        Outcome(m, vague, None, Span("model", "c")),
    ]
    answers, errors = collect(outcomes, ["a", "b", "c"], extractor("yes_no"), {"a": 2.0})
    assert answers == [Answer(0, "a", "yes", "Yes, surely", 2.0, 0.5)]
    assert isinstance(errors["b"], ServerError)
    assert isinstance(errors["c"], MalformedResponse)
    assert "It depends" in str(errors["c"])


def test_display_labels_cut_long_keys_and_stay_unique() -> None:
    long_a, long_b = "x" * 100 + "a", "x" * 100 + "b"
    groups = group_exact(_answers("short", long_a, long_b))
    shown = display_labels(groups, width=10)
    assert shown["short"] == "short"
    assert shown[long_a] == "xxxxxxxxx…"
    assert shown[long_b] == "xxxxxxxxx… #3"
    assert list(tally(groups)) == ["short", "x" * 79 + "…", "x" * 79 + "… #3"]
