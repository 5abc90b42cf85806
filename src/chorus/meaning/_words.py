"""Words and their parts: tokens, stems, and the closed word classes the checks read.

Everything here is a table or a plain function over a string. The tables are closed
classes of English (function words, negation cues, number words, calendar words, pairs of
opposite direction); no open-class word (a noun, a name, a topic) is listed, so a check
never depends on the subject of the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CLAUSE",
    "DATES",
    "DIRECTIONAL",
    "FILLER",
    "NEGATION",
    "NUMBER_WORDS",
    "OPPOSITES",
    "ROLES",
    "STOP",
    "Token",
    "stem",
    "tokens",
]

# Words that carry no content of their own: articles, pronouns, auxiliaries and modals,
# prepositions and conjunctions, question words, and the words that frame a request
# ("can you tell me", "I'd like to know", "please"). Negation cues, numbers and
# direction words are *not* here: each has a check of its own.
STOP = frozenset("""
a an the this that these those there here it its itself i me my mine myself we us our
ours you your yours yourself he him his she her hers they them their theirs one ones
is am are was were be been being do does did doing done have has had having will would
shall should can could may might must ought get got gets getting
of in on at by with about for as into onto upon out off over under via per within
and or but so if then than because while when where what which who whom whose why how
whether also too very really just quite rather some any each every all both either
such other another same own more most much many lot lots
please kindly thanks thank pls plz tell know want wanted wonder wondering curious need
let help give show find say ask mean means meant way ways thing things kind sort
going gonna wanna try able possible okay ok hey hi well sure certainly course now again
something anything everything someone anyone pm percent
""".split())

# Extra words an answer may open with, that say nothing about what it answers.
FILLER = frozenset("""
answer answers correct final result response reply question great interesting glad happy
""".split())

NEGATION = frozenset("""
not no never none nothing nobody nowhere neither nor without cannot cant dont doesnt
didnt isnt arent wasnt werent wont wouldnt shouldnt couldnt havent hasnt hadnt mustnt
""".split())

NUMBER_WORDS = {
    w: str(i) for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())
} | {w: str(10 * i) for i, w in enumerate(
    "thirty forty fifty sixty seventy eighty ninety".split(), start=3)} | {
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
    "dozen": "12", "half": "0.5", "quarter": "0.25", "twice": "2", "once": "1",
}

_MONTHS = ("january february march april may june july august september october november "
           "december").split()
DATES = {m: m for m in _MONTHS} | {m[:3]: m for m in _MONTHS if m != "may"} | {
    "sept": "september"} | {
    d: d for d in "monday tuesday wednesday thursday friday saturday sunday today tonight "
    "tomorrow yesterday weekend weekday morning afternoon evening night noon midnight "
    "daily weekly monthly yearly annually hourly".split()} | {
    "mon": "monday", "tue": "tuesday", "tues": "tuesday", "wed": "wednesday",
    "thu": "thursday", "thur": "thursday", "thurs": "thursday", "fri": "friday",
    "sat": "saturday", "sun": "sunday"}
# "may" is a modal far more often than a month; it counts as a month only before a number.
DATES.pop("may")

# Opposite ends of one axis: words that name a direction, an order, a polarity or an
# extreme. Two texts that take different ends of an axis never mean the same.
_AXES = [
    ("ascending ascend asc increasing", "descending descend desc decreasing"),
    ("increase increases raise raises grow grows rise rises gain gains",
     "decrease decreases lower reduce reduces shrink shrinks fall falls drop drops"
     " lose loses"),
    ("before earlier prior", "after later"),
    ("above over", "below beneath"),
    ("up upward upwards upstairs", "down downward downwards downstairs"),
    ("more greater larger bigger higher longer most greatest largest biggest highest"
     " longest maximum max", "less fewer smaller lower shorter least fewest smallest"
     " lowest shortest minimum min"),
    ("first earliest oldest", "last latest newest"),
    ("best better", "worst worse"),
    ("positive pos", "negative neg"),
    ("true", "false"),
    ("yes yeah yep", "no nope"),
    ("buy buying bought purchase", "sell selling sold"),
    ("import imports", "export exports"),
    ("enable enabled activate", "disable disabled deactivate"),
    ("on", "off"),
    ("open opening", "close closing closed shut"),
    ("lock locked", "unlock unlocked"),
    ("accept accepted approve approved", "reject rejected decline declined deny denied"),
    ("add adding added", "remove removing removed delete deleting deleted"),
    ("include including included", "exclude excluding excluded"),
    ("win won winning", "lose lost losing"),
    ("start starting started begin", "stop stopping stopped end finish"),
    ("north northern", "south southern"),
    ("east eastern", "west western"),
    ("left", "right"),
    ("hot hotter hottest warm", "cold colder coldest cool"),
    ("forward forwards", "backward backwards"),
    ("encrypt encryption encode", "decrypt decryption decode"),
    ("upload", "download"),
    ("input", "output"),
    ("push", "pull"),
    ("maximize maximise", "minimize minimise"),
    ("agree agrees", "disagree disagrees"),
    ("legal", "illegal"),
    ("safe safer", "unsafe dangerous"),
    ("like likes love loves", "dislike dislikes hate hates"),
    ("good", "bad"),
    ("cheap cheaper cheapest", "expensive"),
    ("early", "late"),
    ("fast faster fastest", "slow slower slowest"),
    ("arrive arrival arrivals", "depart departure departures leave"),
    ("inbound incoming", "outbound outgoing"),
    ("credit", "debit"),
    ("deposit", "withdraw withdrawal"),
    ("send", "receive"),
]
OPPOSITES: dict[str, tuple[int, int]] = {
    w: (axis, pole)
    for axis, ends in enumerate(_AXES) for pole, words in enumerate(ends) for w in words.split()
}

# Prepositions that give the word after them a role: "the capital of France" is not "the
# capital of Paris". Moving a whole phrase ("in German, can we speak") keeps each role.
ROLES = frozenset("""from to into onto toward towards than vs versus of in on at for
with by about between among within without per via""".split())
# The roles whose exchange reverses a direction or a comparison: "from Paris to Rome" is
# not "to Paris from Rome"; "for 7 am" and "at 7 am" are one request.
DIRECTIONAL = frozenset("from to into onto toward towards than vs versus".split())
# Words that open a clause; a clause moved whole keeps its meaning.
CLAUSE = frozenset("if when because while unless since although though whereas".split())


@dataclass(frozen=True, slots=True)
class Token:
    """One word: its lower-case form, whether it was written capitalised in the middle of
    a sentence (a name), and whether a sentence starts with it."""

    word: str
    name: bool
    start: bool


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[%$€£]|[.!?;:\n]")
_CONTRACTION = {"n't": "not", "'re": "", "'ve": "", "'ll": "", "'d": "", "'m": "", "'s": ""}


def tokens(text: str) -> list[Token]:
    """The words of ``text`` with contractions undone ("don't" -> "do not", "what's" ->
    "what"); sentence punctuation becomes a break, not a token."""
    out: list[Token] = []
    start = True
    for m in _WORD.finditer(text):
        raw = m.group(0).replace("’", "'")
        if raw in ".!?;:\n":
            start = True
            continue
        lower = raw.lower()
        extra = ""
        for suffix, word in _CONTRACTION.items():
            if lower.endswith(suffix) and len(lower) > len(suffix):
                lower, extra = lower[: -len(suffix)], word
                if suffix == "n't":
                    lower = {"wo": "will", "ca": "can", "sha": "shall"}.get(lower, lower)
                break
        lower = lower.replace("'", "")
        name = not start and raw[0].isupper() and lower not in STOP and lower not in DATES \
            and lower != "i"
        out.append(Token(lower, name, start))
        if extra:
            out.append(Token(extra, False, False))
        start = start and raw in "%$€£"
    return out


def _strip(word: str) -> str:
    for suffix, repl in (("ies", "i"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""),
                         ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word[-2] in "su":
                return word
            if suffix == "es" and word[-3] not in "sxz" and word[-4:-2] not in ("ch", "sh"):
                return word[:-1]
            return word[: -len(suffix)] + repl
    return word


def stem(word: str) -> str:
    """A crude English stem, enough to equate "sorts", "sorting" and "sort", or "city"
    and "cities"."""
    if not word.isalpha():
        return word
    for _ in range(2):
        shorter = _strip(word)
        if shorter == word:
            break
        word = shorter
    if len(word) > 3 and word[-1] == "e":
        word = word[:-1]
    elif len(word) > 3 and word[-1] == "y":
        word = word[:-1] + "i"
    return word
