import io

from chorus.batch import Bar


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    with Bar(10, already=4, stream=out, every_s=0.0) as bar:
        bar.record({"id": "a", "text": "x", "cost_usd": 0.25})
        bar.record({"id": "b", "error": {"kind": "timeout"}, "cost_usd": 0.5})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("batch: 5/10 (0 failed)") and "$0.2500 spent" in lines[0]
    assert lines[1].startswith("batch: 6/10 (1 failed)") and "$0.7500 spent" in lines[1]
    assert "items/s" in lines[1]
    assert bar.done == 1 and bar.failed == 1
