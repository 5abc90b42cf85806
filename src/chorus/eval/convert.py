"""Outcome tables from public recorded outputs: MMLU-Pro (29 models) and RouteLLM's
GSM8K and MMLU sets (Mixtral-8x7B-Instruct vs GPT-4-1106-preview).

Cost is estimated, not measured: tokens are characters / 4, priced at the public list
prices below (US dollars per million tokens).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from chorus.core.errors import ChorusError
from chorus.eval.outcomes import Outcome, OutcomeItem

__all__ = [
    "CHARS_PER_TOKEN",
    "MMLU_PRO_OUTPUT_PRICES",
    "PRICES_NOTE",
    "ROUTELLM_PRICES",
    "mmlu_pro_outcomes",
    "routellm_outcomes",
]

CHARS_PER_TOKEN = 4.0

PRICES_NOTE = (
    "List prices per million output tokens as recorded in chorus/eval/convert.py, said to be "
    "those of October 2024 and not re-checked against the providers' pages: open-weight models "
    "at Together AI's serverless size tiers (<=4B $0.10, <=8B $0.20, <=21B $0.30, <=41B $0.80, "
    "<=80B $0.90, <=110B $1.80, Mixtral-8x7B $0.60; Llama-3.1 Turbo 8B $0.18, 70B $0.88), "
    "DeepSeek API $0.28, Cohere Command R $1.50, Gemini 1.5 Flash $0.30 and Pro $5.00 "
    "(<=128k prompts), AI21 Jamba 1.5 Large $8.00. Cost = output characters / 4 x price."
)

#: Dollars per million output tokens (see PRICES_NOTE: recorded as 2024-10 list prices,
#: not re-checked).
MMLU_PRO_OUTPUT_PRICES: dict[str, float] = {
    "DeepSeek-Coder-V2": 0.28,
    "Llama-2-13b-hf": 0.30,
    "Llama-2-70b-hf": 0.90,
    "Llama-2-7b-hf": 0.20,
    "Meta-Llama-3-70B": 0.90,
    "Meta-Llama-3-8B": 0.20,
    "Meta-Llama-3_1-70B-Instruct": 0.88,
    "Meta-Llama-3_1-70B": 0.88,
    "Meta-Llama-3_1-8B-Instruct": 0.18,
    "Meta-Llama-3_1-8B": 0.18,
    "Mistral-7B-Instruct-v0.1": 0.20,
    "Mistral-7B-Instruct-v0.2": 0.20,
    "Mistral-7B-v0.1": 0.20,
    "Mistral-7B-v0.2-hf": 0.20,
    "Mixtral-8x7B-Instruct-v0.1": 0.60,
    "Mixtral-8x7B-v0.1": 0.60,
    "Phi-3-mini-4k-instruct": 0.10,
    "Qwen1.5-110B": 1.80,
    "Qwen1.5-72B-Chat": 0.90,
    "Qwen1.5-7B-Chat": 0.20,
    "Yi-34B": 0.80,
    "Yi-6B": 0.20,
    "Yi-6b-Chat": 0.20,
    "c4ai-command-r-v01": 1.50,
    "gemini-1.5-flash-002": 0.30,
    "gemini-1.5-pro-002": 5.00,
    "gemma-7b": 0.20,
    "jamba-1.5-large": 8.00,
    "mathstral-7B": 0.20,
}

#: (input, output) dollars per million tokens: Mixtral-8x7B-Instruct at Together AI
#: ($0.60 both), gpt-4-1106-preview at OpenAI ($10 / $30), recorded as 2024-10 list prices,
#: not re-checked.
ROUTELLM_PRICES: dict[str, tuple[float, float]] = {
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (0.60, 0.60),
    "gpt-4-1106-preview": (10.0, 30.0),
}


def _tokens(chars: int) -> int:
    return max(1, round(chars / CHARS_PER_TOKEN))


def _options(options: list[str]) -> str:
    return "\n".join(f"{chr(ord('A') + i)}. {opt}" for i, opt in enumerate(options))


def mmlu_pro_outcomes(folder: str | Path, *, models: Iterable[str] | None = None
                      ) -> list[OutcomeItem]:
    """MMLU-Pro: each model's predicted letter vs the gold letter (no prediction scores
    0); the response is "The answer is (X)"; cost from its output length."""
    root = Path(folder)
    try:
        questions = {}
        with (root / "questions.jsonl").open(encoding="utf-8") as f:
            for line in f:
                q = json.loads(line)
                questions[str(q["question_id"])] = q
        with (root / "output_chars_wide.csv").open(newline="", encoding="utf-8") as f:
            chars = {r["question_id"]: r for r in csv.DictReader(f)}
        f = (root / "predictions_wide.csv").open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ChorusError(f"cannot read MMLU-Pro data in {str(root)!r}: {exc}") from None
    with f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames or [] if c not in
                   ("question_id", "category", "answer")]
        wanted = list(models) if models is not None else columns
        unknown = [m for m in wanted if m not in columns]
        if unknown:
            raise ChorusError(f"MMLU-Pro has no model(s) {', '.join(unknown)}; it has "
                              f"{', '.join(columns)}")
        rows = []
        for r in reader:
            qid = r["question_id"]
            q = questions[qid]
            outcomes = {}
            for m in wanted:
                letter = r[m].strip()
                raw = (chars.get(qid) or {}).get(m, "")
                n = _tokens(int(float(raw))) if raw not in ("", None) else None
                price = MMLU_PRO_OUTPUT_PRICES.get(m)
                cost = None if n is None or price is None else n * price / 1e6
                outcomes[m] = Outcome(
                    score=float(letter == r["answer"]), cost_usd=cost,
                    response=f"The answer is ({letter})" if letter else None,
                    output_tokens=n)
            rows.append(OutcomeItem(
                id=f"mmlu_pro-{qid}", prompt=f"{q['question']}\n\n{_options(q['options'])}",
                category=r["category"] or q.get("category"), reference=r["answer"],
                outcomes=outcomes))
    return rows


def _norm(text: str) -> str:
    return " ".join(text.split())


def _contaminated(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with path.open(encoding="utf-8") as f:
        return {_norm(json.loads(line)["eval_prompt"]) for line in f if line.strip()}


def _routellm_outcome(model: str, prompt: str, correct: str, response: str | None
                      ) -> Outcome:
    pin, pout = ROUTELLM_PRICES.get(model, (0.0, 0.0))
    # MMLU asks for one letter; GSM8K has the full recorded response.
    out_tokens = _tokens(len(response)) if response is not None else 1
    cost = (_tokens(len(prompt)) * pin + out_tokens * pout) / 1e6
    if correct not in ("True", "False"):
        raise ChorusError(f"RouteLLM correctness must be True/False, got {correct!r}")
    return Outcome(float(correct == "True"), cost, response, out_tokens)


def routellm_outcomes(folder: str | Path, task: str) -> list[OutcomeItem]:
    """RouteLLM's ``gsm8k`` or ``mmlu`` set, contaminated prompts excluded. Cost: prompt
    tokens x input price + output tokens (the response's, or 1 letter) x output price."""
    root = Path(folder) / task
    if task not in ("gsm8k", "mmlu"):
        raise ChorusError(f"RouteLLM task must be gsm8k or mmlu, got {task!r}")
    skip = _contaminated(root / "contaminated_prompts.jsonl")
    files = ([root / "gsm8k_responses.csv"] if task == "gsm8k"
             else sorted((root / "responses").glob("mmlu_*.csv")))
    if not files or not files[0].is_file():
        raise ChorusError(f"no RouteLLM {task} responses under {str(root)!r}")
    references: dict[str, str] = {}
    gsm = Path(folder).parent / "gsm8k" / "test.jsonl"
    if task == "gsm8k" and gsm.is_file():
        with gsm.open(encoding="utf-8") as f:
            for line in f:
                q = json.loads(line)
                references[_norm(q["question"])] = q["answer"].rsplit("####", 1)[-1].strip()
    rows = []
    for path in files:
        subject = path.stem.removeprefix("mmlu_") if task == "mmlu" else None
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            models = [c for c in reader.fieldnames or []
                      if c != "prompt" and not c.endswith("_response")]
            for i, r in enumerate(reader):
                prompt = r["prompt"]
                if _norm(prompt) in skip:
                    continue
                outcomes = {m: _routellm_outcome(m, prompt, r[m], r.get(f"{m}_response"))
                            for m in models}
                ident = f"{task}-{subject}-{i}" if subject else f"{task}-{i}"
                rows.append(OutcomeItem(ident, prompt, subject,
                                        references.get(_norm(prompt)), outcomes))
    return rows
