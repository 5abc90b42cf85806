"""The gateway's own error, already in OpenAI's terms, and pydantic's complaints as one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

__all__ = ["WireError", "validation_error"]

_BRANCH = re.compile(r"^(str|bool|int|float|none|[A-Z]\w*|(list|dict|function|tagged-union|"
                     r"literal|nullable|union|json-or-python|lax-or-strict)[\[-].*)$")


class WireError(Exception):
    """An error the gateway itself raises, already in OpenAI's terms."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code = param, code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


def validation_error(exc: ValidationError) -> WireError:
    """pydantic's first complaint as a 400 naming the field."""
    err = exc.errors(include_url=False)[0]
    # Drop the union-branch names pydantic puts in the location ("str", "list[...]", a
    # model's class name, a tagged union's tag).
    param = ".".join(str(p) for p in err["loc"] if not _BRANCH.match(str(p))) or None
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "chorus does not support this field (see the README's table of fields)"
    elif err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    return WireError(400, f"{param + ': ' if param else ''}{msg}", param=param,
                     code={"missing": "missing_field", "extra_forbidden": "unsupported_field"}
                     .get(err["type"], "invalid_value"))
