"""Input checks made before any request (they raise InvalidArgument and
never echo the value: it may be a secret)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ._errors import InvalidArgument

# Whitespace (any Unicode space, \s) and C0/C1 control characters.
_BAD_TOKEN_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# What sessiond refuses in a subject (sessionkit_core::text::is_hidden):
# control characters, bidi controls, zero-width characters, line separators.
_HIDDEN_CHAR = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff]"
)
_PROVIDER = re.compile(r"[a-z0-9_-]{1,64}")
SUBJECT_MAX_BYTES = 255


def token(value: object, what: str = "token") -> str:
    """A bearer secret (session token, access JWT, refresh token, CSRF
    token, upstream token): a non-empty str without whitespace or control
    characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"`{what}` must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidArgument(f"`{what}` is empty")
    if _BAD_TOKEN_CHAR.search(value) is not None:
        raise InvalidArgument(f"`{what}` contains whitespace or a control character")
    return value


def subject(value: object, what: str = "subject") -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"`{what}` must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidArgument(f"`{what}` is empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(f"`{what}` is not valid Unicode (a lone surrogate)") from None
    if size > SUBJECT_MAX_BYTES:
        raise InvalidArgument(f"`{what}` is longer than {SUBJECT_MAX_BYTES} bytes (UTF-8)")
    if _HIDDEN_CHAR.search(value) is not None:
        raise InvalidArgument(
            f"`{what}` contains a control or invisible character (sessiond refuses it)"
        )
    return value


def path_segment(value: str) -> str:
    """Percent-encodes one path segment: everything but unreserved
    characters, so `/` travels as %2F and `:` as %3A."""
    return quote(value, safe="")


def session_id(value: object, what: str = "id") -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"`{what}` must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidArgument(f"`{what}` is empty")
    return value


def provider(value: object) -> str:
    if not isinstance(value, str) or _PROVIDER.fullmatch(value) is None:
        raise InvalidArgument(
            "`provider` must be 1 to 64 characters of a-z, 0-9, '_', '-'"
        )
    return value


def opt_int(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"`{what}` must be an int")
    return value


def opt_mapping(value: object, what: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"`{what}` must be a mapping (a JSON object)")
    return value


def opt_str_list(value: object, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidArgument(f"`{what}` must be a list of str")
    out = list(value)
    for v in out:
        if not isinstance(v, str):
            raise InvalidArgument(f"`{what}` must be a list of str")
    return out


def issue(value: object) -> str:
    if not isinstance(value, str) or value not in ("session", "pair"):
        raise InvalidArgument("`issue` must be \"session\" or \"pair\"")
    return value


def if_match(value: object) -> str | None:
    """`If-Match` from a version: 3 -> "3" (quoted), "*" stays, a quoted
    ETag stays."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidArgument("`if_match` must be a version (int) or an ETag (str)")
    if isinstance(value, int):
        return f'"{value}"'
    if isinstance(value, str):
        if not value or _BAD_TOKEN_CHAR.search(value) is not None:
            raise InvalidArgument("`if_match` is empty or contains whitespace or a control character")
        if value == "*" or (len(value) >= 2 and value[0] == '"' and value[-1] == '"'):
            return value
        return f'"{value}"'
    raise InvalidArgument("`if_match` must be a version (int) or an ETag (str)")
