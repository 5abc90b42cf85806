"""Server-sent events, parsed line by line without any I/O (the WHATWG rules that
OpenAI and Anthropic streams follow): ``event:`` names the event, ``data:`` lines join
with newlines, a blank line ends the event, a line starting with ``:`` is a comment."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "iter_events"]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"


class SSEDecoder:
    """Feed it lines (without their line ending); it returns the events they complete."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        # "id" and "retry" matter only to reconnecting browsers; ignored here.
        return None

    def flush(self) -> ServerSentEvent | None:
        """The event left pending when the stream ended without a blank line."""
        return self._dispatch()

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data and not self._event:
            return None
        event = ServerSentEvent("\n".join(self._data), self._event or "message")
        self._event, self._data = "", []
        return event


def iter_events(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Every event in ``lines`` (for tests and recorded transcripts)."""
    decoder = SSEDecoder()
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
    last = decoder.flush()
    if last is not None:
        yield last
