"""The files an intent router is fitted from: JSONL lines, a label -> texts mapping, or
a CSV (.tsv) table of text and label, the shape most intent data comes in."""

from __future__ import annotations

from pathlib import Path

import pytest

from chorus.eval.intents import read_intents

PAIRS = [("hello there", "greet"), ("good morning", "greet"), ("bye, then", "leave")]


def test_every_format_reads_the_same_pairs(tmp_path: Path) -> None:
    files = {
        "i.jsonl": "".join(f'{{"text": "{t}", "label": "{lab}"}}\n' for t, lab in PAIRS),
        "i.yaml": "greet: [hello there, good morning]\nleave: ['bye, then']\n",
        "i.csv": 'text,label\nhello there,greet\ngood morning,greet\n"bye, then",leave\n',
        "s.csv": "utterance;intent\nhello there;greet\ngood morning;greet\nbye, then;leave\n",
        "i.tsv": "query\troute\nhello there\tgreet\ngood morning\tgreet\nbye, then\tleave\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert sorted(read_intents(tmp_path / name)) == sorted(PAIRS), name


def test_a_csv_without_the_columns_or_with_a_blank_says_so(tmp_path: Path) -> None:
    p = tmp_path / "i.csv"
    p.write_text("sentence,category\nhello,greet\n")
    with pytest.raises(ValueError, match=r"i.csv: needs a header with columns text and label "
                                         r".*it has 'sentence', 'category'"):
        read_intents(p)
    p.write_text("text,label\nhello,greet\n,leave\n")
    with pytest.raises(ValueError, match=r"i.csv:3: needs a text and a label"):
        read_intents(p)
