from chorus.cli.render import trace_tree
from chorus.core.types import Span, Usage


def _span() -> Span:
    reason = ("1 of 3 samples agreed, below the threshold of 0.67, so the question went "
              "to the next stage, which mentions the café – “quoted” and naïve")
    leaf = Span(kind="model", name="smollm2", usage=Usage(25, 7),
                attributes={"mode": "chat", "note": reason})
    return Span(kind="cascade", name="cascade", model="smollm2", usage=Usage(25, 7),
                attributes={"reason": reason, "stages": [{"model": "smollm2", "ok": False,
                                                          "why": reason}]},
                children=[leaf])


def test_decision_fields_are_whole_wrapped_and_unescaped() -> None:
    text = trace_tree(_span(), width=60)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert "\\u" not in text and "…" not in text
    # Joined back without the tree guides, every field reads whole.
    flat = " ".join(line.lstrip("│├└─ ") for line in lines)
    assert "mentions the café – “quoted” and naïve" in " ".join(flat.split())
    assert flat.count("below the threshold of 0.67") == 3
    assert lines[0].startswith("cascade [cascade] → smollm2  tokens 25/7")
    assert any(line.startswith("└── smollm2  tokens 25/7") for line in lines)
