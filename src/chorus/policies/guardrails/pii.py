"""PII and secrets: detection by format plus checksum, and reversible redaction.

Entities: ``email``, ``phone`` (E.164 and common US/UK/FR/DE national formats),
``card`` (13-19 digits, a known issuer prefix and a valid Luhn digit), ``iban`` (the
country's length and the mod-97 check), ``ssn`` (US, with the never-issued ranges
excluded), ``nino`` (UK National Insurance number), ``ip`` (IPv4, IPv6), ``api_key``
(known prefixes: sk-, sk-ant-, ghp_, AKIA, xoxb-, AIza ...) and ``secret`` (a long random
token: high character entropy, mixed letters and digits).

Redaction replaces each value with a placeholder such as ``<EMAIL_1>`` (the same value
gets the same placeholder); with ``restore`` the wrapper puts the originals back into
the answer. Placeholders and counts go in the trace, the values never do.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Final

from chorus.policies.guardrails._checks import Action, Hit, TextCheck

__all__ = [
    "ENTITIES",
    "PIICheck",
    "entropy",
    "find_pii",
    "iban_valid",
    "luhn_valid",
    "nino_valid",
    "restore",
    "ssn_valid",
]

ENTITIES: Final = ("api_key", "email", "iban", "card", "ssn", "nino", "phone", "ip", "secret")

# -- validators (no I/O) ----------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[068]|6011|65|64[4-9]|35|62")


def card_valid(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn_valid(digits)


#: IBAN lengths by country (a subset covering the SEPA area and common others).
IBAN_LENGTHS: Final = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21,
    "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "AE": 23, "BR": 29, "IL": 23, "SA": 24, "TR": 26,
}


def iban_valid(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s.isalnum():
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """Never issued: area 000, 666, 900-999; group 00; serial 0000."""
    a = int(area)
    return a != 0 and a != 666 and a < 900 and group != "00" and serial != "0000"


_NINO_BAD_PREFIX: Final = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def nino_valid(prefix: str) -> bool:
    return prefix.upper() not in _NINO_BAD_PREFIX


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _secret_like(token: str) -> bool:
    classes = sum((any(c.islower() for c in token), any(c.isupper() for c in token),
                   any(c.isdigit() for c in token)))
    digits = sum(c.isdigit() for c in token)
    return classes == 3 and digits >= 2 and entropy(token) >= 4.0


# -- detection ---------------------------------------------------------------------------

# "Not glued to a word, an address or a number on the left" is checked in find_pii on the
# character before a match (``_glued``): a leading lookbehind in the pattern would stop
# the regex engine from skipping quickly to the possible first characters (~4x slower).
_B = ""
_E = r"(?![\w@]|\.\w)"  # ... nor on the right (a sentence's final period is fine)

_PATTERNS: Final[dict[str, re.Pattern[str]]] = {
    "api_key": re.compile(
        r"(?<![\w-])(?:sk-ant-[A-Za-z0-9_-]{20,}|sk-(?:proj-)?[A-Za-z0-9_-]{20,}"
        r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|AKIA[0-9A-Z]{16}"
        r"|xox[bpoars]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}"
        r"|[sr]k_(?:live|test)_[A-Za-z0-9]{20,}"
        r"|-----BEGIN [A-Z ]*PRIVATE KEY-----)(?![\w-])"
    ),
    "email": re.compile(_B + r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
                        + r"(?![\w@-])"),
    "iban": re.compile(_B + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?" + _E),
    "card": re.compile(_B + r"\d(?:[ -]?\d){12,18}" + _E),
    "ssn": re.compile(_B + r"(\d{3})([- ])(\d{2})\2(\d{4})" + _E),
    "nino": re.compile(
        _B + r"([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?\d{2} ?\d{2} ?\d{2} ?[A-D]" + _E
    ),
    "phone": re.compile(
        _B + r"(?:\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}[ .-]?\d{2,4}"  # E.164-ish
        r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}([.-])\d{3}\1\d{4}"  # US
        r"|0\d{2,4} \d{3,4} ?\d{3,4}|07\d{3} ?\d{6}"  # UK, DE
        r"|0[1-9](?:[ .]\d{2}){4})" + _E  # FR
    ),
    "ip": re.compile(
        r"(?<![\w.:])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
        r"(?![\w:]|\.\d)"
    ),
    "ipv6": re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"),
    "secret": re.compile(r"(?<![\w+/-])[A-Za-z0-9+/_-]{24,}={0,2}(?![\w+/=-])"),
}


_KEY_PREFIXES: Final = ("sk-", "gh", "github_pat_", "AKIA", "xox", "AIza", "glpat-", "k_live_",
                        "k_test_", "-----BEGIN")
_DIGIT: Final = re.compile(r"\d")
_LONG_TOKEN: Final = 24


def _worth_scanning(label: str, text: str, has_digit: bool) -> bool:
    """A quick test that rules a pattern out without running it (most text has no
    '@', no key prefix, no long token): the scan of 2,000 characters stays well under 1 ms."""
    if label == "email":
        return "@" in text
    if label == "api_key":
        return any(p in text for p in _KEY_PREFIXES)
    if label == "ipv6":
        return text.count(":") >= 2
    if label == "secret":
        return any(len(tok) >= _LONG_TOKEN for tok in text.split())
    return has_digit


def _valid(label: str, m: re.Match[str]) -> bool:
    text = m.group(0)
    if label == "card":
        return card_valid(re.sub(r"[ -]", "", text))
    if label == "iban":
        return iban_valid(text)
    if label == "ssn":
        return ssn_valid(m.group(1), m.group(3), m.group(4))
    if label == "nino":
        return nino_valid(m.group(1))
    if label == "phone":
        digits = sum(c.isdigit() for c in text)
        return 8 <= digits <= 15
    if label == "ipv6":
        try:
            return text.count(":") >= 2 and any(c not in ":" for c in text) and \
                isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
        except ValueError:
            return False
    if label == "secret":
        return _secret_like(text)
    return True


_SHAPED: Final = frozenset({"iban", "card"})
_LEFT_CHECKED: Final = frozenset({"email", "iban", "card", "ssn", "nino", "phone"})


def _glued(ch: str) -> bool:
    return ch.isalnum() or ch in "_@.+-"

_ORDER: Final = (*ENTITIES[:-1], "ipv6", "secret")  # IPv4 and IPv6 both report "ip"


def find_pii(text: str, entities: Iterable[str] = ENTITIES) -> list[Hit]:
    """Every entity in ``text``, earliest first; where two overlap, the one listed first
    in ``ENTITIES`` wins (a key before a secret, a card before a phone number)."""
    taken: list[Hit] = []
    # An IBAN- or card-shaped number whose checksum fails is still one number: nothing
    # inside it is a phone number.
    shaped: list[tuple[int, int]] = []
    wanted = set(entities)
    has_digit = _DIGIT.search(text) is not None
    for label in _ORDER:
        name = "ip" if label == "ipv6" else label
        if name not in wanted and label not in _SHAPED:
            continue
        if not _worth_scanning(label, text, has_digit):
            continue
        for m in _PATTERNS[label].finditer(text):
            s, e = m.span()
            if label in _LEFT_CHECKED and s > 0 and _glued(text[s - 1]):
                continue
            if any(s < h.end and h.start < e for h in taken) or \
                    any(s < b and a < e for a, b in shaped):
                continue
            if name in wanted and _valid(label, m):
                taken.append(Hit(name, s, e))
            elif label in _SHAPED:
                shaped.append((s, e))
    taken.sort(key=lambda h: h.start)
    return taken


def restore(text: str, mapping: dict[str, str]) -> str:
    """Put the originals back in place of their placeholders."""
    if not mapping:
        return text
    pattern = re.compile("|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)))
    return pattern.sub(lambda m: mapping[m.group(0)], text)


class PIICheck(TextCheck):
    """PII and secrets; ``fix`` redacts with placeholders (restored in the answer when
    ``restore`` is set and the check guards the input)."""

    actions: ClassVar[tuple[Action, ...]] = ("block", "fix", "flag")

    def __init__(self, name: str = "pii", *, entities: Sequence[str] = ENTITIES,
                 restore: bool = False, **kw: Any) -> None:
        super().__init__(name, **kw)
        unknown = sorted(set(entities) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown PII entities {unknown}; known: {', '.join(ENTITIES)}")
        self.entities = tuple(entities)
        self.restore = restore

    def scan(self, text: str) -> list[Hit]:
        return find_pii(text, self.entities)

    def replace(self, text: str, hits: Sequence[Hit], state: dict[str, Any]) -> str:
        by_value: dict[str, str] = state.setdefault("by_value", {})
        numbers: dict[str, int] = state.setdefault("numbers", {})
        out, pos = [], 0
        for h in hits:
            value = text[h.start:h.end]
            key = f"{h.label}\0{value}"
            if key not in by_value:
                numbers[h.label] = numbers.get(h.label, 0) + 1
                by_value[key] = f"<{h.label.upper()}_{numbers[h.label]}>"
            out += [text[pos:h.start], by_value[key]]
            pos = h.end
        out.append(text[pos:])
        if self.restore:
            state["restore"] = {ph: k.split("\0", 1)[1] for k, ph in by_value.items()}
        return "".join(out)

    def reason(self, hits: Sequence[Hit]) -> str:
        counts = Counter(h.label for h in hits)
        return "found " + ", ".join(f"{n} {label}" for label, n in sorted(counts.items()))

    def details(self, hits: Sequence[Hit], state: dict[str, Any]) -> dict[str, Any]:
        out = super().details(hits, state)
        out["spans"] = [[h.label, h.message, h.start, h.end] for h in hits[:20]]
        if "by_value" in state:
            out["placeholders"] = sorted(state["by_value"].values())
        return out
