"""The whole session lifecycle against a real sessiond (sync client)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest

import sessiond
from sessiond import Code, Created, Pair, SessiondError, UpstreamGrant

from .conftest import REFRESH_GRACE_SECS, Sessiond


def new_subject(prefix: str = "user") -> str:
    # A "/" and a ":" on purpose: they must travel percent-encoded.
    return f"{prefix}/{uuid.uuid4().hex[:12]}:x"


def expect_error(code: str, status: int | None = None):
    class _Ctx:
        def __enter__(self):
            self.ctx = pytest.raises(SessiondError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.ctx.__exit__(*exc)
            assert self.info.value.code == code, repr(self.info.value)
            if status is not None:
                assert self.info.value.status == status, repr(self.info.value)
            return suppressed

    return _Ctx()


def test_lifecycle(client: sessiond.Client) -> None:
    subject = new_subject()

    # An anonymous visitor with a cart.
    anon = client.create_session(attributes={"cart": 2}, client={"user_agent": "UA/1", "device": "laptop"})
    assert isinstance(anon, Created)
    assert anon.session.subject is None and anon.session.anonymous
    assert anon.session.auth_time is None and anon.session.aal == 0
    assert anon.token.startswith("ses_") and anon.csrf_token
    assert anon.session.client.device == "laptop"
    assert anon.session.expires_at > datetime.now(timezone.utc)

    v = client.validate(anon.token)
    assert v.session.id == anon.session.id
    assert v.session.attributes == {"cart": 2}
    assert v.csrf_token == anon.csrf_token
    # With the right CSRF token too; a wrong one is csrf_failed.
    client.validate(anon.token, csrf_token=anon.csrf_token)
    with expect_error(Code.CSRF_FAILED, 403):
        client.validate(anon.token, csrf_token="not-the-csrf-token")

    # Read and patch with If-Match (the version is the ETag).
    got = client.get_session(anon.session.id)
    assert got.version == 1
    patched = client.patch_attributes(anon.session.id, {"theme": "dark", "cart": 3}, if_match=got.version)
    assert patched.version == 2
    assert patched.attributes == {"cart": 3, "theme": "dark"}
    with expect_error(Code.PRECONDITION_FAILED, 412):
        client.patch_attributes(anon.session.id, {"theme": "light"}, if_match=1)  # stale
    assert client.get_session(anon.session.id).attributes["theme"] == "dark"
    patched = client.patch_attributes(anon.session.id, {"theme": None}, if_match='"2"')  # null removes
    assert patched.attributes == {"cart": 3} and patched.version == 3
    assert client.patch_attributes(anon.session.id, {"a": 1}, if_match="*").version == 4

    # Log in: upgrade keeps the cart, rotates everything, kills the old token.
    login = client.upgrade(anon.token, subject, keep_attributes=["cart"], aal=2, amr=["pwd", "otp"])
    assert isinstance(login, Created)
    assert login.session.id != anon.session.id and login.token != anon.token
    assert login.session.subject == subject
    assert login.session.attributes == {"cart": 3}
    assert login.session.aal == 2 and login.session.amr == ("pwd", "otp")
    assert login.session.auth_time is not None
    with expect_error(Code.INVALID_TOKEN, 401):
        client.validate(anon.token)
    with expect_error(Code.NOT_FOUND, 404):
        client.get_session(anon.session.id)
    assert client.validate(login.token, min_aal=2, max_age_secs=60).session.id == login.session.id
    with expect_error(Code.REAUTHENTICATION_REQUIRED, 401):
        client.validate(login.token, min_aal=3)

    # Two more devices; the device list, newest first, paged.
    phone = client.create_session(subject, client={"device": "phone"})
    tablet = client.create_session(subject, client={"device": "tablet"})
    page = client.list_sessions(subject, limit=2)
    assert [s.id for s in page.sessions] == [tablet.session.id, phone.session.id]
    assert page.next_cursor is not None
    rest = client.list_sessions(subject, limit=2, cursor=page.next_cursor)
    assert [s.id for s in rest.sessions] == [login.session.id]
    assert rest.next_cursor is None
    assert client.get_subject_session(subject, phone.session.id).client.device == "phone"
    with expect_error(Code.NOT_FOUND, 404):
        client.get_subject_session(new_subject(), phone.session.id)

    subjects = client.list_subjects(limit=1000)
    assert any(s.subject == subject and s.sessions == 3 for s in subjects.subjects)

    # "Log out other devices".
    assert client.revoke_subject(subject, except_id=login.session.id) == 2
    for dead in (phone, tablet):
        with expect_error(Code.INVALID_TOKEN, 401):
            client.validate(dead.token)
    assert [s.id for s in client.list_sessions(subject).sessions] == [login.session.id]

    # Logout: the token is dead; logging out again is fine (idempotent).
    client.revoke(login.token)
    with expect_error(Code.INVALID_TOKEN, 401):
        client.validate(login.token)
    client.revoke(login.token)
    assert client.list_sessions(subject).sessions == []
    assert client.revoke_subject(subject) == 0


def test_revoked_and_unknown(client: sessiond.Client) -> None:
    subject = new_subject()
    a = client.create_session(subject)
    b = client.create_session(subject)
    # Revoke by id: the token dies at once; the tombstone still answers 204.
    client.delete_session(a.session.id)
    with expect_error(Code.INVALID_TOKEN, 401):
        client.validate(a.token)
    client.delete_session(a.session.id)
    with expect_error(Code.NOT_FOUND, 404):
        client.delete_session("01a206c5-4b16-77f7-9fed-96f6158e0000")
    with expect_error(Code.INVALID_REQUEST, 400):
        client.get_session("not-a-session-id")
    # An id with a "/" cannot escape its path segment.
    with expect_error(Code.INVALID_REQUEST, 400):
        client.get_session("../subjects")
    # By subject and id.
    with expect_error(Code.NOT_FOUND, 404):
        client.delete_subject_session(new_subject(), b.session.id)
    client.delete_subject_session(subject, b.session.id)
    with expect_error(Code.INVALID_TOKEN, 401):
        client.validate(b.token)
    # A made-up token, well formed or not.
    with expect_error(Code.INVALID_TOKEN, 401):
        client.validate("ses_" + "A" * 43)
    with expect_error(Code.INVALID_TOKEN, 401):
        client.revoke("garbage")
    # revoke_subject with an except that is not live: 404, nothing revoked.
    c = client.create_session(subject)
    with expect_error(Code.NOT_FOUND, 404):
        client.revoke_subject(subject, except_id=a.session.id)
    client.validate(c.token)
    assert client.revoke_subject(subject) == 1


def test_introspect(client: sessiond.Client) -> None:
    created = client.create_session(new_subject())
    i = client.introspect(created.token)
    assert i.active and i.sid == created.session.id and i.token_type == "session_token"
    client.revoke(created.token)
    assert client.introspect(created.token) == sessiond.Introspection(active=False)


def test_server_side_validation_errors(client: sessiond.Client) -> None:
    with expect_error(Code.INVALID_REQUEST, 400) as info:
        client.create_session(new_subject(), idle_timeout_secs=0)
    assert "idle_timeout_secs" in info.value.message
    with expect_error(Code.INVALID_REQUEST, 400):
        client.create_session(aal=2)  # assurance on an anonymous session
    with expect_error(Code.UNAUTHENTICATED, 401):
        with sessiond.Client(client.base_url, "sdk_wrong_key") as bad:
            bad.validate("ses_x")


def test_pair_refresh_rotation_and_reuse(client: sessiond.Client) -> None:
    subject = new_subject()
    pair = client.create_session(subject, issue="pair")
    assert isinstance(pair, Pair)
    assert pair.access_token.startswith("eyJ") and pair.refresh_token.startswith("rft_")
    assert pair.access_expires_at <= pair.session.expires_at
    assert client.validate(pair.access_token).session.id == pair.session.id
    with expect_error(Code.INVALID_TOKEN, 401):
        client.validate(pair.refresh_token)  # a refresh token only refreshes

    # Rotation: a new refresh token; the old one is now the previous one.
    first = client.refresh(pair.refresh_token)
    assert first.session.id == pair.session.id
    assert first.refresh_token != pair.refresh_token
    # A retry of the previous token inside the grace window: the SAME pair.
    again = client.refresh(pair.refresh_token)
    assert again.refresh_token == first.refresh_token
    assert again.access_token == first.access_token
    # Rotate on: first -> second; `pair.refresh_token` is now a grandparent.
    second = client.refresh(first.refresh_token)
    assert client.validate(second.access_token).session.id == pair.session.id

    # After the grace window, the old refresh token again: reuse, and the
    # whole session is revoked.
    time.sleep(REFRESH_GRACE_SECS + 0.3)
    with expect_error(Code.REFRESH_TOKEN_REUSED, 401) as info:
        client.refresh(first.refresh_token)
    assert info.value.sign_in_again
    with expect_error(Code.INVALID_TOKEN, 401):
        client.refresh(second.refresh_token)
    with expect_error(Code.INVALID_TOKEN, 401):
        client.validate(second.access_token)


def test_upgrade_to_pair_and_logout_with_refresh_token(client: sessiond.Client) -> None:
    anon = client.create_session()
    pair = client.upgrade(anon.token, new_subject(), issue="pair")
    assert isinstance(pair, Pair)
    with expect_error(Code.INVALID_TOKEN, 401):
        client.validate(anon.token)
    client.revoke(pair.refresh_token)  # any token of the session logs out
    with expect_error(Code.INVALID_TOKEN, 401):
        client.validate(pair.access_token)


def test_upstream_grants(client: sessiond.Client) -> None:
    s = client.create_session(new_subject())
    grant = UpstreamGrant(access_token="up-at-1", refresh_token="up-rt-1", expires_in=3600, scope="openid")
    client.put_upstream_grant("idp", s.token, grant)
    tok = client.upstream_token("idp", s.token)
    assert tok.access_token == "up-at-1" and tok.scope == "openid"
    assert tok.expires_at > datetime.now(timezone.utc)
    assert "up-at-1" not in repr(tok) and "up-rt-1" not in repr(grant)
    # A mapping works too; it replaces the earlier grant.
    client.put_upstream_grant("idp", s.token, {"access_token": "up-at-2", "expires_in": 3600})
    assert client.upstream_token("idp", s.token).access_token == "up-at-2"
    client.delete_upstream_grant("idp", s.token)
    with expect_error(Code.NOT_FOUND, 404):
        client.upstream_token("idp", s.token)
    client.delete_upstream_grant("idp", s.token)  # idempotent
    with expect_error(Code.NOT_FOUND, 404):
        client.upstream_token("unknown-provider", s.token)
    with expect_error(Code.INVALID_REQUEST, 400):
        client.put_upstream_grant("idp", s.token, {"access_token": "x"})  # no expiry
    # Logout drops the grants with the session.
    client.put_upstream_grant("idp", s.token, grant)
    client.revoke(s.token)
    with expect_error(Code.INVALID_TOKEN, 401):
        client.upstream_token("idp", s.token)


def test_reads_use_the_kept_connection(sessiond_server: Sessiond) -> None:
    """Connection reuse: many calls, one TCP connection."""
    import httpx

    opened = []
    transport = httpx.HTTPTransport()
    pool = transport._pool  # httpcore's pool: the connections it holds
    with sessiond.Client(sessiond_server.url, sessiond_server.key, transport=transport) as c:
        created = c.create_session(new_subject())
        for _ in range(20):
            c.validate(created.token)
            opened.append(len(pool.connections))
    assert max(opened) == 1
