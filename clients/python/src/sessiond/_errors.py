"""Errors raised by the sessiond client."""

from __future__ import annotations

import email.utils
import time

__all__ = ["Code", "InvalidArgument", "SessiondError"]


class Code:
    """The stable error codes of sessiond's v1 API (docs/api.md, "Errors"),
    plus the two the client itself raises (``BAD_RESPONSE``, ``UNAVAILABLE``).

    ``SessiondError.code`` is a plain ``str``; compare it with these.
    """

    INVALID_REQUEST = "invalid_request"
    UNAUTHENTICATED = "unauthenticated"
    INVALID_TOKEN = "invalid_token"
    SESSION_EXPIRED = "session_expired"
    TOKEN_EXPIRED = "token_expired"
    REAUTHENTICATION_REQUIRED = "reauthentication_required"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    CSRF_FAILED = "csrf_failed"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    SESSION_LIMIT_REACHED = "session_limit_reached"
    CONFLICT = "conflict"
    REQUEST_TIMEOUT = "request_timeout"
    PRECONDITION_FAILED = "precondition_failed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    HEADERS_TOO_LARGE = "headers_too_large"
    INTERNAL_ERROR = "internal_error"
    STORE_UNAVAILABLE = "store_unavailable"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    INSUFFICIENT_STORAGE = "insufficient_storage"
    # Raised by the client, never sent by sessiond:
    BAD_RESPONSE = "bad_response"
    """The answer was not what the v1 API promises: not JSON, truncated,
    the wrong shape, or an error status without a sessiond error body."""
    UNAVAILABLE = "unavailable"
    """sessiond could not be reached: connection refused or reset, timeout,
    TLS failure. The httpx exception is the ``__cause__``."""


# The codes that mean "this user's token is dead: sign in again".
SIGN_IN_AGAIN = frozenset(
    {Code.INVALID_TOKEN, Code.SESSION_EXPIRED, Code.REFRESH_TOKEN_REUSED}
)


class SessiondError(Exception):
    """An error answer of sessiond, or a failure to get a usable one.

    - ``status``: the HTTP status (``None`` when no answer arrived:
      code ``unavailable``).
    - ``code``: a stable code of docs/api.md (see :class:`Code`), or
      ``bad_response`` / ``unavailable``.
    - ``message``: human text (sessiond's messages name fields, never
      secret values; the client's never contain a token either).
    - ``retry_after``: seconds from the ``Retry-After`` header, if any.
    """

    status: int | None
    code: str
    message: str
    retry_after: float | None

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, retry_after)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.status is not None else self.code
        tail = f" (retry after {self.retry_after:g} s)" if self.retry_after is not None else ""
        return f"{head}: {self.message}{tail}"

    def __repr__(self) -> str:
        return (
            f"SessiondError(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, retry_after={self.retry_after!r})"
        )

    @property
    def sign_in_again(self) -> bool:
        """True when the user's token is dead for good (``invalid_token``,
        ``session_expired``, ``refresh_token_reused``): drop it, sign in."""
        return self.code in SIGN_IN_AGAIN


class InvalidArgument(ValueError):
    """An argument the client refuses before sending anything (an empty
    token, a token with whitespace or control characters, a subject that is
    empty or over 255 bytes, …). The message never contains the value."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an
    HTTP date); ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    if secs != secs or secs < 0 or secs == float("inf"):  # NaN, negative, inf
        return None
    return secs
