"""The async client against the real sessiond."""

from __future__ import annotations

import inspect

import anyio
import pytest

import sessiond
from sessiond import Code, Created, Pair, SessiondError

from .conftest import REFRESH_GRACE_SECS, SESSION_JSON, FakeServer, Sessiond, json_answer
from .test_lifecycle import new_subject

pytestmark = pytest.mark.anyio


async def test_async_lifecycle(sessiond_server: Sessiond) -> None:
    async with sessiond.AsyncClient(sessiond_server.url, sessiond_server.key) as c:
        subject = new_subject("async")
        anon = await c.create_session(attributes={"cart": 1})
        assert isinstance(anon, Created)
        v = await c.validate(anon.token)
        assert v.session.id == anon.session.id
        s = await c.patch_attributes(anon.session.id, {"cart": 2}, if_match=v.session.version)
        assert s.attributes == {"cart": 2}
        with pytest.raises(SessiondError) as info:
            await c.patch_attributes(anon.session.id, {"cart": 3}, if_match=v.session.version)
        assert info.value.code == Code.PRECONDITION_FAILED
        assert (await c.get_session(anon.session.id)).version == s.version

        login = await c.upgrade(anon.token, subject, keep_attributes=["cart"])
        with pytest.raises(SessiondError) as info:
            await c.validate(anon.token)
        assert info.value.code == Code.INVALID_TOKEN
        other = await c.create_session(subject)
        page = await c.list_sessions(subject)
        assert [x.id for x in page.sessions] == [other.session.id, login.session.id]
        assert await c.revoke_subject(subject, except_id=login.session.id) == 1
        await c.revoke(login.token)
        with pytest.raises(SessiondError) as info:
            await c.validate(login.token)
        assert info.value.code == Code.INVALID_TOKEN

        # Many validations at once over the kept pool.
        live = await c.create_session(subject)
        results = []

        async def one() -> None:
            results.append((await c.validate(live.token)).session.id)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
        assert results == [live.session.id] * 20
        await c.delete_session(live.session.id)


async def test_async_pair_refresh(sessiond_server: Sessiond) -> None:
    async with sessiond.AsyncClient(sessiond_server.url, sessiond_server.key) as c:
        pair = await c.create_session(new_subject("async"), issue="pair")
        assert isinstance(pair, Pair)
        nxt = await c.refresh(pair.refresh_token)
        assert (await c.refresh(pair.refresh_token)).refresh_token == nxt.refresh_token
        await anyio.sleep(REFRESH_GRACE_SECS + 0.3)
        with pytest.raises(SessiondError) as info:
            await c.refresh(pair.refresh_token)
        assert info.value.code == Code.REFRESH_TOKEN_REUSED


async def test_async_bad_response_and_retry(fake_server: FakeServer) -> None:
    from .conftest import Canned
    from .test_bad_answers import STORE_DOWN, VALIDATED

    async with sessiond.AsyncClient(fake_server.url, "sdk_k") as c:
        fake_server.answers[:] = [Canned(200, b"nope", {})]
        with pytest.raises(SessiondError) as info:
            await c.validate("ses_t")
        assert info.value.code == Code.BAD_RESPONSE
        fake_server.answers[:] = [STORE_DOWN, json_answer(VALIDATED)]
        assert (await c.validate("ses_t")).session.id == SESSION_JSON["id"]
        fake_server.answers[:] = [STORE_DOWN, json_answer(VALIDATED)]
        with pytest.raises(SessiondError):
            await c.create_session()
        assert len(fake_server.requests) == 4
        with pytest.raises(sessiond.InvalidArgument):
            await c.validate("")
        assert len(fake_server.requests) == 4


async def test_async_unavailable() -> None:
    from .conftest import free_port

    async with sessiond.AsyncClient(f"http://127.0.0.1:{free_port()}", "sdk_k") as c:
        with pytest.raises(SessiondError) as info:
            await c.validate("ses_t")
    assert info.value.code == Code.UNAVAILABLE


def test_sync_and_async_have_the_same_methods() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            n: inspect.signature(f)
            for n, f in inspect.getmembers(cls, inspect.isfunction)
            if not n.startswith("_") and n != "close"
        }

    sync, asyn = public(sessiond.Client), public(sessiond.AsyncClient)
    assert sync.keys() == asyn.keys()
    for name in sync:
        assert inspect.iscoroutinefunction(getattr(sessiond.AsyncClient, name)), name
        assert [p.name for p in sync[name].parameters.values()] == [
            p.name for p in asyn[name].parameters.values()
        ], name
    assert {
        "create_session", "validate", "upgrade", "refresh", "revoke", "get_session",
        "patch_attributes", "delete_session", "list_sessions", "revoke_subject",
        "upstream_token", "put_upstream_grant", "delete_upstream_grant",
    } <= sync.keys()
