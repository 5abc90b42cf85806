"""CLINC150 as the CLINC150 benchmarks split it, in one place so that their figures
stay comparable: train grouped by intent (intents sorted), a fixed-seed sample (seed 0)
of the in-scope test utterances plus every out-of-scope one, val with its out-of-scope
ones, and k examples per intent drawn with one seed-0 generator in intent order."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class Clinc150:
    data: dict[str, Any]  # data_full.json as read
    by_intent: dict[str, list[str]]
    intents: list[str]
    test: Pairs
    val: Pairs

    def examples(self, k: int) -> dict[str, list[str]]:
        """``k`` training utterances per intent (0: all of them)."""
        rng = random.Random(0)
        return {i: (rng.sample(self.by_intent[i], k) if k else list(self.by_intent[i]))
                for i in self.intents}


def load(data_dir: str | Path, test: int = 1500) -> Clinc150:
    data = json.loads((Path(data_dir) / "clinc150" / "data_full.json").read_text("utf-8"))
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        by_intent.setdefault(intent, []).append(text)
    sample = random.Random(0).sample(data["test"], test) + data["oos_test"]
    return Clinc150(data, by_intent, sorted(by_intent), [tuple(p) for p in sample],
                    [tuple(p) for p in data["val"] + data["oos_val"]])
