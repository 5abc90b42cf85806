"""Tiny fixtures derived from ../shared/data at test time (never copied into the repo)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("CHORUS_DATA", Path(__file__).resolve().parents[3] / "shared"
                           / "data"))


def need_data() -> Path:
    if not (DATA / "mmlu_pro" / "questions.jsonl").is_file():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


def small_mmlu_pro(dst: Path, n: int) -> Path:
    """The first ``n`` questions of MMLU-Pro with their predictions and output lengths."""
    src = need_data() / "mmlu_pro"
    dst.mkdir(parents=True, exist_ok=True)
    with (src / "predictions_wide.csv").open(newline="") as f:
        rows = list(csv.reader(f))[: n + 1]
    ids = {r[0] for r in rows[1:]}
    with (dst / "predictions_wide.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with (src / "output_chars_wide.csv").open(newline="") as f:
        chars = [r for i, r in enumerate(csv.reader(f)) if i == 0 or r[0] in ids]
    with (dst / "output_chars_wide.csv").open("w", newline="") as f:
        csv.writer(f).writerows(chars)
    with (src / "questions.jsonl").open() as f, (dst / "questions.jsonl").open("w") as out:
        for line in f:
            if str(json.loads(line)["question_id"]) in ids:
                out.write(line)
    return dst


def small_routellm_gsm8k(dst: Path, n: int) -> Path:
    """The first ``n`` RouteLLM GSM8K rows and the contamination list."""
    src = need_data() / "routellm" / "gsm8k"
    out = dst / "routellm" / "gsm8k"
    out.mkdir(parents=True, exist_ok=True)
    with (src / "gsm8k_responses.csv").open(newline="") as f:
        rows = list(csv.reader(f))[: n + 1]
    with (out / "gsm8k_responses.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    (out / "contaminated_prompts.jsonl").write_text(
        (src / "contaminated_prompts.jsonl").read_text())
    gsm = dst / "gsm8k"
    gsm.mkdir(exist_ok=True)
    with (need_data() / "gsm8k" / "test.jsonl").open() as f:
        (gsm / "test.jsonl").write_text("".join(f.readline() for _ in range(n)))
    return dst / "routellm"
