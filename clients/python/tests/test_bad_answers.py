"""Answers that are not what the v1 API promises, transport failures, and
the retry rule, against tiny local HTTP servers (and a closed port)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import sessiond
from sessiond import Code, SessiondError

from .conftest import SESSION_JSON, Canned, FakeServer, free_port, json_answer

VALIDATED = {"session": SESSION_JSON, "csrf_token": "c"}
STORE_DOWN = json_answer(
    {"error": "store_unavailable", "message": "the session store is unavailable; retry later"},
    503,
    {"Retry-After": "0"},
)


def client_for(fake: FakeServer, **kw) -> sessiond.Client:
    return sessiond.Client(fake.url, "sdk_test_key", **kw)


@pytest.mark.parametrize(
    "answer",
    [
        Canned(200, b"<html>hello</html>", {"Content-Type": "text/html"}),
        Canned(200, b"garbage \xff\xfe", {}),
        Canned(200, b'{"session": {"id": "x"', {"Content-Type": "application/json"}),  # cut JSON
        Canned(200, b"", {}),
        Canned(200, b"[1, 2]", {"Content-Type": "application/json"}),
        json_answer({"session": {**SESSION_JSON, "version": "1"}, "csrf_token": "c"}),  # wrong type
        json_answer({"session": {**SESSION_JSON, "created_at": "yesterday"}, "csrf_token": "c"}),
        json_answer({"csrf_token": "c"}),  # no session
        Canned(200, b'{"session": {}, "csrf_token": "c", "pad": "' + b"x" * 50, {}, content_length=500),  # truncated
        Canned(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"}),  # a proxy's page
        Canned(401, b'{"error": 3}', {"Content-Type": "application/json"}),
        Canned(302, b"", {"Location": "http://example.invalid/"}),
    ],
)
def test_unusable_answer_is_bad_response(fake_server: FakeServer, answer: Canned) -> None:
    fake_server.answers.append(answer)
    with client_for(fake_server) as c, pytest.raises(SessiondError) as info:
        c.validate("ses_token")
    e = info.value
    assert e.code == Code.BAD_RESPONSE, repr(e)
    assert e.status == answer.status
    assert "ses_token" not in str(e)
    assert len(fake_server.requests) == 1


def test_bad_response_on_every_kind_of_call(fake_server: FakeServer) -> None:
    with client_for(fake_server) as c:
        for call in (
            lambda: c.create_session("u"),
            lambda: c.create_session("u", issue="pair"),
            lambda: c.upgrade("ses_t", "u"),
            lambda: c.refresh("rft_t"),
            lambda: c.get_session("id"),
            lambda: c.patch_attributes("id", {"a": 1}),
            lambda: c.list_sessions("u"),
            lambda: c.list_subjects(),
            lambda: c.revoke_subject("u"),
            lambda: c.introspect("t"),
            lambda: c.upstream_token("idp", "t"),
        ):
            fake_server.answers.append(Canned(200, b"not json", {}))
            with pytest.raises(SessiondError) as info:
                call()
            assert info.value.code == Code.BAD_RESPONSE


def test_sessiond_error_fields(fake_server: FakeServer) -> None:
    fake_server.answers.append(
        json_answer({"error": "rate_limited", "message": "slow down"}, 429, {"Retry-After": "7"})
    )
    with client_for(fake_server) as c, pytest.raises(SessiondError) as info:
        c.create_session()
    e = info.value
    assert (e.status, e.code, e.message, e.retry_after) == (429, "rate_limited", "slow down", 7.0)
    assert str(e) == "429 rate_limited: slow down (retry after 7 s)"


def test_connection_refused_is_unavailable() -> None:
    port = free_port()  # nothing listens there
    with sessiond.Client(f"http://127.0.0.1:{port}", "sdk_k") as c, pytest.raises(SessiondError) as info:
        c.validate("ses_t")
    e = info.value
    assert e.code == Code.UNAVAILABLE and e.status is None
    assert e.__cause__ is not None  # the httpx exception


def test_timeout_is_unavailable(fake_server: FakeServer) -> None:
    fake_server.answers.append(Canned(200, b"{}", {}, hang=1.0))
    with client_for(fake_server, timeout=0.2) as c, pytest.raises(SessiondError) as info:
        c.get_session("id")
    assert info.value.code == Code.UNAVAILABLE
    assert "Timeout" in info.value.message


def test_connection_dropped_without_answer_is_unavailable() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def drop() -> None:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.close()

    t = threading.Thread(target=drop, daemon=True)
    t.start()
    try:
        with sessiond.Client(f"http://127.0.0.1:{port}", "sdk_k") as c, pytest.raises(SessiondError) as info:
            c.create_session()
        assert info.value.code == Code.UNAVAILABLE
    finally:
        t.join(5)
        srv.close()


# -- retries ---------------------------------------------------------------


def test_reads_retried_once_on_store_unavailable(fake_server: FakeServer) -> None:
    with client_for(fake_server) as c:
        fake_server.answers[:] = [STORE_DOWN, json_answer(VALIDATED)]
        assert c.validate("ses_t").session.id == SESSION_JSON["id"]
        assert len(fake_server.requests) == 2

        fake_server.answers[:] = [STORE_DOWN, json_answer({"session": SESSION_JSON})]
        assert c.get_session("id").version == 1
        assert len(fake_server.requests) == 4

        # Only once: two 503s in a row raise.
        fake_server.answers[:] = [STORE_DOWN, STORE_DOWN, json_answer(VALIDATED)]
        with pytest.raises(SessiondError) as info:
            c.validate("ses_t")
        assert info.value.code == Code.STORE_UNAVAILABLE and info.value.retry_after == 0
        assert len(fake_server.requests) == 6


def test_retry_honours_a_short_retry_after(fake_server: FakeServer) -> None:
    down = json_answer(
        {"error": "store_unavailable", "message": "down"}, 503, {"Retry-After": "1"}
    )
    fake_server.answers[:] = [down, json_answer(VALIDATED)]
    with client_for(fake_server) as c:
        t0 = time.monotonic()
        c.validate("ses_t")
        assert 0.9 <= time.monotonic() - t0 < 3
    # Longer than the cap (retry_max_wait, 1 s by default): no retry.
    long_down = json_answer({"error": "store_unavailable", "message": "down"}, 503, {"Retry-After": "5"})
    fake_server.answers[:] = [long_down, json_answer(VALIDATED)]
    with client_for(fake_server) as c, pytest.raises(SessiondError) as info:
        c.validate("ses_t")
    assert info.value.retry_after == 5
    assert len(fake_server.requests) == 3
    # retry_max_wait=0 turns retries off (except Retry-After: 0).
    fake_server.answers[:] = [down, json_answer(VALIDATED)]
    with client_for(fake_server, retry_max_wait=0) as c, pytest.raises(SessiondError):
        c.validate("ses_t")


def test_writes_are_never_retried(fake_server: FakeServer) -> None:
    with client_for(fake_server) as c:
        for call in (
            lambda: c.create_session("u"),
            lambda: c.upgrade("ses_t", "u"),
            lambda: c.refresh("rft_t"),
            lambda: c.revoke("ses_t"),
            lambda: c.patch_attributes("id", {"a": 1}),
            lambda: c.delete_session("id"),
            lambda: c.revoke_subject("u"),
            lambda: c.upstream_token("idp", "ses_t"),
        ):
            before = len(fake_server.requests)
            fake_server.answers[:] = [STORE_DOWN, json_answer(VALIDATED)]
            with pytest.raises(SessiondError) as info:
                call()
            assert info.value.code == Code.STORE_UNAVAILABLE
            assert len(fake_server.requests) == before + 1


def test_other_errors_are_not_retried(fake_server: FakeServer) -> None:
    fake_server.answers[:] = [
        json_answer({"error": "internal_error", "message": "x"}, 500),
        json_answer(VALIDATED),
    ]
    with client_for(fake_server) as c, pytest.raises(SessiondError):
        c.validate("ses_t")
    assert len(fake_server.requests) == 1
