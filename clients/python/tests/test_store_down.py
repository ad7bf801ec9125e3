"""sessiond on a Redis store that goes away: 503 store_unavailable with
Retry-After, reads retried once, writes never (counted by sessiond's own
metrics)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

import sessiond
from sessiond import Code, SessiondError

from .conftest import Redis, start_sessiond


def test_store_down(throwaway_redis: Redis) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sessiond-py-redis-"))
    server = start_sessiond(
        {
            "SESSIOND_STORE": "redis",
            "SESSIOND_STORE_URL": f"redis://127.0.0.1:{throwaway_redis.port}",
            # The near-cache may serve a warm validation for the few ms
            # before sessiond notices its subscription is gone (docs/
            # multi-node.md, "No channel, no cache"): off, so every call
            # goes to the store.
            "SESSIOND_NEAR_CACHE": "false",
        },
        tmp,
    )
    try:
        with sessiond.Client(server.url, server.key) as c:
            created = c.create_session("redis-user")
            assert c.validate(created.token).session.id == created.session.id

            throwaway_redis.kill()
            deadline = time.monotonic() + 10
            while httpx.get(server.url + "/readyz", timeout=5).status_code != 503:
                assert time.monotonic() < deadline, "/readyz stayed ready with the store gone"
                time.sleep(0.05)

            t0 = time.monotonic()
            with pytest.raises(SessiondError) as info:
                c.validate(created.token)
            e = info.value
            assert (e.status, e.code) == (503, Code.STORE_UNAVAILABLE)
            assert e.retry_after is not None and 0 < e.retry_after <= 1
            # validate is a read: retried once, after Retry-After.
            assert time.monotonic() - t0 >= e.retry_after * 0.9
            assert server.metric("validate", "store_unavailable") == 2

            with pytest.raises(SessiondError) as info:
                c.get_session(created.session.id)
            assert info.value.code == Code.STORE_UNAVAILABLE
            assert server.metric("get", "store_unavailable") == 2

            # Writes are never retried.
            with pytest.raises(SessiondError) as info:
                c.create_session("redis-user")
            assert (info.value.status, info.value.code) == (503, Code.STORE_UNAVAILABLE)
            assert info.value.retry_after is not None
            assert server.metric("create", "store_unavailable") == 1
            with pytest.raises(SessiondError) as info:
                c.upgrade(created.token, "redis-user-2")
            assert info.value.code == Code.STORE_UNAVAILABLE
            assert server.metric("upgrade", "store_unavailable") == 1
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
