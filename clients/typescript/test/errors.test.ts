// Answers that are not sessiond's (garbage, truncated, none at all), the
// retry rules, and a real sessiond whose store is down.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, describe, test } from "node:test";
import { SessiondClient } from "@sessiond/client";
import {
  clientOf,
  fakeServer,
  freePort,
  json,
  rejectsWith,
  requestCount,
  startRedis,
  startSessiond,
  type FakeServer,
} from "./helpers.js";

const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function fake(
  handler: Parameters<typeof fakeServer>[0],
): Promise<{ s: FakeServer; c: SessiondClient }> {
  const s = await fakeServer(handler);
  servers.push(s);
  return { s, c: new SessiondClient({ baseUrl: s.url, apiKey: "sdk_test-key", timeoutMs: 1000 }) };
}

const TOKEN = "ses_" + "t".repeat(43);

describe("answers that are not sessiond's are bad_response", () => {
  test("HTML with 200", async () => {
    const { c } = await fake((_q, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>hello</html>");
    });
    const e = await rejectsWith(c.validate(TOKEN), "bad_response", 200);
    assert.ok(!e.message.includes("hello"));
  });

  test("JSON content type, body not JSON", async () => {
    const { c } = await fake((_q, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"session": {"id": "x"');
    });
    await rejectsWith(c.getSession("id"), "bad_response", 200);
  });

  test("a body cut short (Content-Length not reached)", async () => {
    const { c } = await fake((_q, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "400" });
      res.write('{"session": {"id": "01a2');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await rejectsWith(c.validate(TOKEN), "bad_response", 200);
  });

  test("a chunked body cut short", async () => {
    const { c } = await fake((_q, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"sessions": [');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await rejectsWith(c.listSessions("user"), "bad_response", 200);
  });

  test("JSON of the wrong shape", async () => {
    const { c } = await fake((_q, res) => json(res, 200, { hello: "world" }));
    await rejectsWith(c.validate(TOKEN), "bad_response", 200);
    await rejectsWith(c.createSession(), "bad_response", 200);
    await rejectsWith(c.revokeAll("user"), "bad_response", 200);
    const { c: c2 } = await fake((_q, res) => json(res, 200, [1, 2]));
    await rejectsWith(c2.listSessions("user"), "bad_response", 200);
  });

  test("an error status without sessiond's error body (a proxy's 502 page)", async () => {
    const { c } = await fake((_q, res) => {
      res.writeHead(502, { "content-type": "text/html", "retry-after": "3" });
      res.end("<h1>Bad Gateway</h1>");
    });
    const e = await rejectsWith(c.revoke(TOKEN), "bad_response", 502);
    assert.equal(e.retryAfter, 3);
  });

  test("a redirect is not followed", async () => {
    const { s, c } = await fake((_q, res) => {
      res.writeHead(307, { location: "http://127.0.0.1:1/elsewhere" });
      res.end();
    });
    await rejectsWith(c.validate(TOKEN), "bad_response", 307);
    assert.equal(s.requests.length, 1);
  });

  test("an error message never repeats a token or the API key", async () => {
    const { c } = await fake((_q, res, body) =>
      json(res, 401, {
        error: "invalid_token",
        message: `bad ${body} with sdk_test-key and ses_otherothertoken`,
      }),
    );
    const e = await rejectsWith(c.validate(TOKEN), "invalid_token", 401);
    assert.ok(!e.message.includes(TOKEN), e.message);
    assert.ok(!e.message.includes("sdk_test-key"), e.message);
    assert.ok(!e.message.includes("ses_otherothertoken"), e.message);
    assert.ok(!String(e.stack).includes(TOKEN));
  });
});

describe("no answer is unavailable", () => {
  test("connection refused", async () => {
    const port = await freePort();
    const c = new SessiondClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "k" });
    const e = await rejectsWith(c.validate(TOKEN), "unavailable", 0);
    assert.match(e.message, /ECONNREFUSED/);
  });

  test("a server that never answers: the timeout", async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const { port } = silent.address() as { port: number };
    try {
      const c = new SessiondClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "k", timeoutMs: 200 });
      const t0 = Date.now();
      const e = await rejectsWith(c.getSession("id"), "unavailable", 0);
      assert.match(e.message, /200 ms/);
      assert.ok(Date.now() - t0 < 4000);
    } finally {
      silent.close();
    }
  });

  test("an answer that stops halfway: the timeout covers the body", async () => {
    const { s } = await fake((_q, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write("{");
    });
    const c = new SessiondClient({ baseUrl: s.url, apiKey: "k", timeoutMs: 300 });
    await rejectsWith(c.validate(TOKEN), "unavailable", 0);
  });
});

describe("retries", () => {
  const down = (retryAfter: string) => (_q: unknown, res: Parameters<typeof json>[0]) =>
    json(res, 503, { error: "store_unavailable", message: "down" }, { "retry-after": retryAfter });

  test("GETs and validate: once, on 503 store_unavailable, waiting Retry-After capped at 1 s", async () => {
    const { s, c } = await fake(down("30"));
    const t0 = Date.now();
    const e = await rejectsWith(c.validate(TOKEN), "store_unavailable", 503);
    const took = Date.now() - t0;
    assert.equal(e.retryAfter, 30);
    assert.equal(s.requests.length, 2);
    assert.ok(took >= 950 && took < 5000, `waited ${took} ms`);

    const { s: s0, c: c0 } = await fake(down("0"));
    await rejectsWith(c0.listSessions("user"), "store_unavailable", 503);
    assert.equal(s0.requests.length, 2);
    await rejectsWith(c0.getSession("id"), "store_unavailable", 503);
    assert.equal(s0.requests.length, 4);
    await rejectsWith(c0.listSubjects(), "store_unavailable", 503);
    assert.equal(s0.requests.length, 6);
  });

  test("a retry that succeeds returns the answer", async () => {
    let n = 0;
    const session = { id: "01a249f2-b249-77a3-ab67-da6aeb8c4af3" };
    const { s, c } = await fake((_q, res) => {
      n += 1;
      if (n === 1) json(res, 503, { error: "store_unavailable", message: "down" }, { "retry-after": "0" });
      else json(res, 200, { session, csrf_token: "c" });
    });
    assert.equal((await c.validate(TOKEN)).session.id, session.id);
    assert.equal(s.requests.length, 2);
  });

  test("writes are never retried: create, upgrade, refresh, revoke, patch", async () => {
    const { s, c } = await fake(down("0"));
    await rejectsWith(c.createSession({ subject: "u" }), "store_unavailable");
    await rejectsWith(c.upgrade(TOKEN, "u"), "store_unavailable");
    await rejectsWith(c.refresh("rft_" + "r".repeat(91)), "store_unavailable");
    await rejectsWith(c.revoke(TOKEN), "store_unavailable");
    await rejectsWith(c.patchAttributes("id", { a: 1 }), "store_unavailable");
    await rejectsWith(c.revokeAll("u"), "store_unavailable");
    assert.equal(s.requests.length, 6);
  });

  test("other errors are not retried", async () => {
    const { s, c } = await fake((_q, res) =>
      json(res, 503, { error: "upstream_unavailable", message: "x" }, { "retry-after": "0" }),
    );
    await rejectsWith(c.validate(TOKEN), "upstream_unavailable");
    assert.equal(s.requests.length, 1);
  });
});

describe("a real sessiond whose store is down", () => {
  test("503 store_unavailable with retryAfter; safe calls retried once, writes never", async () => {
    const redis = await startRedis();
    const sd = await startSessiond({ env: { SESSIOND_STORE: "redis", SESSIOND_STORE_URL: redis.url } });
    try {
      const client = clientOf(sd);
      const s = await client.createSession({ subject: "store-down-user" });
      await client.validate(s.token);

      await redis.kill();
      const validatesBefore = await requestCount(sd.url, "validate", "store_unavailable");
      const t0 = Date.now();
      const e = await rejectsWith(client.validate(s.token), "store_unavailable", 503);
      const took = Date.now() - t0;
      assert.ok(e.retryAfter !== undefined && e.retryAfter >= 1, `retryAfter ${e.retryAfter}`);
      assert.ok(took >= 900, `the retry waited only ${took} ms`);
      assert.equal((await requestCount(sd.url, "validate", "store_unavailable")) - validatesBefore, 2);

      const createsBefore = await requestCount(sd.url, "create", "store_unavailable");
      const ce = await rejectsWith(
        client.createSession({ subject: "store-down-user" }),
        "store_unavailable",
        503,
      );
      assert.ok(ce.retryAfter !== undefined);
      assert.equal((await requestCount(sd.url, "create", "store_unavailable")) - createsBefore, 1);

      await rejectsWith(client.listSessions("store-down-user"), "store_unavailable", 503);
    } finally {
      await sd.stop();
      await redis.kill();
    }
  });
});
