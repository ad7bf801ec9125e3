"""What the sync and async clients share: argument checks, request
building and answer parsing. Only the sending differs between them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import httpx

from . import _check as check
from ._errors import Code, InvalidArgument, SessiondError, parse_retry_after
from ._models import (
    ClientInfo,
    Created,
    Introspection,
    Pair,
    Session,
    SessionPage,
    ShapeError,
    SubjectPage,
    UpstreamGrant,
    UpstreamToken,
    Validated,
)
from ._version import __version__

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRY_MAX_WAIT = 1.0
# When a 503 store_unavailable carries no Retry-After (sessiond always sends
# one), wait this long before the one retry.
DEFAULT_RETRY_WAIT = 0.1

ClientArg = ClientInfo | Mapping[str, Any] | None


class Call(Generic[T]):
    """One request: where, what, whether it may be retried, and how to read
    a 2xx answer."""

    __slots__ = ("body", "headers", "method", "params", "parse", "retry", "url")

    def __init__(
        self,
        method: str,
        url: httpx.URL | str,
        body: bytes | None,
        headers: Mapping[str, str],
        parse: Callable[[bytes], T],
        *,
        retry: bool = False,
        params: Mapping[str, str | int] | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.body = body
        self.headers = headers
        self.parse = parse
        self.retry = retry
        self.params = params


def encode(body: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(
            body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("a string in the request is not valid Unicode") from None
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"the request is not JSON-serialisable: {type(e).__name__}") from None


def _loads(content: bytes) -> Any:
    return json.loads(content)


def _none(_content: bytes) -> None:
    return None


def _session(content: bytes) -> Session:
    return Session.from_json(_obj(_loads(content))["session"])


def _obj(v: Any) -> dict[str, Any]:
    if type(v) is not dict:
        raise ShapeError("the body is not a JSON object")
    return v


def _revoked(content: bytes) -> int:
    v = _obj(_loads(content))["revoked"]
    if type(v) is not int:
        raise ShapeError("`revoked` is not an integer")
    return v


def client_json(client: ClientArg, device: bool) -> dict[str, str]:
    if isinstance(client, ClientInfo):
        info = client
    elif isinstance(client, Mapping):
        unknown = set(client) - ({"ip", "user_agent", "device"} if device else {"ip", "user_agent"})
        if unknown:
            raise InvalidArgument(f"`client` has unknown keys: {sorted(unknown)}")
        info = ClientInfo(client.get("ip"), client.get("user_agent"), client.get("device"))
    else:
        raise InvalidArgument("`client` must be a ClientInfo or a mapping")
    for name in ("ip", "user_agent", "device"):
        v = getattr(info, name)
        if v is not None and not isinstance(v, str):
            raise InvalidArgument(f"`client.{name}` must be a str")
    return info.to_json(device)


def error_from(status: int, headers: httpx.Headers, content: bytes) -> SessiondError:
    retry_after = parse_retry_after(headers.get("retry-after"))
    try:
        d = json.loads(content)
    except ValueError:
        d = None
    if type(d) is dict:
        code, message = d.get("error"), d.get("message")
        if type(code) is str and code and type(message) is str:
            return SessiondError(status, code, message, retry_after)
    return SessiondError(
        status,
        Code.BAD_RESPONSE,
        f"HTTP {status} without a sessiond error body",
        retry_after,
    )


def finish(call: Call[T], status: int, headers: httpx.Headers, content: bytes) -> T:
    """The result of a complete answer, or the SessiondError it means."""
    if 200 <= status < 300:
        try:
            return call.parse(content)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            why = str(e) if isinstance(e, ShapeError) else type(e).__name__
            raise SessiondError(
                status, Code.BAD_RESPONSE, f"the answer is not what the v1 API promises ({why})"
            ) from e
    raise error_from(status, headers, content)


def unavailable(e: BaseException) -> SessiondError:
    # httpx's messages name the host and the OS error, never a body.
    return SessiondError(None, Code.UNAVAILABLE, f"cannot reach sessiond: {type(e).__name__}: {e}")


def cut_off(status: int, e: BaseException) -> SessiondError:
    return SessiondError(
        status, Code.BAD_RESPONSE, f"the answer was cut off or unreadable ({type(e).__name__})"
    )


def retry_wait(e: SessiondError, cap: float) -> float | None:
    """How long to wait before the one retry of a safe request, or None
    when it must not be retried: only 503 store_unavailable, and only when
    Retry-After is at most ``cap`` seconds."""
    if e.status != 503 or e.code != Code.STORE_UNAVAILABLE:
        return None
    wait = DEFAULT_RETRY_WAIT if e.retry_after is None else e.retry_after
    if wait > cap:
        return None
    return wait


class Base:
    """Checks and request building (no I/O)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout | None,
        retry_max_wait: float,
        own_client: bool,
    ) -> None:
        if not isinstance(base_url, str):
            raise InvalidArgument("`base_url` must be a str")
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidArgument("`base_url` must be an http:// or https:// URL")
        if url.query or url.fragment:
            raise InvalidArgument("`base_url` must not have a query or a fragment")
        check.token(api_key, "api_key")
        if isinstance(retry_max_wait, bool) or not isinstance(retry_max_wait, (int, float)) or retry_max_wait < 0:
            raise InvalidArgument("`retry_max_wait` must be a number >= 0")
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._retry_max_wait = float(retry_max_wait)
        auth = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"sessiond-python/{__version__}",
        }
        # Our own httpx client carries the auth headers as defaults; an
        # injected one gets them on every request.
        self._default_headers = auth if own_client else {}
        extra = {} if own_client else auth
        self._h_json: dict[str, str] = {**extra, "Content-Type": "application/json"}
        self._h_plain: dict[str, str] = dict(extra)
        self._h_patch: dict[str, str] = {**extra, "Content-Type": "application/merge-patch+json"}
        u = self._url
        self._u_sessions = u("/v1/sessions")
        self._u_validate = u("/v1/sessions/validate")
        self._u_upgrade = u("/v1/sessions/upgrade")
        self._u_revoke = u("/v1/sessions/revoke")
        self._u_refresh = u("/v1/tokens/refresh")
        self._u_introspect = u("/v1/tokens/introspect")
        self._u_subjects = u("/v1/subjects")

    def _url(self, path: str) -> httpx.URL:
        return httpx.URL(self._base + path)

    @property
    def base_url(self) -> str:
        return self._base

    def __repr__(self) -> str:  # never the API key
        return f"{type(self).__name__}(base_url={self._base!r})"

    # -- request builders -------------------------------------------------

    def _c_create(
        self,
        subject: str | None,
        attributes: Mapping[str, Any] | None,
        client: ClientArg,
        idle_timeout_secs: int | None,
        absolute_timeout_secs: int | None,
        issue: str,
        aal: int | None,
        amr: Sequence[str] | None,
    ) -> Call[Created | Pair]:
        body: dict[str, Any] = {}
        if subject is not None:
            body["subject"] = check.subject(subject)
        if attributes is not None:
            body["attributes"] = check.opt_mapping(attributes, "attributes")
        if client is not None:
            body["client"] = client_json(client, device=True)
        if idle_timeout_secs is not None:
            body["idle_timeout_secs"] = check.opt_int(idle_timeout_secs, "idle_timeout_secs")
        if absolute_timeout_secs is not None:
            body["absolute_timeout_secs"] = check.opt_int(absolute_timeout_secs, "absolute_timeout_secs")
        if check.issue(issue) != "session":
            body["issue"] = issue
        if aal is not None:
            body["aal"] = check.opt_int(aal, "aal")
        if amr is not None:
            body["amr"] = check.opt_str_list(amr, "amr")
        return Call("POST", self._u_sessions, encode(body), self._h_json, _issued(issue))

    def _c_validate(
        self,
        token: str,
        csrf_token: str | None,
        client: ClientArg,
        max_age_secs: int | None,
        min_aal: int | None,
    ) -> Call[Validated]:
        body: dict[str, Any] = {"token": check.token(token)}
        if csrf_token is not None:
            body["csrf_token"] = check.token(csrf_token, "csrf_token")
        if client is not None:
            body["client"] = client_json(client, device=False)
        if max_age_secs is not None:
            body["max_age_secs"] = check.opt_int(max_age_secs, "max_age_secs")
        if min_aal is not None:
            body["min_aal"] = check.opt_int(min_aal, "min_aal")
        return Call(
            "POST",
            self._u_validate,
            encode(body),
            self._h_json,
            _validated,
            retry=True,  # a read: safe to retry once on 503 store_unavailable
        )

    def _c_upgrade(
        self,
        token: str,
        subject: str,
        keep_attributes: Sequence[str] | None,
        issue: str,
        aal: int | None,
        amr: Sequence[str] | None,
    ) -> Call[Created | Pair]:
        body: dict[str, Any] = {"token": check.token(token), "subject": check.subject(subject)}
        if keep_attributes is not None:
            body["keep_attributes"] = check.opt_str_list(keep_attributes, "keep_attributes")
        if check.issue(issue) != "session":
            body["issue"] = issue
        if aal is not None:
            body["aal"] = check.opt_int(aal, "aal")
        if amr is not None:
            body["amr"] = check.opt_str_list(amr, "amr")
        return Call("POST", self._u_upgrade, encode(body), self._h_json, _issued(issue))

    def _c_refresh(self, refresh_token: str) -> Call[Pair]:
        body = {"refresh_token": check.token(refresh_token, "refresh_token")}
        return Call("POST", self._u_refresh, encode(body), self._h_json, _pair)

    def _c_revoke(self, token: str) -> Call[None]:
        body = {"token": check.token(token)}
        return Call("POST", self._u_revoke, encode(body), self._h_json, _none)

    def _c_introspect(self, token: str) -> Call[Introspection]:
        body = {"token": check.token(token)}
        return Call(
            "POST", self._u_introspect, encode(body), self._h_json, _introspection, retry=True
        )

    def _c_get_session(self, id: str) -> Call[Session]:
        url = self._base + "/v1/sessions/" + check.path_segment(check.session_id(id))
        return Call("GET", url, None, self._h_plain, _session, retry=True)

    def _c_patch(self, id: str, patch: Mapping[str, Any], if_match: int | str | None) -> Call[Session]:
        url = self._base + "/v1/sessions/" + check.path_segment(check.session_id(id)) + "/attributes"
        if check.opt_mapping(patch, "patch") is None:
            raise InvalidArgument("`patch` must be a mapping (a JSON merge patch object)")
        headers = self._h_patch
        etag = check.if_match(if_match)
        if etag is not None:
            headers = {**headers, "If-Match": etag}
        return Call("PATCH", url, encode(patch), headers, _session)

    def _c_delete_session(self, id: str) -> Call[None]:
        url = self._base + "/v1/sessions/" + check.path_segment(check.session_id(id))
        return Call("DELETE", url, None, self._h_plain, _none)

    def _subject_url(self, subject: str) -> str:
        return self._base + "/v1/subjects/" + check.path_segment(check.subject(subject)) + "/sessions"

    def _c_list_sessions(self, subject: str, limit: int | None, cursor: str | None) -> Call[SessionPage]:
        url = self._subject_url(subject)
        params: dict[str, str | int] = {}
        if limit is not None:
            params["limit"] = check.opt_int(limit, "limit")  # type: ignore[assignment]
        if cursor is not None:
            params["cursor"] = check.token(cursor, "cursor")
        return Call("GET", url, None, self._h_plain, _session_page, retry=True, params=params or None)

    def _c_get_subject_session(self, subject: str, id: str) -> Call[Session]:
        url = self._subject_url(subject) + "/" + check.path_segment(check.session_id(id))
        return Call("GET", url, None, self._h_plain, _session, retry=True)

    def _c_delete_subject_session(self, subject: str, id: str) -> Call[None]:
        url = self._subject_url(subject) + "/" + check.path_segment(check.session_id(id))
        return Call("DELETE", url, None, self._h_plain, _none)

    def _c_revoke_subject(self, subject: str, except_id: str | None) -> Call[int]:
        url = self._subject_url(subject)
        params = None
        if except_id is not None:
            params = {"except": check.session_id(except_id, "except_id")}
        return Call("DELETE", url, None, self._h_plain, _revoked, params=params)

    def _c_list_subjects(self, limit: int | None, cursor: str | None) -> Call[SubjectPage]:
        params: dict[str, str | int] = {}
        if limit is not None:
            params["limit"] = check.opt_int(limit, "limit")  # type: ignore[assignment]
        if cursor is not None:
            params["cursor"] = check.token(cursor, "cursor")
        return Call(
            "GET", self._u_subjects, None, self._h_plain, _subject_page, retry=True, params=params or None
        )

    def _upstream_url(self, provider: str) -> str:
        return self._base + "/v1/upstream/" + check.provider(provider)

    def _c_upstream_token(self, provider: str, token: str) -> Call[UpstreamToken]:
        url = self._upstream_url(provider) + "/token"
        body = {"token": check.token(token)}
        return Call("POST", url, encode(body), self._h_json, _upstream_token)

    def _c_put_grant(
        self, provider: str, token: str, grant: UpstreamGrant | Mapping[str, Any]
    ) -> Call[None]:
        url = self._upstream_url(provider)
        if isinstance(grant, UpstreamGrant):
            g = grant.to_json()
        elif isinstance(grant, Mapping):
            g = dict(grant)
        else:
            raise InvalidArgument("`grant` must be an UpstreamGrant or a mapping")
        check.token(g.get("access_token"), "grant.access_token")
        if g.get("refresh_token") is not None:
            check.token(g["refresh_token"], "grant.refresh_token")
        body = {"token": check.token(token), "grant": g}
        return Call("PUT", url, encode(body), self._h_json, _none)

    def _c_delete_grant(self, provider: str, token: str) -> Call[None]:
        url = self._upstream_url(provider)
        body = {"token": check.token(token)}
        return Call("DELETE", url, encode(body), self._h_json, _none)


def _created(content: bytes) -> Created | Pair:
    return Created.from_json(_loads(content))


def _pair_issued(content: bytes) -> Created | Pair:
    return Pair.from_json(_loads(content))


def _issued(issue: str) -> Callable[[bytes], Created | Pair]:
    return _pair_issued if issue == "pair" else _created


def _validated(content: bytes) -> Validated:
    return Validated.from_json(_loads(content))


def _pair(content: bytes) -> Pair:
    return Pair.from_json(_loads(content))


def _introspection(content: bytes) -> Introspection:
    return Introspection.from_json(_loads(content))


def _session_page(content: bytes) -> SessionPage:
    return SessionPage.from_json(_loads(content))


def _subject_page(content: bytes) -> SubjectPage:
    return SubjectPage.from_json(_loads(content))


def _upstream_token(content: bytes) -> UpstreamToken:
    return UpstreamToken.from_json(_loads(content))
