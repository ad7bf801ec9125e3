"""Typed results, parsed from sessiond's JSON. Unknown fields are ignored
(the v1 API may add some). Secrets (tokens, CSRF tokens) are left out of
every ``repr``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "ClientInfo",
    "Created",
    "Introspection",
    "Pair",
    "Session",
    "SessionPage",
    "SubjectCount",
    "SubjectPage",
    "UpstreamGrant",
    "UpstreamToken",
    "Validated",
]


class ShapeError(ValueError):
    """A JSON answer without the promised shape (becomes bad_response)."""


def _obj(v: object, what: str) -> dict[str, Any]:
    if type(v) is not dict:
        raise ShapeError(f"`{what}` is not an object")
    return v


def _str(d: Mapping[str, Any], k: str) -> str:
    v = d[k]
    if type(v) is not str:
        raise ShapeError(f"`{k}` is not a string")
    return v


def _opt_str(d: Mapping[str, Any], k: str) -> str | None:
    v = d.get(k)
    if v is not None and type(v) is not str:
        raise ShapeError(f"`{k}` is not a string")
    return v


def _int(d: Mapping[str, Any], k: str) -> int:
    v = d[k]
    if type(v) is not int:
        raise ShapeError(f"`{k}` is not an integer")
    return v


def _ts(s: object, k: str = "timestamp") -> datetime:
    """RFC 3339 UTC (`2026-01-02T03:04:05.678Z`) -> an aware datetime."""
    if type(s) is not str:
        raise ShapeError(f"`{k}` is not a string")
    if s.endswith("Z"):  # Python 3.10's fromisoformat does not take "Z"
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s)


def _opt_ts(d: Mapping[str, Any], k: str) -> datetime | None:
    v = d.get(k)
    return None if v is None else _ts(v, k)


def _str_tuple(d: Mapping[str, Any], k: str) -> tuple[str, ...]:
    v = d.get(k)
    if v is None:
        return ()
    if type(v) is not list or any(type(x) is not str for x in v):
        raise ShapeError(f"`{k}` is not a list of strings")
    return tuple(v)


@dataclass(frozen=True)
class ClientInfo:
    """The client a session was created for (``device`` is only kept at
    create; validate compares ``ip`` and ``user_agent`` for the fingerprint)."""

    ip: str | None = None
    user_agent: str | None = None
    device: str | None = None

    @classmethod
    def from_json(cls, v: object) -> ClientInfo:
        if v is None:
            return cls()
        d = _obj(v, "client")
        return cls(_opt_str(d, "ip"), _opt_str(d, "user_agent"), _opt_str(d, "device"))

    def to_json(self, device: bool = True) -> dict[str, str]:
        out = {}
        if self.ip is not None:
            out["ip"] = self.ip
        if self.user_agent is not None:
            out["user_agent"] = self.user_agent
        if device and self.device is not None:
            out["device"] = self.device
        return out


@dataclass(frozen=True)
class Session:
    """A session (docs/api.md, "The session object"). ``subject`` and
    ``auth_time`` are None for an anonymous session; ``version`` is the
    ETag (send it back as ``if_match``)."""

    id: str
    subject: str | None
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    expires_at: datetime
    auth_time: datetime | None
    attributes: dict[str, Any]
    client: ClientInfo
    version: int
    aal: int
    amr: tuple[str, ...]

    @property
    def anonymous(self) -> bool:
        return self.subject is None

    @classmethod
    def from_json(cls, v: object) -> Session:
        d = _obj(v, "session")
        return cls(
            id=_str(d, "id"),
            subject=_opt_str(d, "subject"),
            created_at=_ts(d["created_at"], "created_at"),
            last_seen_at=_ts(d["last_seen_at"], "last_seen_at"),
            idle_expires_at=_ts(d["idle_expires_at"], "idle_expires_at"),
            expires_at=_ts(d["expires_at"], "expires_at"),
            auth_time=_opt_ts(d, "auth_time"),
            attributes=_obj(d["attributes"], "attributes"),
            client=ClientInfo.from_json(d.get("client")),
            version=_int(d, "version"),
            aal=_int(d, "aal"),
            amr=_str_tuple(d, "amr"),
        )


@dataclass(frozen=True)
class Created:
    """A session issued as a session token (``issue="session"``): the
    answer of create and upgrade. ``token`` is shown this once."""

    session: Session
    token: str = field(repr=False)
    csrf_token: str = field(repr=False)
    evicted: tuple[str, ...] = ()
    """Ids of the subject's sessions revoked to make room (per-subject cap)."""

    @classmethod
    def from_json(cls, v: object) -> Created:
        d = _obj(v, "body")
        return cls(
            session=Session.from_json(d["session"]),
            token=_str(d, "token"),
            csrf_token=_str(d, "csrf_token"),
            evicted=_str_tuple(d, "evicted"),
        )


@dataclass(frozen=True)
class Pair:
    """A session issued as an access JWT and a refresh token
    (``issue="pair"``; also the answer of refresh). Store
    ``refresh_token`` at once: it replaces the one you had."""

    session: Session
    access_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_token: str = field(repr=False)
    csrf_token: str = field(repr=False)
    evicted: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, v: object) -> Pair:
        d = _obj(v, "body")
        return cls(
            session=Session.from_json(d["session"]),
            access_token=_str(d, "access_token"),
            access_expires_at=_ts(d["access_expires_at"], "access_expires_at"),
            refresh_token=_str(d, "refresh_token"),
            csrf_token=_str(d, "csrf_token"),
            evicted=_str_tuple(d, "evicted"),
        )


@dataclass(frozen=True)
class Validated:
    """A live session, from validate, with its CSRF token."""

    session: Session
    csrf_token: str = field(repr=False)

    @classmethod
    def from_json(cls, v: object) -> Validated:
        d = _obj(v, "body")
        return cls(session=Session.from_json(d["session"]), csrf_token=_str(d, "csrf_token"))


@dataclass(frozen=True)
class SessionPage:
    """One page of a subject's live sessions, newest first; pass
    ``next_cursor`` (None on the last page) as ``cursor`` for the next."""

    sessions: list[Session]
    next_cursor: str | None

    @classmethod
    def from_json(cls, v: object) -> SessionPage:
        d = _obj(v, "body")
        raw = d["sessions"]
        if type(raw) is not list:
            raise ShapeError("`sessions` is not a list")
        return cls([Session.from_json(s) for s in raw], _opt_str(d, "next_cursor"))


@dataclass(frozen=True)
class SubjectCount:
    subject: str
    sessions: int


@dataclass(frozen=True)
class SubjectPage:
    """Subjects with at least one live session, in byte order."""

    subjects: list[SubjectCount]
    next_cursor: str | None

    @classmethod
    def from_json(cls, v: object) -> SubjectPage:
        d = _obj(v, "body")
        raw = d["subjects"]
        if type(raw) is not list:
            raise ShapeError("`subjects` is not a list")
        items = []
        for s in raw:
            o = _obj(s, "subjects[]")
            items.append(SubjectCount(_str(o, "subject"), _int(o, "sessions")))
        return cls(items, _opt_str(d, "next_cursor"))


@dataclass(frozen=True)
class Introspection:
    """RFC 7662-shaped answer of ``introspect``; only ``active`` is set
    for a token that is not live."""

    active: bool
    sub: str | None = None
    sid: str | None = None
    exp: int | None = None
    iat: int | None = None
    token_type: str | None = None

    @classmethod
    def from_json(cls, v: object) -> Introspection:
        d = _obj(v, "body")
        active = d["active"]
        if type(active) is not bool:
            raise ShapeError("`active` is not a boolean")
        exp, iat = d.get("exp"), d.get("iat")
        if (exp is not None and type(exp) is not int) or (iat is not None and type(iat) is not int):
            raise ShapeError("`exp`/`iat` is not an integer")
        return cls(active, _opt_str(d, "sub"), _opt_str(d, "sid"), exp, iat, _opt_str(d, "token_type"))


@dataclass(frozen=True)
class UpstreamToken:
    """A fresh access token of an upstream provider (the token vault)."""

    access_token: str = field(repr=False)
    expires_at: datetime
    scope: str | None = None

    @classmethod
    def from_json(cls, v: object) -> UpstreamToken:
        d = _obj(v, "body")
        return cls(
            access_token=_str(d, "access_token"),
            expires_at=_ts(d["expires_at"], "expires_at"),
            scope=_opt_str(d, "scope"),
        )


@dataclass(frozen=True)
class UpstreamGrant:
    """A provider's grant to keep with the session (``put_upstream_grant``):
    ``expires_in`` (seconds) or ``expires_at`` is required."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_in: int | None = None
    expires_at: datetime | str | None = None
    scope: str | None = None
    id_token: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"access_token": self.access_token}
        if self.refresh_token is not None:
            out["refresh_token"] = self.refresh_token
        if self.expires_in is not None:
            out["expires_in"] = self.expires_in
        if self.expires_at is not None:
            at = self.expires_at
            out["expires_at"] = at if isinstance(at, str) else _rfc3339(at)
        if self.scope is not None:
            out["scope"] = self.scope
        if self.id_token is not None:
            out["id_token"] = self.id_token
        return out


def _rfc3339(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("a naive datetime: give it a timezone")
    from datetime import timezone

    s = dt.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return s.replace("+00:00", "Z")
