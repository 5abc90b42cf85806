"""Checks of command-line flags that run before any work: argparse types for numbers (a
value out of range is refused in the same one line as any other bad flag), the folder a
command writes to, and an outcome table a command reads."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chorus.core.errors import ChorusError

__all__ = ["count", "amount", "share", "names", "distinct_files", "out_file", "out_folder",
           "outcome_table"]


def out_folder(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder to write into, refused now when a file is in the way (not
    after minutes of work)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ChorusError(f"{flag} {str(path)!r} is a file; give a folder to write into")
    if not out.exists():
        # Make it (and any missing parents) as the writer will, to see that it can be
        # made, then take them away again: a run that fails later leaves no empty folders
        # behind. A ".." in the path names a folder that was there (or is made under
        # another name in the path), so it is never taken away.
        made = [p for p in (out, *out.parents) if not p.exists() and p.name != ".."]
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ChorusError(f"{flag} {str(path)!r} cannot be made ({exc.strerror or exc}); "
                              "give a folder you can write to") from None
        for p in made:
            p.rmdir()
    return out


def out_file(path: str | Path | None, flag: str) -> None:
    """``path`` as a file to write at the end of a run, refused now (not after minutes of
    work) when it is a folder or its folder cannot be made; None: not asked for."""
    if path is None:
        return
    out = Path(path)
    if out.is_dir():
        raise ChorusError(f"{flag} {str(path)!r} is a folder; give a file to write")
    out_folder(out.parent, f"{flag}'s folder")


def distinct_files(reads: dict[str, str | Path | None],
                   writes: dict[str, str | Path | None]) -> None:
    """Refuse, before any work, a file a command would write that it also reads (its
    input would be lost) or that two of its flags name (one would overwrite the other).
    The keys are the flags (an argument's name for a positional one); None: not given."""
    def key(path: str | Path) -> Path:
        return Path(path).expanduser().resolve()

    read = {key(p): flag for flag, p in reads.items() if p is not None}
    written: dict[Path, str] = {}
    for flag, p in writes.items():
        if p is None:
            continue
        k = key(p)
        if k in read:
            raise ChorusError(f"{flag} {str(p)!r} is also the {read[k]} this reads, and "
                              "writing it would lose it; give another file")
        if k in written:
            raise ChorusError(f"{written[k]} and {flag} both name {str(p)!r}; give each "
                              "its own file")
        written[k] = flag


def outcome_table(path: str) -> Any:
    """The outcome table at ``path`` (a list of ``OutcomeItem``), refused when it has no
    items."""
    from chorus.eval.outcomes import read_outcomes

    rows = read_outcomes(path)
    if not rows:
        raise ChorusError(f"{path}: the table has no items")
    return rows


def count(low: int = 1) -> Callable[[str], int]:
    """A whole number of at least ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value:  # NaN compares with nothing
        raise argparse.ArgumentTypeError("expected a number, got NaN")
    return value


def amount(low: float = 0.0, *, above: bool = False) -> Callable[[str], float]:
    """A number of at least ``low`` (more than ``low`` when ``above``)."""
    def parse(text: str) -> float:
        value = _float(text)
        if value < low or (above and value == low):
            raise argparse.ArgumentTypeError(
                f"must be {'more than' if above else 'at least'} {low:g}, got {text}")
        return value
    return parse


def share(*, one: bool = False) -> Callable[[str], float]:
    """A share: more than 0 and less than 1 (or at most 1 when ``one``)."""
    def parse(text: str) -> float:
        value = _float(text)
        if not (0 < value < 1 or (one and value == 1)):
            raise argparse.ArgumentTypeError(
                f"must be more than 0 and {'at most' if one else 'less than'} 1, got {text}")
        return value
    return parse


def names(text: str) -> list[str]:
    """A comma-separated list of names (blanks around them and empty entries ignored),
    each at most once."""
    got = [n.strip() for n in text.split(",") if n.strip()]
    if not got:
        raise argparse.ArgumentTypeError("expected one name or more, separated by commas")
    twice = sorted({n for n in got if got.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"names {', '.join(twice)} more than once")
    return got
