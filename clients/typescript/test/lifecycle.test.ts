// The client against a real sessiond: the whole session lifecycle, pairs
// and refresh rotation with reuse detection, revoked tokens, the upstream
// vault (with a stand-in provider), and arguments refused before any
// request.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { InvalidArgumentError, SessiondClient, SessiondError } from "@sessiond/client";
import {
  clientOf,
  fakeServer,
  json,
  rejectsWith,
  sleep,
  startSessiond,
  type FakeServer,
  type SessiondProcess,
} from "./helpers.js";

const GRACE_SECS = 1;

let sd: SessiondProcess;
let client: SessiondClient;
let provider: FakeServer;

before(async () => {
  // A stand-in OAuth token endpoint for the upstream vault: every refresh
  // answers a new access token.
  let n = 0;
  provider = await fakeServer((req, res, body) => {
    const form = new URLSearchParams(body);
    if (req.method !== "POST" || form.get("grant_type") !== "refresh_token") {
      json(res, 400, { error: "invalid_request" });
      return;
    }
    n += 1;
    json(res, 200, {
      access_token: `upstream-at-${n}`,
      token_type: "Bearer",
      expires_in: 3600,
      refresh_token: `upstream-rt-${n}`,
      scope: "api",
    });
  });
  sd = await startSessiond({
    env: {
      SESSIOND_TOKENS__REFRESH_GRACE_SECS: String(GRACE_SECS),
      SESSIOND_UPSTREAM__PROVIDERS__IDP__TOKEN_URL: `${provider.url}/token`,
      SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_ID: "sessiond",
      SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_SECRET: "test-secret",
    },
  });
  client = clientOf(sd);
});

after(async () => {
  await sd?.stop();
  await provider?.close();
});

describe("session lifecycle", () => {
  test("create, validate, patch with If-Match, upgrade, list, revoke others, logout", async () => {
    // A visitor: an anonymous session with a cart.
    const anon = await client.createSession({ attributes: { cart: 2 }, client: { device: "laptop" } });
    assert.match(anon.token, /^ses_/);
    assert.equal(anon.session.subject, null);
    assert.equal(anon.session.version, 1);
    assert.deepEqual(anon.session.attributes, { cart: 2 });

    const v = await client.validate(anon.token);
    assert.equal(v.session.id, anon.session.id);
    assert.equal(v.csrf_token, anon.csrf_token);

    // Read with its ETag, then a compare-and-set patch.
    const read = await client.getSession(anon.session.id);
    assert.equal(read.etag, '"1"');
    const patched = await client.patchAttributes(anon.session.id, { theme: "dark" }, { ifMatch: read.etag });
    assert.equal(patched.etag, '"2"');
    assert.deepEqual(patched.session.attributes, { cart: 2, theme: "dark" });
    // The same (now stale) ETag again: refused, nothing written.
    const stale = await rejectsWith(
      client.patchAttributes(anon.session.id, { theme: "light" }, { ifMatch: read.etag }),
      "precondition_failed",
      412,
    );
    assert.equal(stale.retryAfter, undefined);
    // A version number works as If-Match too; null removes a key.
    const p3 = await client.patchAttributes(anon.session.id, { theme: null }, { ifMatch: 2 });
    assert.deepEqual(p3.session.attributes, { cart: 2 });
    assert.equal((await client.getSession(anon.session.id)).etag, '"3"');

    // Login: upgrade to a subject with a "/" in it, keeping the cart.
    const subject = `team/alice-${Date.now()}`;
    const login = await client.upgrade(anon.token, subject, { keep_attributes: ["cart"] });
    assert.notEqual(login.session.id, anon.session.id);
    assert.notEqual(login.token, anon.token);
    assert.equal(login.session.subject, subject);
    assert.deepEqual(login.session.attributes, { cart: 2 });
    // The old token is dead.
    await rejectsWith(client.validate(anon.token), "invalid_token", 401);
    await rejectsWith(client.getSession(anon.session.id), "not_found", 404);
    assert.equal((await client.validate(login.token)).session.subject, subject);

    // A second device; the device list, newest first, one per page.
    const phone = await client.createSession({ subject, client: { device: "phone" } });
    const page1 = await client.listSessions(subject, { limit: 1 });
    assert.equal(page1.sessions.length, 1);
    assert.equal(page1.sessions[0]!.id, phone.session.id);
    assert.ok(page1.next_cursor);
    const page2 = await client.listSessions(subject, { limit: 1, cursor: page1.next_cursor });
    assert.deepEqual(
      page2.sessions.map((s) => s.id),
      [login.session.id],
    );
    assert.equal(page2.next_cursor ?? null, null);
    const one = await client.getSubjectSession(subject, phone.session.id);
    assert.equal(one.session.client.device, "phone");
    await rejectsWith(client.getSubjectSession(`${subject}-other`, phone.session.id), "not_found", 404);

    // "Log out other devices".
    assert.equal(await client.revokeOthers(subject, login.session.id), 1);
    await rejectsWith(client.validate(phone.token), "invalid_token");
    assert.deepEqual(
      (await client.listSessions(subject)).sessions.map((s) => s.id),
      [login.session.id],
    );
    // `except` must be a live session of the subject: nothing is revoked.
    await rejectsWith(client.revokeOthers(subject, phone.session.id), "not_found", 404);
    assert.equal((await client.listSessions(subject)).sessions.length, 1);

    // Logout: the token is invalid from now on; logging out again is fine.
    await client.revoke(login.token);
    await rejectsWith(client.validate(login.token), "invalid_token", 401);
    await client.logout(login.token);
    assert.equal(await client.revokeAll(subject), 0);
    assert.deepEqual((await client.listSessions(subject)).sessions, []);
  });

  test("revokeAll, deleteSession, deleteSubjectSession; subjects with reserved characters", async () => {
    const subject = `tg:1 ?#&=%/é-${Date.now()}`;
    const a = await client.createSession({ subject });
    const b = await client.createSession({ subject });
    const c = await client.createSession({ subject });
    assert.equal((await client.listSessions(subject)).sessions.length, 3);
    const subjects = await client.listSubjects({ limit: 1000 });
    assert.ok(subjects.subjects.some((s) => s.subject === subject && s.sessions === 3));

    await client.deleteSession(a.session.id);
    await rejectsWith(client.validate(a.token), "invalid_token");
    await client.deleteSubjectSession(subject, b.session.id);
    await rejectsWith(client.validate(b.token), "invalid_token");
    await rejectsWith(client.deleteSubjectSession("someone-else", c.session.id), "not_found", 404);
    assert.equal(await client.revokeAll(subject), 1);
    await rejectsWith(client.validate(c.token), "invalid_token");
    await rejectsWith(client.deleteSession("01a249f2-b249-77a3-ab67-da6aeb8c4af3"), "not_found", 404);
    await rejectsWith(client.getSession("not-an-id"), "invalid_request", 400);
  });

  test("a revoked token is invalid everywhere", async () => {
    const s = await client.createSession({ subject: "revoked-user" });
    await client.revoke(s.token);
    await rejectsWith(client.validate(s.token), "invalid_token", 401);
    await rejectsWith(client.upgrade(s.token, "revoked-user"), "invalid_token", 401);
    assert.deepEqual(await client.introspect(s.token), { active: false });
    await rejectsWith(client.token("idp", s.token), "invalid_token", 401);
    // A made-up token: the same answer, and the error never shows the token.
    const forged = "ses_" + "A".repeat(43);
    const e = await rejectsWith(client.validate(forged), "invalid_token", 401);
    assert.ok(!e.message.includes(forged));
  });

  test("validate's options: csrf_token, step-up", async () => {
    const s = await client.createSession({ subject: "step-up-user", aal: 1, amr: ["pwd"] });
    assert.equal((await client.validate(s.token, { csrf_token: s.csrf_token })).session.aal, 1);
    await rejectsWith(client.validate(s.token, { csrf_token: "x".repeat(43) }), "csrf_failed", 403);
    await rejectsWith(client.validate(s.token, { min_aal: 2 }), "reauthentication_required", 401);
    const up = await client.upgrade(s.token, "step-up-user", { aal: 2, amr: ["pwd", "otp"] });
    assert.equal((await client.validate(up.token, { min_aal: 2 })).session.aal, 2);
  });

  test("a wrong API key is unauthenticated", async () => {
    const bad = new SessiondClient({ baseUrl: sd.url, apiKey: "sdk_wrong-key-wrong-key-wrong-key-wrong" });
    const e = await rejectsWith(bad.listSessions("x"), "unauthenticated", 401);
    assert.ok(!e.message.includes("sdk_wrong"));
  });
});

describe("pairs and refresh rotation", () => {
  test("refresh rotates; a retry inside the grace window gets the same pair; reuse after it revokes", async () => {
    const p0 = await client.createSession({ subject: "pair-user", issue: "pair" });
    assert.match(p0.refresh_token, /^rft_/);
    assert.equal(p0.access_token.split(".").length, 3);
    assert.equal((await client.validate(p0.access_token)).session.id, p0.session.id);
    assert.equal((await client.introspect(p0.access_token)).token_type, "access_token");

    const p1 = await client.refresh(p0.refresh_token);
    assert.notEqual(p1.refresh_token, p0.refresh_token);
    assert.equal(p1.session.id, p0.session.id);
    // A lost answer retried inside the grace window: the same pair, nothing written.
    const again = await client.refresh(p0.refresh_token);
    assert.equal(again.refresh_token, p1.refresh_token);
    assert.equal(again.access_token, p1.access_token);
    assert.equal((await client.validate(p1.access_token)).session.id, p0.session.id);

    // After the grace window the old token shows up again: reuse, and the
    // whole session is revoked.
    await sleep(GRACE_SECS * 1000 + 600);
    const e = await rejectsWith(client.refresh(p0.refresh_token), "refresh_token_reused", 401);
    assert.ok(!e.message.includes(p0.refresh_token));
    await rejectsWith(client.refresh(p1.refresh_token), "invalid_token", 401);
    await rejectsWith(client.validate(p1.access_token), "invalid_token", 401);
  });

  test("upgrade and logout take any token of a pair session", async () => {
    const p = await client.createSession({ issue: "pair" });
    const up = await client.upgrade(p.refresh_token, "pair-user-2", { issue: "pair" });
    assert.match(up.refresh_token, /^rft_/);
    assert.equal(up.session.subject, "pair-user-2");
    await rejectsWith(client.validate(p.access_token), "invalid_token");
    await client.revoke(up.access_token);
    await rejectsWith(client.refresh(up.refresh_token), "invalid_token");
  });
});

describe("upstream vault", () => {
  test("putGrant, token (refreshed once at the provider), deleteGrant", async () => {
    const s = await client.createSession({ subject: "vault-user" });
    // Expires within the provider's refresh buffer (60 s): refreshed on use.
    await client.putGrant("idp", s.token, {
      access_token: "upstream-at-0",
      refresh_token: "upstream-rt-0",
      expires_in: 30,
    });
    const t1 = await client.token("idp", s.token);
    assert.equal(t1.access_token, "upstream-at-1");
    assert.equal(t1.scope, "api");
    assert.ok(Date.parse(t1.expires_at) > Date.now() + 3000 * 1000);
    // Still fresh: no second provider call.
    assert.equal((await client.token("idp", s.token)).access_token, "upstream-at-1");
    assert.equal(provider.requests.length, 1);
    assert.equal(new URLSearchParams(provider.requests[0]!.body).get("refresh_token"), "upstream-rt-0");

    await client.deleteGrant("idp", s.token);
    await rejectsWith(client.token("idp", s.token), "not_found", 404);
    await client.deleteGrant("idp", s.token);
    await rejectsWith(client.token("nosuchidp", s.token), "not_found", 404);
    const e = await rejectsWith(
      client.putGrant("idp", s.token, { access_token: "x", expires_in: 0 }),
      "invalid_request",
      400,
    );
    assert.match(e.message, /grant\.expires_in/);
  });
});

describe("bad input is refused before any request", () => {
  test("tokens, subjects, ids and options", async () => {
    // A stand-in for sessiond that counts what reaches it.
    const counter = await fakeServer((_req, res) => json(res, 200, { sessions: [], next_cursor: null }));
    try {
      const c = new SessiondClient({ baseUrl: counter.url, apiKey: "sdk_test" });
      const secret = "ses_secretsecretsecret";
      const refused: [string, () => Promise<unknown>][] = [
        ["empty token", () => c.validate("")],
        ["token with a space", () => c.validate(`${secret} x`)],
        ["token with a newline", () => c.validate(`${secret}\n`)],
        ["token with a tab", () => c.revoke(`\t${secret}`)],
        ["token with a NUL", () => c.upgrade(`${secret}\u0000`, "user")],
        ["token with DEL", () => c.introspect(`${secret}\u007f`)],
        ["non-ASCII token", () => c.validate(`${secret}é`)],
        ["token not a string", () => c.validate(42 as unknown as string)],
        ["empty refresh token", () => c.refresh("")],
        ["refresh token with whitespace", () => c.refresh(`rft_ ${secret}`)],
        ["empty upstream session token", () => c.token("idp", "")],
        ["bad provider", () => c.token("IdP/../x", secret)],
        ["empty subject", () => c.listSessions("")],
        ["subject over 255 bytes", () => c.listSessions("é".repeat(128))],
        ["subject over 255 bytes (ASCII)", () => c.revokeAll("a".repeat(256))],
        ["subject with a control character", () => c.revokeAll("user\u0001")],
        ["subject with a zero-width space", () => c.listSessions("us\u200ber")],
        ["lone surrogate", () => c.listSessions("user\ud800")],
        ["upgrade to an empty subject", () => c.upgrade(secret, "")],
        ["upgrade to a long subject", () => c.upgrade(secret, "x".repeat(300))],
        ["create with an empty subject", () => c.createSession({ subject: "" })],
        [
          "create with attributes not an object",
          () => c.createSession({ attributes: [] as unknown as Record<string, unknown> }),
        ],
        ["revokeOthers without an id (never revokeAll)", () => c.revokeOthers("user", "")],
        ["empty session id", () => c.getSession("")],
        ["session id with a space", () => c.deleteSession("a b")],
        ["patch not an object", () => c.patchAttributes("id", null as unknown as Record<string, unknown>)],
        ["bad If-Match", () => c.patchAttributes("id", {}, { ifMatch: -1 })],
        ["limit 0", () => c.listSessions("user", { limit: 0 })],
        ["limit 1001", () => c.listSubjects({ limit: 1001 })],
        ["empty csrf token", () => c.validate(secret, { csrf_token: "" })],
      ];
      for (const [what, call] of refused) {
        await assert.rejects(call(), (e: unknown) => {
          assert.ok(e instanceof InvalidArgumentError, `${what}: ${String(e)}`);
          assert.ok(e instanceof TypeError, what);
          assert.ok(!e.message.includes(secret), `${what}: the message shows the token`);
          return true;
        });
      }
      assert.equal(counter.requests.length, 0, "a refused call sent a request");

      // The limits themselves pass: 255 bytes of subject, and "/" encoded.
      await c.listSessions("é".repeat(127) + "a");
      await c.listSessions("team/a:b");
      assert.equal(counter.requests.length, 2);
      assert.equal(counter.requests[1]!.url, "/v1/subjects/team%2Fa%3Ab/sessions");
      // No token ever travels in a URL.
      await c.validate(secret).catch(() => undefined);
      assert.ok(counter.requests.every((r) => !r.url.includes("ses_")));
      assert.equal(JSON.parse(counter.requests[2]!.body).token, secret);

      assert.throws(() => new SessiondClient({ baseUrl: "ftp://x", apiKey: "k" }), InvalidArgumentError);
      assert.throws(() => new SessiondClient({ baseUrl: counter.url, apiKey: "" }), InvalidArgumentError);
      assert.throws(
        () => new SessiondClient({ baseUrl: counter.url, apiKey: "k", timeoutMs: 0 }),
        InvalidArgumentError,
      );
    } finally {
      await counter.close();
    }
  });

  test("errors are SessiondError with status, code and retryAfter", async () => {
    const e = await rejectsWith(client.validate("ses_nope"), "invalid_token", 401);
    assert.ok(e instanceof Error);
    assert.ok(e instanceof SessiondError);
    assert.equal(e.name, "SessiondError");
    assert.equal(e.retryAfter, undefined);
  });
});
