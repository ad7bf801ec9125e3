"""Bad input is refused before any request; tokens never travel in a URL
nor show in a repr or a log line."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

import sessiond
from sessiond import InvalidArgument

from .conftest import SESSION_JSON, Sessiond


class NoRequests(httpx.BaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raise AssertionError("a request was sent")


@pytest.fixture
def offline() -> tuple[sessiond.Client, NoRequests]:
    t = NoRequests()
    return sessiond.Client("http://127.0.0.1:9", "sdk_test_key", transport=t), t


BAD_TOKENS = ["", " ", "ses_abc def", "ses_abc\n", "\tses_abc", "ses_\x00abc", "ses_\x7f", "ses_\u00a0x", "ses_\u2028x"]


@pytest.mark.parametrize("bad", BAD_TOKENS)
def test_bad_tokens_refused_without_a_request(offline, bad: str) -> None:
    c, t = offline
    calls = [
        lambda: c.validate(bad),
        lambda: c.validate("ses_ok", csrf_token=bad),
        lambda: c.upgrade(bad, "user-1"),
        lambda: c.refresh(bad),
        lambda: c.revoke(bad),
        lambda: c.introspect(bad),
        lambda: c.upstream_token("idp", bad),
        lambda: c.put_upstream_grant("idp", bad, {"access_token": "a", "expires_in": 5}),
        lambda: c.put_upstream_grant("idp", "ses_ok", {"access_token": bad, "expires_in": 5}),
        lambda: c.delete_upstream_grant("idp", bad),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument) as info:
            call()
        assert isinstance(info.value, ValueError)
        if bad.strip():
            assert bad not in str(info.value)  # never echoes the value
    assert t.requests == []


@pytest.mark.parametrize(
    "bad",
    ["", "a" * 256, "é" * 128, "user\x00", "user\n1", "user\u202e1", "user\u200b", 7, None],
)
def test_bad_subjects_refused_without_a_request(offline, bad) -> None:
    c, t = offline
    calls = [
        lambda: c.upgrade("ses_ok", bad),
        lambda: c.list_sessions(bad),
        lambda: c.revoke_subject(bad),
        lambda: c.get_subject_session(bad, "id"),
        lambda: c.delete_subject_session(bad, "id"),
    ]
    if bad is not None:  # None is "anonymous" for create
        calls.append(lambda: c.create_session(bad))
    for call in calls:
        with pytest.raises(InvalidArgument):
            call()
    assert t.requests == []


def test_subject_limit_is_255_utf8_bytes(sessiond_server: Sessiond) -> None:
    with sessiond.Client(sessiond_server.url, sessiond_server.key) as c:
        ok = "é" * 127 + "a"  # 255 bytes
        assert c.create_session(ok).session.subject == ok
        with pytest.raises(InvalidArgument):
            c.create_session(ok + "a")  # 256 bytes


def test_other_bad_arguments(offline) -> None:
    c, t = offline
    with pytest.raises(InvalidArgument):
        c.create_session(issue="both")  # type: ignore[call-overload]
    with pytest.raises(InvalidArgument):
        c.create_session(attributes=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        c.create_session(idle_timeout_secs=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        c.create_session(idle_timeout_secs=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        c.create_session(attributes={"x": float("nan")})
    with pytest.raises(InvalidArgument):
        c.create_session(attributes={"x": object()})
    with pytest.raises(InvalidArgument):
        c.create_session(client={"browser": "x"})
    with pytest.raises(InvalidArgument):
        c.validate("ses_ok", client={"device": "x"})  # validate takes ip and user_agent only
    with pytest.raises(InvalidArgument):
        c.upgrade("ses_ok", "user-1", keep_attributes="cart")  # a str is not a list
    with pytest.raises(InvalidArgument):
        c.patch_attributes("id", [1])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        c.patch_attributes("id", {}, if_match="bad etag")
    with pytest.raises(InvalidArgument):
        c.get_session("")
    for bad in ("IDP", "", "a/b", "x" * 65, "../token"):
        with pytest.raises(InvalidArgument):
            c.upstream_token(bad, "ses_ok")
    assert t.requests == []
    for bad_url in ("127.0.0.1:7700", "ftp://x", "http://x?q=1", ""):
        with pytest.raises(InvalidArgument):
            sessiond.Client(bad_url, "sdk_k")
    with pytest.raises(InvalidArgument):
        sessiond.Client("http://x", "")
    with pytest.raises(InvalidArgument):
        sessiond.Client("http://x", "key with space")


class Recording(httpx.BaseTransport):
    """Answers like sessiond would, keeping every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/base")
        if request.method == "GET" and path.startswith("/v1/subjects/"):
            return httpx.Response(200, json={"sessions": [SESSION_JSON], "next_cursor": None})
        if request.method == "DELETE" and path.startswith("/v1/subjects/"):
            return httpx.Response(200, json={"revoked": 2})
        if path == "/v1/sessions/revoke":
            return httpx.Response(204)
        if path == "/v1/tokens/refresh":
            return httpx.Response(200, json=PAIR_JSON)
        if path.startswith("/v1/upstream/") and path.endswith("/token"):
            return httpx.Response(
                200, json={"access_token": "UPSTREAM_SECRET", "expires_at": "2026-12-23T04:58:42.838Z", "scope": None}
            )
        if path.startswith("/v1/upstream/"):
            return httpx.Response(204)
        return httpx.Response(200, json={"session": SESSION_JSON, "token": "ses_SECRET1", "csrf_token": "CSRF_SECRET"})


PAIR_JSON = {
    "session": SESSION_JSON,
    "access_token": "eyJ.ACCESS_SECRET.sig",
    "access_expires_at": "2026-12-05T08:12:09.000Z",
    "refresh_token": "rft_REFRESH_SECRET",
    "csrf_token": "CSRF_SECRET",
}


def test_tokens_travel_only_in_bodies_and_never_show(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    t = Recording()
    secret = "ses_TOKEN_SECRET"
    c = sessiond.Client("http://127.0.0.1:9/base/", "sdk_API_KEY_SECRET", transport=t)
    created = c.create_session("team/alice")
    v = c.validate(secret, csrf_token="CSRF_IN")
    c.upgrade(secret, "team/alice")
    c.revoke(secret)
    p = c.refresh("rft_REFRESH_IN")
    c.put_upstream_grant("idp", secret, sessiond.UpstreamGrant("UP_AT", "UP_RT", expires_in=60, id_token="ID_TOK"))
    up = c.upstream_token("idp", secret)
    c.delete_upstream_grant("idp", secret)
    c.list_sessions("team/alice", limit=5, cursor="abc")
    assert c.revoke_subject("team/alice", except_id="01a206c5-4b16-77f7-9fed-96f6158e123c") == 2

    secrets = ["TOKEN_SECRET", "CSRF_IN", "REFRESH_IN", "UP_AT", "UP_RT", "ID_TOK"]
    for r in t.requests:
        url = str(r.url)
        assert url.startswith("http://127.0.0.1:9/base/v1/")
        for s in secrets:
            assert s not in url
        assert r.headers["authorization"] == "Bearer sdk_API_KEY_SECRET"
    bodies = [json.loads(r.content) for r in t.requests if r.content]
    assert {"token": secret, "csrf_token": "CSRF_IN"} in bodies
    assert {"refresh_token": "rft_REFRESH_IN"} in bodies
    # Subjects are percent-encoded ("/" as %2F).
    list_req = next(r for r in t.requests if r.method == "GET")
    assert list_req.url.raw_path == b"/base/v1/subjects/team%2Falice/sessions?limit=5&cursor=abc"
    revoke_req = next(r for r in t.requests if r.method == "DELETE" and b"subjects" in r.url.raw_path)
    assert revoke_req.url.raw_path.startswith(b"/base/v1/subjects/team%2Falice/sessions?except=")

    shown = " ".join([repr(created), str(created), repr(v), repr(p), repr(up), repr(c), str(created.session)])
    shown += " ".join(rec.getMessage() for rec in caplog.records)
    for s in ["ses_SECRET1", "CSRF_SECRET", "ACCESS_SECRET", "REFRESH_SECRET", "UPSTREAM_SECRET", "API_KEY_SECRET"]:
        assert s not in shown
    # ...while the values are there to use.
    assert created.token == "ses_SECRET1" and p.refresh_token == "rft_REFRESH_SECRET"
    assert up.access_token == "UPSTREAM_SECRET" and up.scope is None
