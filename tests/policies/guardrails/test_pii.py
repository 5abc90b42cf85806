"""PII detection: each entity's positives and near-miss negatives, and redaction."""

from __future__ import annotations

import pytest

from chorus.core.errors import GuardrailViolation
from chorus.core.model import error_span
from chorus.core.types import Request
from chorus.policies.guardrails import Guardrails, PIICheck, find_pii
from chorus.policies.guardrails.pii import iban_valid, luhn_valid, restore, ssn_valid
from chorus.providers.scripted import ScriptedModel


def labels(text: str) -> list[tuple[str, str]]:
    return [(h.label, text[h.start:h.end]) for h in find_pii(text)]


OPENAI = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t"
GH = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
AIZA = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"

POSITIVES = [
    ("email", "write to jane.doe+news@mail.example.org today", "jane.doe+news@mail.example.org"),
    ("phone", "call +44 20 7946 0958 now", "+44 20 7946 0958"),
    ("phone", "call +14155552671.", "+14155552671"),
    ("phone", "office (415) 555-2671", "(415) 555-2671"),
    ("phone", "mobile 07700 900123", "07700 900123"),
    ("phone", "Paris 01 42 68 53 00", "01 42 68 53 00"),
    ("card", "visa 4111 1111 1111 1111 exp", "4111 1111 1111 1111"),
    ("card", "amex 378282246310005", "378282246310005"),
    ("iban", "pay DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
    ("iban", "GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("ssn", "ssn 078-05-1120 on file", "078-05-1120"),
    ("nino", "NI number JT 12 34 56 B", "JT 12 34 56 B"),
    ("ip", "from 192.168.10.254 today", "192.168.10.254"),
    ("ip", "host 2001:db8:85a3::8a2e:370:7334 up", "2001:db8:85a3::8a2e:370:7334"),
    ("api_key", "OPENAI_API_KEY=" + OPENAI, OPENAI),
    ("api_key", "key sk-ant-api03-Xy7Zq2Wv9Ut4Sr1Po6Nm end", "sk-ant-api03-Xy7Zq2Wv9Ut4Sr1Po6Nm"),
    ("api_key", "AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("api_key", "slack xoxb-2048-abcdefGHIJ", "xoxb-2048-abcdefGHIJ"),
    ("api_key", "gh " + GH, GH),
    ("api_key", AIZA, AIZA),
    ("secret", "token=q8Zr3Lm9Xv2Tb7Nw4Ks1Hd6Pf0Yc5Ga", "q8Zr3Lm9Xv2Tb7Nw4Ks1Hd6Pf0Yc5Ga"),
]


@pytest.mark.parametrize(("label", "text", "value"), POSITIVES)
def test_each_entity_is_found(label: str, text: str, value: str) -> None:
    assert labels(text) == [(label, value)]


NEAR_MISSES = [
    "visa 4111 1111 1111 1112 exp",  # Luhn digit wrong
    "order 1234 5678 9012 3456",  # no issuer prefix, Luhn fails
    "pay DE88 3704 0044 0532 0130 00 please",  # IBAN check digits wrong
    "GB82WEST1234569876543",  # IBAN one character short
    "ssn 666-12-3456 and 900-12-3456 and 000-12-3456",  # never-issued areas
    "ssn 123-00-4567 and 123-45-0000",  # group 00, serial 0000
    "NI number GB 12 34 56 C and QQ 12 34 56 C",  # invalid NINO prefixes
    "ip 999.168.10.254 and 1.2.3",  # not an address
    "meet at 12:30:45 on 2024-01-15",  # times and dates are not IPv6 / phones
    "sk-short and AKIA123",  # too short for a key
    "the_quick_brown_fox_jumps_over_it",  # long, but not random
    "email me at john at example dot com",
    "it scored 4.5 out of 5 and cost $1,234,567",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_not_found(text: str) -> None:
    assert labels(text) == []


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert ssn_valid("078", "05", "1120") and not ssn_valid("666", "05", "1120")


async def test_redact_and_restore_round_trip() -> None:
    text = "I am bob@example.com, mail bob@example.com or ann@example.org; card 4111111111111111"
    inner = ScriptedModel("m", rules={"<EMAIL_1>": "Sure <EMAIL_1>, I wrote to <EMAIL_2>."})
    g = Guardrails("g", inner, input=[PIICheck(action="fix", restore=True)])
    answer = await g.complete(Request.of(text))
    seen = inner.calls[0].prompt
    assert "bob@example.com" not in seen and "4111111111111111" not in seen
    assert seen.count("<EMAIL_1>") == 2 and "<EMAIL_2>" in seen and "<CARD_1>" in seen
    assert answer.text == "Sure bob@example.com, I wrote to ann@example.org."
    pii = answer.trace.attributes["checks"][0] if answer.trace else {}
    assert pii["did"] == "fixed" and pii["counts"] == {"email": 3, "card": 1}
    assert "bob@example.com" not in repr(answer.trace.to_dict() if answer.trace else None)


async def test_redact_without_restore_keeps_placeholders() -> None:
    inner = ScriptedModel("m", default="hello <EMAIL_1>")
    g = Guardrails("g", inner, input=[PIICheck(action="fix")])
    assert (await g.complete(Request.of("I am a@b.io"))).text == "hello <EMAIL_1>"


async def test_block_names_the_check_and_the_span() -> None:
    inner = ScriptedModel("m", default="never")
    g = Guardrails("g", inner, input=[PIICheck()])
    with pytest.raises(GuardrailViolation) as info:
        await g.complete(Request.of("my ssn is 078-05-1120"))
    err = info.value
    assert err.check == "pii" and err.stage == "input" and err.span == (10, 21)
    assert "1 ssn" in err.reason
    assert inner.calls == []
    trace = error_span(g, err, 0.0)  # what a parent pattern keeps of the failure
    assert trace.kind == "guardrails" and trace.attributes["blocked"] == "pii"
    assert trace.error is not None and "pii" in trace.error


async def test_flag_only_records_and_passes_through() -> None:
    inner = ScriptedModel("m", default="ok")
    g = Guardrails("g", inner, input=[PIICheck(action="flag")])
    answer = await g.complete(Request.of("reach me on +14155552671"))
    assert answer.text == "ok" and inner.calls[0].prompt == "reach me on +14155552671"
    assert answer.trace is not None and answer.trace.attributes["flagged"] == ["pii"]


def test_restore_puts_longest_placeholders_first() -> None:
    assert restore("<A_1> <A_10>", {"<A_1>": "x", "<A_10>": "y"}) == "x y"


async def test_output_pii_is_redacted() -> None:
    g = Guardrails("g", ScriptedModel("m", default="Her number is 078-05-1120."),
                   output=[PIICheck(action="fix")])
    assert (await g.complete(Request.of("hi"))).text == "Her number is <SSN_1>."
