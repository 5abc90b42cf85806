"""A seeded PII test set from public formats and random generation.

Each sample is a template sentence with zero or one embedded value and the gold span.
Positives are valid by construction (cards with a Luhn digit, IBANs with mod-97 check
digits, SSNs outside the never-issued ranges ...); near-misses look alike but are not
(a wrong Luhn or IBAN check digit, SSN area 666, a NINO with a GB prefix, an octet over
255, a key prefix with too few characters, order numbers, dates, versions).

    .venv/bin/python benchmarks/pii_testset.py --per-type 200 --seed 0 | head
"""

from __future__ import annotations

import argparse
import json
import random
import string
from dataclasses import asdict, dataclass

__all__ = ["Sample", "generate"]

ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Sample:
    text: str
    label: str | None  # the entity type, None for a near-miss or plain sentence
    start: int = 0
    end: int = 0
    kind: str = "positive"  # positive | near_miss


TEMPLATES = [
    "Please get back to me at {v} when you can.",
    "My details: {v}. Thanks!",
    "Hi team, the value is {v} — can you check it?",
    "Can you update my account with {v} before Friday",
    "{v} is what I wrote on the form.",
    "For reference ({v}), see the attached file.",
]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def card(rng: random.Random, valid: bool = True) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15),
                                 ("37", 15), ("6011", 16), ("4", 13)])
    body = prefix + _digits(rng, length - len(prefix) - 1)
    check = _luhn_digit(body)
    if not valid:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    num = body + check
    if length == 16 and rng.random() < 0.5:
        return " ".join(num[i:i + 4] for i in range(0, 16, 4))
    return num


IBAN_BBAN = {"DE": ("n", 18), "FR": ("n", 23), "NL": ("a4n", 14), "GB": ("a4n", 18),
             "ES": ("n", 20), "IT": ("a1n", 23), "BE": ("n", 12), "CH": ("n", 17)}


def iban(rng: random.Random, valid: bool = True) -> str:
    country, (shape, n) = rng.choice(sorted(IBAN_BBAN.items()))
    letters = int(shape[1]) if shape.startswith("a") else 0
    bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(letters)) + \
        _digits(rng, n - letters)
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    if not valid:
        check = (check + rng.randint(1, 90)) % 97 + 2 if check != 2 else 3
    s = f"{country}{check:02d}{bban}"
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4)) if rng.random() < 0.5 else s


def email(rng: random.Random) -> str:
    user = rng.choice(["john", "a.smith", "mary_k", "dev+test", "x99", "li.wei"]) + \
        _digits(rng, rng.randint(0, 3))
    return f"{user}@{rng.choice(['example.com', 'mail.co.uk', 'corp.example.org', 'uni.edu'])}"


def phone(rng: random.Random) -> str:
    d = lambda n: _digits(rng, n)  # noqa: E731
    return rng.choice([
        f"+1 {rng.randint(201, 989)} {d(3)} {d(4)}", f"+1{rng.randint(201, 989)}{d(7)}",
        f"+44 20 {d(4)} {d(4)}", f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
        f"({rng.randint(201, 989)}) {d(3)}-{d(4)}", f"{rng.randint(201, 989)}-{d(3)}-{d(4)}",
        f"07{d(3)} {d(6)}", f"01 {d(2)} {d(2)} {d(2)} {d(2)}", f"+49 30 {d(8)}",
    ])


def ssn(rng: random.Random, valid: bool = True) -> str:
    if valid:
        area = rng.choice([a for a in range(1, 900) if a != 666])
        return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    area = rng.choice(["000", "666", str(rng.randint(900, 999))])
    return f"{area}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def nino(rng: random.Random, valid: bool = True) -> str:
    first, second = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"
    prefix = rng.choice(["GB", "NK", "TN", "ZZ", "QQ", "DA"]) if not valid else \
        rng.choice(first) + rng.choice(second)
    while valid and prefix in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}:
        prefix = rng.choice(first) + rng.choice(second)
    body = f"{_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}"
    s = f"{prefix} {body} {rng.choice('ABCD')}"
    return s if rng.random() < 0.5 else s.replace(" ", "")


def ip(rng: random.Random, valid: bool = True) -> str:
    if not valid:
        return f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}." \
               f"{rng.randint(0, 255)}"
    if rng.random() < 0.6:
        return ".".join(str(rng.randint(0, 255)) for _ in range(4))
    groups = [f"{rng.randint(0, 0xffff):x}" for _ in range(8)]
    return "2001:db8::" + ":".join(groups[:3]) if rng.random() < 0.5 else ":".join(groups)


def api_key(rng: random.Random, valid: bool = True) -> str:
    r = lambda n: "".join(rng.choice(ALNUM) for _ in range(n))  # noqa: E731
    if not valid:
        return rng.choice([f"sk-{r(6)}", f"ghp_{r(10)}", f"AKIA{r(5).upper()}", "sk-learn"])
    return rng.choice([f"sk-proj-{r(40)}", f"sk-ant-api03-{r(40)}", f"ghp_{r(36)}",
                       "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits)
                                        for _ in range(16)),
                       f"xoxb-{_digits(rng, 12)}-{r(24)}", f"AIza{r(35)}"])


def secret(rng: random.Random) -> str:
    while True:
        s = "".join(rng.choice(ALNUM) for _ in range(rng.choice([32, 40, 48])))
        if any(c.isdigit() for c in s) and any(c.isupper() for c in s) and \
                any(c.islower() for c in s):
            return s


def _near_miss(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.2:
        return f"order {_digits(rng, 4)} {_digits(rng, 4)} {_digits(rng, 4)}"
    if r < 0.4:
        return f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/20{rng.randint(10, 29)} at " \
               f"{rng.randint(0, 23)}:{rng.randint(10, 59)}"
    if r < 0.6:
        return f"version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    if r < 0.8:
        return f"${rng.randint(1, 999)},{_digits(rng, 3)}.{_digits(rng, 2)}"
    return f"ticket #{_digits(rng, 6)}"


POSITIVE = {"email": email, "phone": phone, "card": card, "iban": iban, "ssn": ssn,
            "nino": nino, "ip": ip, "api_key": api_key, "secret": secret}
NEAR_MISS = {"card": lambda g: card(g, False), "iban": lambda g: iban(g, False),
             "ssn": lambda g: ssn(g, False), "nino": lambda g: nino(g, False),
             "ip": lambda g: ip(g, False), "api_key": lambda g: api_key(g, False),
             "other": _near_miss}


def _embed(rng: random.Random, value: str) -> tuple[str, int, int]:
    tpl = rng.choice(TEMPLATES)
    start = tpl.index("{v}")
    return tpl.replace("{v}", value), start, start + len(value)


def generate(per_type: int = 200, seed: int = 0) -> list[Sample]:
    """``per_type`` positives for each entity type and as many near-misses per family."""
    rng = random.Random(seed)
    out: list[Sample] = []
    for label, make in POSITIVE.items():
        for _ in range(per_type):
            text, s, e = _embed(rng, make(rng))
            out.append(Sample(text, label, s, e))
    for family, make in NEAR_MISS.items():
        for _ in range(per_type):
            text, _, _ = _embed(rng, make(rng))
            out.append(Sample(text, None, kind=f"near_miss:{family}"))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-type", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for sample in generate(args.per_type, args.seed):
        print(json.dumps(asdict(sample)))
