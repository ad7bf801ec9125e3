"""FastAPI / Starlette integration: a dependency that validates the
request's session token and hands the route its :class:`~sessiond.Session`.

    from fastapi import Depends, FastAPI
    from sessiond import AsyncClient, Session
    from sessiond.fastapi import SessionDependency

    sd = AsyncClient("http://127.0.0.1:7700", api_key)
    current_session = SessionDependency(sd, cookie_name="session")
    app = FastAPI()

    @app.get("/me")
    async def me(session: Session = Depends(current_session)):
        return {"subject": session.subject}

The token is read from ``Authorization: Bearer <token>`` first, then from
the cookie ``cookie_name``. Answers (``HTTPException``, ``detail`` = the
code):

- 401 when there is no token (``WWW-Authenticate: Bearer``), or sessiond
  says ``invalid_token``, ``session_expired``, ``token_expired`` (an access
  JWT to refresh) or ``reauthentication_required`` (step-up), or the token
  is malformed (``WWW-Authenticate: Bearer error="invalid_token"``);
- 403 ``csrf_failed`` when the CSRF token does not match, and 403
  ``csrf_required`` when a cookie-authenticated request with an unsafe
  method (POST, PUT, PATCH, DELETE…) carries no ``X-CSRF-Token`` header
  (a bearer header is not sent by browsers on their own, so it needs none);
- 503 when sessiond or its store is unavailable (with ``Retry-After`` when
  known), 500 for anything else (a bad API key, say: a server fault).

The validated session and its CSRF token are also left in
``request.state.session`` and ``request.state.csrf_token``.
"""

# No `from __future__ import annotations` here: FastAPI reads the real
# annotation of __call__'s `request` parameter.
import math

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ._async import AsyncClient
from ._errors import Code, InvalidArgument, SessiondError
from ._models import ClientInfo, Session, Validated
from ._sync import Client

__all__ = ["SessionDependency"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_UNAUTHORIZED = {
    Code.INVALID_TOKEN,
    Code.SESSION_EXPIRED,
    Code.TOKEN_EXPIRED,
    Code.REAUTHENTICATION_REQUIRED,
}
_UNAVAILABLE = {Code.STORE_UNAVAILABLE, Code.UNAVAILABLE, Code.RATE_LIMITED, Code.BAD_RESPONSE}


class SessionDependency:
    """A FastAPI dependency (``Depends(SessionDependency(client))``) that
    returns the request's live :class:`~sessiond.Session`.

    - ``client``: a :class:`~sessiond.AsyncClient` (awaited) or a
      :class:`~sessiond.Client` (called in Starlette's thread pool).
    - ``cookie_name``: the cookie holding the session token (``None``:
      bearer header only). ``bearer``: read ``Authorization: Bearer``.
    - ``csrf_header``: the header with the CSRF token; sent to sessiond
      whenever present, and required for cookie-authenticated unsafe
      methods (``None``: never required nor sent).
    - ``max_age_secs`` / ``min_aal``: step-up requirements (401
      ``reauthentication_required`` when not met).
    - ``forward_client``: send the caller's IP and User-Agent for
      sessiond's fingerprint check (``policy.fingerprint``).
    - ``auto_error=False``: return ``None`` instead of a 401 when the
      request carries no token at all (optional sign-in).
    """

    def __init__(
        self,
        client: Client | AsyncClient,
        cookie_name: str | None = "session",
        *,
        bearer: bool = True,
        csrf_header: str | None = "X-CSRF-Token",
        max_age_secs: int | None = None,
        min_aal: int | None = None,
        forward_client: bool = False,
        auto_error: bool = True,
    ) -> None:
        if not isinstance(client, (Client, AsyncClient)):
            raise TypeError("client must be a sessiond.Client or sessiond.AsyncClient")
        if cookie_name is None and not bearer:
            raise ValueError("read the token from somewhere: a cookie_name or bearer=True")
        self.client = client
        self.cookie_name = cookie_name
        self.bearer = bearer
        self.csrf_header = csrf_header
        self.max_age_secs = max_age_secs
        self.min_aal = min_aal
        self.forward_client = forward_client
        self.auto_error = auto_error

    def __repr__(self) -> str:
        return f"SessionDependency({self.client!r}, cookie_name={self.cookie_name!r})"

    def _token(self, request: Request) -> tuple[str | None, bool]:
        """The token and whether it came from a cookie."""
        if self.bearer:
            auth = request.headers.get("authorization")
            if auth:
                scheme, _, value = auth.partition(" ")
                if scheme.lower() == "bearer" and value.strip():
                    return value.strip(), False
        if self.cookie_name is not None:
            cookie = request.cookies.get(self.cookie_name)
            if cookie:
                return cookie, True
        return None, False

    async def __call__(self, request: Request) -> Session:
        token, from_cookie = self._token(request)
        if token is None:
            if not self.auto_error:
                return None  # type: ignore[return-value]
            raise HTTPException(401, detail="unauthenticated", headers={"WWW-Authenticate": "Bearer"})
        csrf = request.headers.get(self.csrf_header) if self.csrf_header else None
        if (
            self.csrf_header is not None
            and from_cookie
            and request.method not in _SAFE_METHODS
            and not csrf
        ):
            raise HTTPException(403, detail="csrf_required")
        client_info = None
        if self.forward_client:
            client_info = ClientInfo(
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
        try:
            if isinstance(self.client, AsyncClient):
                validated: Validated = await self.client.validate(
                    token, csrf or None, client_info, self.max_age_secs, self.min_aal
                )
            else:
                validated = await run_in_threadpool(
                    self.client.validate, token, csrf or None, client_info, self.max_age_secs, self.min_aal
                )
        except InvalidArgument:
            # A token (or CSRF header) no sessiond token can be: whitespace,
            # control characters. Nothing was sent.
            raise HTTPException(
                401,
                detail=Code.INVALID_TOKEN,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None
        except SessiondError as e:
            raise _http_error(e) from None
        request.state.session = validated.session
        request.state.csrf_token = validated.csrf_token
        return validated.session


def _http_error(e: SessiondError) -> HTTPException:
    if e.code in _UNAUTHORIZED:
        return HTTPException(
            401,
            detail=e.code,
            headers={"WWW-Authenticate": f'Bearer error="{_bearer_error(e.code)}"'},
        )
    if e.code == Code.CSRF_FAILED:
        return HTTPException(403, detail=e.code)
    if e.code in _UNAVAILABLE:
        headers = None
        if e.retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(e.retry_after)))}
        return HTTPException(503, detail="session service unavailable", headers=headers)
    return HTTPException(500, detail="session service error")


def _bearer_error(code: str) -> str:
    # RFC 6750 error codes; step-up is RFC 9470's insufficient_user_authentication.
    if code == Code.REAUTHENTICATION_REQUIRED:
        return "insufficient_user_authentication"
    return "invalid_token"
