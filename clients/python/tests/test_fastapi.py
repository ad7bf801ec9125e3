"""The FastAPI dependency against the real sessiond: Starlette's
TestClient (sync sessiond.Client) and httpx's ASGI transport (AsyncClient)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

import sessiond
from sessiond import Session
from sessiond.fastapi import SessionDependency

from .conftest import FakeServer, Sessiond, json_answer
from .test_lifecycle import new_subject


def make_app(sd: sessiond.Client | sessiond.AsyncClient, **kw) -> FastAPI:
    current = SessionDependency(sd, cookie_name="session", **kw)
    optional = SessionDependency(sd, cookie_name="session", auto_error=False)
    step_up = SessionDependency(sd, cookie_name="session", min_aal=2)
    app = FastAPI()

    @app.get("/me")
    async def me(request: Request, session: Session = Depends(current)) -> dict:
        assert request.state.session is session and request.state.csrf_token
        return {"id": session.id, "subject": session.subject, "attributes": session.attributes}

    @app.post("/cart")
    def add(session: Session = Depends(current)) -> dict:  # a sync route works too
        return {"id": session.id}

    @app.get("/maybe")
    async def maybe(session: Session | None = Depends(optional)) -> dict:
        return {"subject": session.subject if session else None}

    @app.get("/admin")
    async def admin(session: Session = Depends(step_up)) -> dict:
        return {"aal": session.aal}

    return app


def test_dependency_with_sync_client(sessiond_server: Sessiond) -> None:
    with sessiond.Client(sessiond_server.url, sessiond_server.key) as sd:
        subject = new_subject("web")
        s = sd.create_session(subject, attributes={"cart": 1})
        with TestClient(make_app(sd)) as web:
            # Bearer header.
            r = web.get("/me", headers={"Authorization": f"Bearer {s.token}"})
            assert r.status_code == 200, r.text
            assert r.json() == {"id": s.session.id, "subject": subject, "attributes": {"cart": 1}}
            # Cookie.
            r = web.get("/me", headers={"Cookie": f"session={s.token}"})
            assert r.status_code == 200 and r.json()["id"] == s.session.id
            # No token: 401 with a Bearer challenge.
            r = web.get("/me")
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert web.get("/maybe").json() == {"subject": None}
            assert web.get("/maybe", headers={"Cookie": f"session={s.token}"}).json() == {"subject": subject}
            # A token sessiond does not know, or a malformed one: 401.
            r = web.get("/me", headers={"Authorization": "Bearer ses_unknown"})
            assert r.status_code == 401 and r.json() == {"detail": "invalid_token"}
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
            r = web.get("/me", headers={"Authorization": "Bearer ses_bad\ttoken"})
            assert r.status_code == 401
            # CSRF: a cookie POST needs X-CSRF-Token, and the right one.
            r = web.post("/cart", headers={"Cookie": f"session={s.token}"})
            assert r.status_code == 403 and r.json() == {"detail": "csrf_required"}
            r = web.post("/cart", headers={"Cookie": f"session={s.token}", "X-CSRF-Token": "wrong"})
            assert r.status_code == 403 and r.json() == {"detail": "csrf_failed"}
            r = web.post("/cart", headers={"Cookie": f"session={s.token}", "X-CSRF-Token": s.csrf_token})
            assert r.status_code == 200 and r.json() == {"id": s.session.id}
            # A bearer POST needs none (browsers do not send it on their own).
            r = web.post("/cart", headers={"Authorization": f"Bearer {s.token}"})
            assert r.status_code == 200
            # Step-up: aal 1 < 2.
            r = web.get("/admin", headers={"Cookie": f"session={s.token}"})
            assert r.status_code == 401 and r.json() == {"detail": "reauthentication_required"}
            up = sd.upgrade(s.token, subject, aal=2)
            r = web.get("/admin", headers={"Cookie": f"session={up.token}"})
            assert r.status_code == 200 and r.json() == {"aal": 2}
            # Logout: the old cookie is dead.
            sd.revoke(up.token)
            assert web.get("/me", headers={"Cookie": f"session={up.token}"}).status_code == 401


@pytest.mark.anyio
async def test_dependency_with_async_client(sessiond_server: Sessiond) -> None:
    async with sessiond.AsyncClient(sessiond_server.url, sessiond_server.key) as sd:
        pair = await sd.create_session(new_subject("api"), issue="pair")
        app = make_app(sd)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as web:
            r = await web.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
            assert r.status_code == 200, r.text
            assert r.json()["id"] == pair.session.id
            await sd.revoke(pair.refresh_token)
            r = await web.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
            assert r.status_code == 401 and r.json() == {"detail": "invalid_token"}


def test_dependency_when_sessiond_is_down(fake_server: FakeServer) -> None:
    down = json_answer({"error": "store_unavailable", "message": "down"}, 503, {"Retry-After": "3"})
    with sessiond.Client(fake_server.url, "sdk_k") as sd, TestClient(make_app(sd)) as web:
        fake_server.answers[:] = [down]
        r = web.get("/me", headers={"Cookie": "session=ses_t"})
        assert r.status_code == 503 and r.headers["retry-after"] == "3"
        fake_server.answers[:] = [json_answer({"error": "unauthenticated", "message": "key"}, 401)]
        r = web.get("/me", headers={"Cookie": "session=ses_t"})
        assert r.status_code == 500  # our API key is wrong: a server fault, not the user's


def test_dependency_arguments() -> None:
    with pytest.raises(TypeError):
        SessionDependency(object())  # type: ignore[arg-type]
    with sessiond.Client("http://127.0.0.1:9", "sdk_k") as sd:
        with pytest.raises(ValueError):
            SessionDependency(sd, cookie_name=None, bearer=False)
        assert "sdk_k" not in repr(SessionDependency(sd))
