#!/usr/bin/env python3
"""How much does the client add to a validate call?

Times N validate calls through ``sessiond.Client.validate`` and N raw
``httpx.Client.post`` calls of the same request, interleaved, on the SAME
kept-alive connection (one ``httpx.Client`` with one connection, injected
into ``sessiond.Client``), against a local sessiond, and prints the median
microseconds per call of each and the difference. The target: the client
adds at most 50 µs.

    python bench_validate.py                 # starts sessiond itself (memory store)
    python bench_validate.py --n 5000
    python bench_validate.py --url http://127.0.0.1:7700 --key "$(cat sessiond-data/admin.key)"

The binary comes from --bin, SESSIOND_BIN, ../../target/release/sessiond or
../../target/debug/sessiond (relative to this file).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

import sessiond

HERE = Path(__file__).resolve().parent


def find_bin(arg: str | None) -> Path:
    for cand in (arg, os.environ.get("SESSIOND_BIN")):
        if cand:
            return Path(cand)
    for profile in ("release", "debug"):
        p = (HERE / ".." / ".." / "target" / profile / "sessiond").resolve()
        if p.is_file():
            return p
    sys.exit("no sessiond binary: pass --bin or set SESSIOND_BIN")


def start(binary: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    log = tmp / "sessiond.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_")}
    env.update(SESSIOND_LISTEN="127.0.0.1:0", SESSIOND_DATA_DIR=str(tmp / "data"), SESSIOND_STORE="memory")
    with open(log, "wb") as f:
        proc = subprocess.Popen([str(binary), "serve"], env=env, stdout=f, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"listening on (\S+)", log.read_text(errors="replace"))
        if m:
            key = (tmp / "data" / "admin.key").read_text().strip()
            return proc, f"http://{m.group(1)}", key
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    sys.exit("sessiond did not start:\n" + log.read_text(errors="replace"))


def offline(n: int, token: str, body: bytes) -> None:
    """The same comparison with no network at all (httpx.MockTransport
    answering a recorded validate body): the client's own CPU cost, without
    the noise of a loopback round trip on a busy machine."""

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    url = "http://sessiond.invalid"
    http = httpx.Client(transport=httpx.MockTransport(handler))
    sd = sessiond.Client(url, "sdk_offline", http_client=http)
    headers = {"Authorization": "Bearer sdk_offline"}
    fns = [
        ("raw", lambda: http.post(url + "/v1/sessions/validate", json={"token": token}, headers=headers)),
        ("client", lambda: sd.validate(token)),
    ]
    times: dict[str, list[float]] = {"raw": [], "client": []}
    clock = time.perf_counter_ns
    for i in range(n + 200):
        for name, fn in fns if i % 2 else fns[::-1]:
            t0 = clock()
            fn()
            if i >= 200:
                times[name].append((clock() - t0) / 1000.0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"no network (httpx.MockTransport), {n} calls each:")
    print(f"  raw httpx.Client.post           median {med['raw']:8.1f} µs/call")
    print(f"  sessiond.Client.validate        median {med['client']:8.1f} µs/call")
    print(f"  client overhead:                    {med['client'] - med['raw']:+8.1f} µs/call")
    http.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="calls of each kind (default 2000)")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--url")
    ap.add_argument("--key")
    ap.add_argument("--bin")
    args = ap.parse_args()

    proc = tmp = None
    url, key = args.url, args.key
    if url is None:
        tmp = Path(tempfile.mkdtemp(prefix="sessiond-bench-"))
        proc, url, key = start(find_bin(args.bin), tmp)
    assert key, "--key is required with --url"
    try:
        # One connection, kept alive, shared by both ways of calling.
        http = httpx.Client(timeout=5.0, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        sd = sessiond.Client(url, key, http_client=http)
        token = sd.create_session("bench-user", attributes={"cart": 3}).token
        validate_url = url.rstrip("/") + "/v1/sessions/validate"
        headers = {"Authorization": f"Bearer {key}"}

        def raw() -> None:
            r = http.post(validate_url, json={"token": token}, headers=headers)
            if r.status_code != 200:
                raise SystemExit(f"raw validate: {r.status_code} {r.text}")

        def raw_parsed() -> None:
            r = http.post(validate_url, json={"token": token}, headers=headers)
            if r.status_code != 200:
                raise SystemExit(f"raw validate: {r.status_code} {r.text}")
            r.json()

        def client() -> None:
            sd.validate(token)

        sample_body = http.post(validate_url, json={"token": token}, headers=headers).content

        for _ in range(args.warmup):
            raw()
            raw_parsed()
            client()
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1, "expected one kept-alive connection"

        times: dict[str, list[float]] = {"raw": [], "raw+json": [], "client": []}
        fns = [("raw", raw), ("raw+json", raw_parsed), ("client", client)]
        clock = time.perf_counter_ns
        for i in range(args.n):
            # rotate the order so that no kind always runs first
            k = i % 3
            for name, fn in fns[k:] + fns[:k]:
                t0 = clock()
                fn()
                times[name].append((clock() - t0) / 1000.0)
        assert len(pool.connections) == 1, "the connection was not kept alive"

        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"sessiond validate, {args.n} calls each, one kept-alive connection ({url})")
        print(f"  raw httpx.Client.post           median {med['raw']:8.1f} µs/call")
        print(f"  raw httpx.Client.post + .json() median {med['raw+json']:8.1f} µs/call")
        print(f"  sessiond.Client.validate        median {med['client']:8.1f} µs/call")
        print(f"  client overhead vs raw post:        {med['client'] - med['raw']:+8.1f} µs/call")
        print(f"  client overhead vs raw post+json:   {med['client'] - med['raw+json']:+8.1f} µs/call")
        sd.close()
        http.close()
        offline(args.n, token, sample_body)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
