// The Express and Hono middleware against a real sessiond (and a stand-in
// for the outcomes a healthy sessiond cannot be made to give on demand).
import assert from "node:assert/strict";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import express from "express";
import { Hono } from "hono";
import { SessiondClient } from "@sessiond/client";
import { sessiondExpress } from "@sessiond/client/express";
import { sessiondHono, type SessiondVariables } from "@sessiond/client/hono";
import {
  clientOf,
  fakeServer,
  json,
  startSessiond,
  type FakeServer,
  type SessiondProcess,
} from "./helpers.js";

let sd: SessiondProcess;
let client: SessiondClient;

before(async () => {
  sd = await startSessiond();
  client = clientOf(sd);
});
after(async () => {
  await sd?.stop();
});

/** The app's answer to a request, whichever framework serves it. */
type Call = (headers: Record<string, string>) => Promise<{ status: number; headers: Headers; body: any }>;

function expressApp(c: SessiondClient, cookieName?: string): express.Express {
  const app = express();
  app.get("/me", sessiondExpress(c, cookieName === undefined ? {} : { cookieName }), (req, res) => {
    res.json({ subject: req.session?.subject ?? null, id: req.session?.id, csrf: req.sessionCsrfToken });
  });
  return app;
}

async function listen(app: express.Express): Promise<{ server: Server; url: string }> {
  return new Promise((res) => {
    const server = app.listen(0, "127.0.0.1", () => {
      res({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    });
  });
}

function honoApp(c: SessiondClient, cookieName?: string) {
  const app = new Hono<{ Variables: SessiondVariables }>();
  app.use("/me", sessiondHono(c, cookieName === undefined ? {} : { cookieName }));
  app.get("/me", (ctx) => {
    const s = ctx.get("session");
    return ctx.json({ subject: s.subject ?? null, id: s.id, csrf: ctx.get("sessionCsrfToken") });
  });
  return app;
}

const frameworks: [
  string,
  (c: SessiondClient, cookieName?: string) => Promise<{ call: Call; close(): Promise<void> }>,
][] = [
  [
    "express",
    async (c, cookieName) => {
      const { server, url } = await listen(expressApp(c, cookieName));
      return {
        call: async (headers) => {
          const r = await fetch(`${url}/me`, { headers });
          return { status: r.status, headers: r.headers, body: await r.json() };
        },
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      };
    },
  ],
  [
    "hono",
    async (c, cookieName) => {
      const app = honoApp(c, cookieName);
      return {
        call: async (headers) => {
          const r = await app.request("/me", { headers });
          return { status: r.status, headers: r.headers, body: await r.json() };
        },
        close: async () => {},
      };
    },
  ],
];

for (const [name, make] of frameworks) {
  describe(`${name} middleware`, () => {
    test("a live session from the bearer token or the cookie is on the request", async () => {
      const app = await make(client, "sid");
      try {
        const s = await client.createSession({ subject: `${name}-user` });
        const viaBearer = await app.call({ authorization: `Bearer ${s.token}` });
        assert.equal(viaBearer.status, 200);
        assert.deepEqual(viaBearer.body, { subject: `${name}-user`, id: s.session.id, csrf: s.csrf_token });
        const viaCookie = await app.call({ cookie: `theme=dark; sid=${s.token}; other=1` });
        assert.equal(viaCookie.status, 200);
        assert.equal(viaCookie.body.id, s.session.id);
        // An access JWT works as a bearer token too.
        const p = await client.createSession({ subject: `${name}-pair`, issue: "pair" });
        assert.equal(
          (await app.call({ authorization: `Bearer ${p.access_token}` })).body.subject,
          `${name}-pair`,
        );

        // Logged out: 401 JSON.
        await client.revoke(s.token);
        const gone = await app.call({ cookie: `sid=${s.token}` });
        assert.equal(gone.status, 401);
        assert.deepEqual(Object.keys(gone.body).sort(), ["error", "message"]);
        assert.equal(gone.body.error, "invalid_token");
        assert.ok(!JSON.stringify(gone.body).includes(s.token));
      } finally {
        await app.close();
      }
    });

    test("no token, a garbage token, the wrong cookie: 401 JSON", async () => {
      const app = await make(client);
      try {
        const s = await client.createSession({ subject: `${name}-user-2` });
        for (const headers of <Record<string, string>[]>[
          {},
          { authorization: "Bearer" },
          { authorization: "Basic dXNlcjpwYXNz" },
          { authorization: "Bearer ses_not-a-real-token" },
          { cookie: "__Host-session=bad token" },
          { cookie: `session=${s.token}` }, // not the default cookie name
        ]) {
          const r = await app.call(headers);
          assert.equal(r.status, 401, JSON.stringify(headers));
          assert.equal(r.body.error, "invalid_token");
          assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/);
        }
        assert.equal((await app.call({ cookie: `__Host-session=${s.token}` })).status, 200);
      } finally {
        await app.close();
      }
    });

    test("sessiond's other answers: expired is 401, an outage is 503 with Retry-After", async () => {
      let answer: [number, object, Record<string, string>] = [
        401,
        { error: "session_expired", message: "x" },
        {},
      ];
      const stand: FakeServer = await fakeServer((_q, res) => json(res, ...answer));
      const app = await make(new SessiondClient({ baseUrl: stand.url, apiKey: "k", timeoutMs: 1000 }));
      try {
        const token = { authorization: "Bearer ses_" + "x".repeat(43) };
        let r = await app.call(token);
        assert.equal(r.status, 401);
        assert.equal(r.body.error, "session_expired");

        answer = [503, { error: "store_unavailable", message: "x" }, { "retry-after": "0" }];
        r = await app.call(token);
        assert.equal(r.status, 503);
        assert.equal(r.headers.get("retry-after"), "0");
        assert.equal(r.body.error, "session_unavailable");

        answer = [403, { error: "insufficient_scope", message: "x" }, {}];
        r = await app.call(token);
        assert.equal(r.status, 500);
      } finally {
        await app.close();
        await stand.close();
      }
    });
  });
}
