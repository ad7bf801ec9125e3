"""Fixtures: a REAL sessiond (the binary from SESSIOND_BIN, else the
workspace's target/release or target/debug build), a throwaway Redis for
the store-down test, and tiny fake HTTP servers for bad answers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import sessiond

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # clients/python
IN_CI = os.environ.get("CI", "").lower() == "true"
REFRESH_GRACE_SECS = 1


def find_sessiond() -> Path:
    env = os.environ.get("SESSIOND_BIN")
    if env:
        p = Path(env)
        if not (p.is_file() and os.access(p, os.X_OK)):
            pytest.fail(f"SESSIOND_BIN={env} is not an executable file", pytrace=False)
        return p
    for profile in ("release", "debug"):
        p = (PACKAGE_DIR / ".." / ".." / "target" / profile / "sessiond").resolve()
        if p.is_file() and os.access(p, os.X_OK):
            return p
    pytest.fail(
        "no sessiond binary: set SESSIOND_BIN=/path/to/sessiond, or build it "
        "(cargo build --release -p sessiond; looked in ../../target/release and "
        "../../target/debug relative to clients/python)",
        pytrace=False,
    )
    raise AssertionError  # unreachable


@dataclass
class Sessiond:
    """A running sessiond: ``url``, the admin ``key``, its data dir."""

    proc: subprocess.Popen[bytes]
    url: str
    key: str
    data_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, operation: str, outcome: str) -> int:
        """One sessiond_requests_total counter (0 when absent)."""
        import httpx

        text = httpx.get(self.url + "/metrics", timeout=5).text
        m = re.search(
            rf'^sessiond_requests_total\{{operation="{operation}",outcome="{outcome}"\}} (\d+)$',
            text,
            re.M,
        )
        return int(m.group(1)) if m else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_sessiond(env_overrides: dict[str, str], tmp: Path) -> Sessiond:
    binary = find_sessiond()
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = tmp / "sessiond.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_")}
    env.update(
        {
            "SESSIOND_LISTEN": "127.0.0.1:0",  # sessiond logs the port it got
            "SESSIOND_DATA_DIR": str(data_dir),
            "NO_COLOR": "1",
        }
    )
    env.update(env_overrides)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(binary), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = time.monotonic() + 30
    addr = None
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        m = re.search(r"listening on (\d+\.\d+\.\d+\.\d+:\d+)", text)
        if m:
            addr = m.group(1)
            break
        if proc.poll() is not None:
            pytest.fail(f"sessiond exited with {proc.returncode} at start:\n{text}", pytrace=False)
        time.sleep(0.02)
    if addr is None:
        proc.kill()
        pytest.fail(f"sessiond did not say 'listening on' within 30 s:\n{log_path.read_text()}", pytrace=False)
    key = (data_dir / "admin.key").read_text().strip()
    return Sessiond(proc, f"http://{addr}", key, data_dir, log_path)


@pytest.fixture(scope="session")
def sessiond_server() -> Iterator[Sessiond]:
    """One sessiond (memory store) for most tests: refresh grace 1 s, and an
    upstream provider `idp` whose token endpoint is never called (grants are
    put with a long expiry)."""
    tmp = Path(tempfile.mkdtemp(prefix="sessiond-py-"))
    server = start_sessiond(
        {
            "SESSIOND_STORE": "memory",
            "SESSIOND_TOKENS__REFRESH_GRACE_SECS": str(REFRESH_GRACE_SECS),
            "SESSIOND_UPSTREAM__PROVIDERS__IDP__TOKEN_URL": "http://127.0.0.1:9/token",
            "SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_ID": "sessiond-py-tests",
        },
        tmp,
    )
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def client(sessiond_server: Sessiond) -> Iterator[sessiond.Client]:
    with sessiond.Client(sessiond_server.url, sessiond_server.key) as c:
        yield c


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Redis:
    proc: subprocess.Popen[bytes]
    port: int

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[Redis]:
    """A redis-server of its own on a free loopback port (never the shared
    6379), killed by the test or at teardown."""
    exe = shutil.which("redis-server")
    if exe is None:
        msg = "redis-server is not installed (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.02)
        else:
            proc.kill()
            proc.wait()
            continue  # the port was taken meanwhile: another one
        redis = Redis(proc, port)
        try:
            yield redis
        finally:
            redis.kill()
        return
    pytest.fail("could not start a throwaway redis-server", pytrace=False)


# -- a fake "sessiond" that answers whatever the test scripts ---------------


@dataclass
class Canned:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # None: len(body); more: a truncated answer
    hang: float = 0.0


@dataclass
class FakeServer:
    url: str
    answers: list[Canned]
    requests: list[tuple[str, str, bytes]]  # method, path, body


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    answers: list[Canned] = []
    requests: list[tuple[str, str, bytes]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _any(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            with lock:
                requests.append((self.command, self.path, body))
                a = answers.pop(0) if answers else Canned(500, b"no canned answer left")
            if a.hang:
                time.sleep(a.hang)
            self.send_response(a.status)
            for k, v in a.headers.items():
                self.send_header(k, v)
            length = len(a.body) if a.content_length is None else a.content_length
            self.send_header("Content-Length", str(length))
            if length != len(a.body):
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(a.body)
            self.wfile.flush()
            if length != len(a.body):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield FakeServer(f"http://127.0.0.1:{httpd.server_address[1]}", answers, requests)
    finally:
        httpd.shutdown()
        httpd.server_close()


def json_answer(obj: object, status: int = 200, headers: dict[str, str] | None = None) -> Canned:
    import json

    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return Canned(status, json.dumps(obj).encode(), h)


SESSION_JSON = {
    "id": "01a206c5-4b16-77f7-9fed-96f6158e123c",
    "subject": "user-1",
    "created_at": "2026-11-23T04:58:42.838Z",
    "last_seen_at": "2026-11-23T04:58:42.838Z",
    "idle_expires_at": "2026-11-23T05:28:42.838Z",
    "expires_at": "2026-12-23T04:58:42.838Z",
    "auth_time": "2026-11-23T04:58:42.838Z",
    "attributes": {"cart": 3},
    "client": {"ip": "192.0.2.1", "user_agent": "Mozilla/5.0", "device": "laptop"},
    "version": 1,
    "aal": 1,
    "amr": [],
}

