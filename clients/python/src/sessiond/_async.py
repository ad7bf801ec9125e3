"""The asynchronous client (asyncio or trio, through anyio)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import anyio
import httpx

from ._core import (
    DEFAULT_RETRY_MAX_WAIT,
    DEFAULT_TIMEOUT,
    Base,
    Call,
    ClientArg,
    cut_off,
    finish,
    retry_wait,
    unavailable,
)
from ._errors import SessiondError
from ._models import (
    Created,
    Introspection,
    Pair,
    Session,
    SessionPage,
    SubjectPage,
    UpstreamGrant,
    UpstreamToken,
    Validated,
)

T = TypeVar("T")


class AsyncClient(Base):
    """An asynchronous client of sessiond's v1 API (same methods as
    :class:`Client`, awaited).

    One ``httpx.AsyncClient`` is kept for the client's lifetime, so connections
    are reused (keep-alive). Close it with :meth:`close`, or use it as a
    async context manager. Use it from one event loop.

    - ``timeout``: seconds for connect, read, write and pool (default 5).
    - ``retry_max_wait``: GET requests, ``validate`` and ``introspect`` are
      retried once on ``503 store_unavailable`` after ``Retry-After``
      seconds when that is at most this (default 1 s); nothing that
      writes (create, upgrade, refresh, logout, patch, deletes) is ever
      retried.
    - ``http_client``: an ``httpx.AsyncClient`` of your own (proxies, TLS
      settings); it is not closed by :meth:`close`.
    - ``transport``, ``verify``, ``limits``: passed to the ``httpx.AsyncClient``
      made here.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry_max_wait: float = DEFAULT_RETRY_MAX_WAIT,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: Any = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            retry_max_wait=retry_max_wait,
            own_client=http_client is None,
        )
        if http_client is None:
            self._http = httpx.AsyncClient(
                headers=self._default_headers,
                timeout=timeout,
                transport=transport,
                verify=verify,
                limits=limits if limits is not None else httpx.Limits(),
                follow_redirects=False,
            )
            self._owns_http = True
        else:
            self._http = http_client
            self._owns_http = False

    # -- lifecycle ---------------------------------------------------------

    async def close(self) -> None:
        """Closes the kept connections (not those of an injected client)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- sending -----------------------------------------------------------

    async def _once(self, call: Call[T]) -> T:
        http = self._http
        try:
            request = http.build_request(
                call.method, call.url, content=call.body, headers=call.headers, params=call.params
            )
            response = await http.send(request, stream=True)
        except httpx.RequestError as e:
            raise unavailable(e) from e
        try:
            try:
                content = await response.aread()
            except httpx.TimeoutException as e:
                raise unavailable(e) from e
            except (httpx.RequestError, httpx.StreamError) as e:
                raise cut_off(response.status_code, e) from e
        finally:
            await response.aclose()
        return finish(call, response.status_code, response.headers, content)

    async def _run(self, call: Call[T]) -> T:
        try:
            return await self._once(call)
        except SessiondError as e:
            if not call.retry:
                raise
            wait = retry_wait(e, self._retry_max_wait)
            if wait is None:
                raise
        await anyio.sleep(wait)
        return await self._once(call)

    # -- sessions ----------------------------------------------------------

    @overload
    async def create_session(
        self,
        subject: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        client: ClientArg = None,
        idle_timeout_secs: int | None = None,
        absolute_timeout_secs: int | None = None,
        issue: Literal["session"] = "session",
        aal: int | None = None,
        amr: Sequence[str] | None = None,
    ) -> Created: ...
    @overload
    async def create_session(
        self,
        subject: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        client: ClientArg = None,
        idle_timeout_secs: int | None = None,
        absolute_timeout_secs: int | None = None,
        *,
        issue: Literal["pair"],
        aal: int | None = None,
        amr: Sequence[str] | None = None,
    ) -> Pair: ...
    async def create_session(
        self,
        subject: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        client: ClientArg = None,
        idle_timeout_secs: int | None = None,
        absolute_timeout_secs: int | None = None,
        issue: str = "session",
        aal: int | None = None,
        amr: Sequence[str] | None = None,
    ) -> Created | Pair:
        """``POST /v1/sessions``: a new session, anonymous without
        ``subject``. Returns :class:`Created` (``issue="session"``) or
        :class:`Pair` (``issue="pair"``). Never retried."""
        return await self._run(
            self._c_create(
                subject, attributes, client, idle_timeout_secs, absolute_timeout_secs, issue, aal, amr
            )
        )

    async def validate(
        self,
        token: str,
        csrf_token: str | None = None,
        client: ClientArg = None,
        max_age_secs: int | None = None,
        min_aal: int | None = None,
    ) -> Validated:
        """``POST /v1/sessions/validate``: the live session of a session
        token or access JWT. Raises ``invalid_token``, ``session_expired``,
        ``token_expired``, ``reauthentication_required`` (with
        ``max_age_secs``/``min_aal``) or ``csrf_failed``. Retried once on
        503 ``store_unavailable``."""
        return await self._run(self._c_validate(token, csrf_token, client, max_age_secs, min_aal))

    @overload
    async def upgrade(
        self,
        token: str,
        subject: str,
        keep_attributes: Sequence[str] | None = None,
        issue: Literal["session"] = "session",
        aal: int | None = None,
        amr: Sequence[str] | None = None,
    ) -> Created: ...
    @overload
    async def upgrade(
        self,
        token: str,
        subject: str,
        keep_attributes: Sequence[str] | None = None,
        *,
        issue: Literal["pair"],
        aal: int | None = None,
        amr: Sequence[str] | None = None,
    ) -> Pair: ...
    async def upgrade(
        self,
        token: str,
        subject: str,
        keep_attributes: Sequence[str] | None = None,
        issue: str = "session",
        aal: int | None = None,
        amr: Sequence[str] | None = None,
    ) -> Created | Pair:
        """``POST /v1/sessions/upgrade``: log ``subject`` in on top of any
        token of a live session (new id, new tokens; every old token dies).
        Never retried."""
        return await self._run(self._c_upgrade(token, subject, keep_attributes, issue, aal, amr))

    async def refresh(self, refresh_token: str) -> Pair:
        """``POST /v1/tokens/refresh``: the next pair (rotation). Store the
        new refresh token at once. Never retried: after a 503, retry
        yourself with the SAME refresh token (docs/tokens.md)."""
        return await self._run(self._c_refresh(refresh_token))

    async def revoke(self, token: str) -> None:
        """``POST /v1/sessions/revoke``: logout with any token of the
        session (idempotent: no error for a dead one)."""
        return await self._run(self._c_revoke(token))

    async def introspect(self, token: str) -> Introspection:
        """``POST /v1/tokens/introspect`` (RFC 7662 shape). Retried once
        on 503 ``store_unavailable``."""
        return await self._run(self._c_introspect(token))

    async def get_session(self, id: str) -> Session:
        """``GET /v1/sessions/{id}`` (``not_found`` for a dead id)."""
        return await self._run(self._c_get_session(id))

    async def patch_attributes(
        self, id: str, patch: Mapping[str, Any], if_match: int | str | None = None
    ) -> Session:
        """``PATCH /v1/sessions/{id}/attributes``: a JSON merge patch
        (``None`` removes a key). ``if_match`` is the version you read
        (``session.version``) or ``"*"``; a stale one raises
        ``precondition_failed`` and writes nothing."""
        return await self._run(self._c_patch(id, patch, if_match))

    async def delete_session(self, id: str) -> None:
        """``DELETE /v1/sessions/{id}``: revoke by id (``not_found`` for an
        id that never existed)."""
        return await self._run(self._c_delete_session(id))

    # -- subjects ----------------------------------------------------------

    async def list_sessions(
        self, subject: str, limit: int | None = None, cursor: str | None = None
    ) -> SessionPage:
        """``GET /v1/subjects/{subject}/sessions``: live sessions, newest
        first (the device list)."""
        return await self._run(self._c_list_sessions(subject, limit, cursor))

    async def get_subject_session(self, subject: str, id: str) -> Session:
        """``GET /v1/subjects/{subject}/sessions/{id}``: use this for an id
        that came from an end user (``not_found`` unless it is theirs)."""
        return await self._run(self._c_get_subject_session(subject, id))

    async def delete_subject_session(self, subject: str, id: str) -> None:
        """``DELETE /v1/subjects/{subject}/sessions/{id}``."""
        return await self._run(self._c_delete_subject_session(subject, id))

    async def revoke_subject(self, subject: str, except_id: str | None = None) -> int:
        """``DELETE /v1/subjects/{subject}/sessions``: revoke every session
        of the subject, or every one but ``except_id`` ("log out other
        devices"). Returns how many were revoked."""
        return await self._run(self._c_revoke_subject(subject, except_id))

    async def list_subjects(self, limit: int | None = None, cursor: str | None = None) -> SubjectPage:
        """``GET /v1/subjects``: who is logged in (an operator's view)."""
        return await self._run(self._c_list_subjects(limit, cursor))

    # -- upstream token vault ---------------------------------------------

    async def upstream_token(self, provider: str, token: str) -> UpstreamToken:
        """``POST /v1/upstream/{provider}/token``: a fresh access token of
        the provider for the session named by ``token``. Never retried."""
        return await self._run(self._c_upstream_token(provider, token))

    async def put_upstream_grant(
        self, provider: str, token: str, grant: UpstreamGrant | Mapping[str, Any]
    ) -> None:
        """``PUT /v1/upstream/{provider}``: keep the provider's grant with
        the session (replacing an earlier one)."""
        return await self._run(self._c_put_grant(provider, token, grant))

    async def delete_upstream_grant(self, provider: str, token: str) -> None:
        """``DELETE /v1/upstream/{provider}``: forget the grant."""
        return await self._run(self._c_delete_grant(provider, token))
