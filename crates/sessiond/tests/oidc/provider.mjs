// A real OpenID provider (node-oidc-provider) for sessiond's integration tests,
// listening on loopback only, with a small control API under /test/.
//
//   node provider.mjs --port P [--access-ttl SECS] [--refresh-ttl SECS]
//                     [--rotate-refresh true|false] [--no-parent-watch]
//
// --port 0 picks a free port. Stdout carries exactly one line, `READY <port>`,
// once the server listens (every log and library notice goes to stderr).
// The process exits on SIGTERM/SIGINT, and by itself when its parent process
// goes away (unless --no-parent-watch), so a crashed test leaves nothing behind.
// See README.md for the control API.

import { generateKeyPair, generateKeyPairSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

// The library prints "default function called" notices with console.info
// (stdout); stdout is reserved for the READY line.
console.info = (...args) => console.error(...args);

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const opts = {
    port: 0,
    accessTtl: 60,
    refreshTtl: 14 * 24 * 60 * 60,
    rotateRefresh: true,
    parentWatch: true,
  };
  const bool = (name, v) => {
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new Error(`${name} takes true or false, not ${JSON.stringify(v)}`);
  };
  const int = (name, v, min) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} takes an integer >= ${min}, not ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      i += 1;
      if (i >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[i];
    };
    switch (flag) {
      case '--port': opts.port = int(flag, value(), 0); break;
      case '--access-ttl': opts.accessTtl = int(flag, value(), 1); break;
      case '--refresh-ttl': opts.refreshTtl = int(flag, value(), 1); break;
      case '--rotate-refresh': opts.rotateRefresh = bool(flag, value()); break;
      case '--no-parent-watch': opts.parentWatch = false; break;
      case '--pkjwt-key-out': opts.pkjwtKeyOut = value(); break;
      case '-h':
      case '--help':
        process.stderr.write('usage: node provider.mjs --port P [--access-ttl SECS] [--refresh-ttl SECS] [--rotate-refresh true|false] [--no-parent-watch] [--pkjwt-key-out FILE]\n');
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${arg}`);
    }
  }
  if (opts.port > 65535) throw new Error('--port out of range');
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`provider.mjs: ${err.message}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- constants

const CLIENTS = [
  {
    client_id: 'sessiond-test',
    client_secret: 'sessiond-test-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'sessiond-post',
    client_secret: 'sessiond-post-secret',
    token_endpoint_auth_method: 'client_secret_post',
  },
];
// --pkjwt-key-out FILE: a third client, `sessiond-pkjwt`, authenticating
// with private_key_jwt (ES256); its private key (PKCS#8 PEM) is written to
// FILE for the client under test, its public key registered here.
let pkjwtKey;
if (opts.pkjwtKeyOut) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  pkjwtKey = privateKey;
  writeFileSync(opts.pkjwtKeyOut, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  CLIENTS.push({
    client_id: 'sessiond-pkjwt',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'pkjwt-1', alg: 'ES256', use: 'sig' }] },
  });
}
CLIENTS.forEach((c, i) => { CLIENTS[i] = {
  ...c,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/cb'],
  scope: 'openid offline_access profile email',
}; });
const REDIRECT_URI = 'http://127.0.0.1/cb';
const TOKEN_PATH = '/token';

// Requests that /test/login makes to this very server carry this header; they
// are neither counted nor delayed nor failed.
const INTERNAL_HEADER = 'x-sessiond-test-internal';
const INTERNAL_SECRET = randomBytes(24).toString('base64url');

// ---------------------------------------------------------------- in-memory adapter
//
// The library's default memory adapter is an LRU of 1000 entries, which a long
// test run (each login stores ~8 entries) could overflow, silently dropping
// refresh tokens. This one is a plain Map with expiry, and lets /test/revoke
// find an account's grants.

const store = new Map(); // key -> { payload, expiresAt }
const grantMembers = new Map(); // grantId -> Set(key)
const GRANTABLE = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode',
]);

function storeGet(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.payload;
}

class TestAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    store.set(key, { payload, expiresAt });
    if (this.model === 'Session' && payload.uid) {
      store.set(`sessionUid:${payload.uid}`, { payload: id, expiresAt });
    }
    if (payload.userCode) {
      store.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
    }
    if (GRANTABLE.has(this.model) && payload.grantId) {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, new Set());
      grantMembers.get(payload.grantId).add(key);
    }
  }

  async find(id) { return storeGet(this.key(id)); }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    const key = this.key(id);
    const payload = storeGet(key);
    store.delete(key);
    if (payload?.grantId) grantMembers.get(payload.grantId)?.delete(key);
  }

  async revokeByGrantId(grantId) {
    const members = grantMembers.get(grantId);
    if (!members) return;
    for (const key of [...members]) {
      if (key.startsWith(`${this.model}:`)) {
        store.delete(key);
        members.delete(key);
      }
    }
    if (members.size === 0) grantMembers.delete(grantId);
  }
}

// Drop expired entries now and then so a long run stays small.
setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of store) {
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) store.delete(key);
  }
}, 30_000).unref();

// ---------------------------------------------------------------- control state

const calls = { token_refresh: 0, token_other: 0 };
let delayMs = 0;
let fail = { status: 503, remaining: 0 }; // remaining -1 = until reset

// ---------------------------------------------------------------- helpers

function isLoopback(addr) {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

async function readRaw(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

async function readJson(ctx) {
  const raw = (await readRaw(ctx.req)).toString('utf8').trim();
  if (raw === '') return {};
  try {
    const value = JSON.parse(raw);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value;
  } catch {
    throw Object.assign(new Error('body must be a JSON object'), { status: 400 });
  }
}

function isInternal(ctx) {
  const got = ctx.get(INTERNAL_HEADER);
  if (!got) return false;
  const a = Buffer.from(got);
  const b = Buffer.from(INTERNAL_SECRET);
  return a.length === b.length && timingSafeEqual(a, b);
}

// A name-keyed cookie jar: good enough for the provider's own cookies, whose
// names differ per purpose (_session, _interaction, _interaction_resume, .sig).
class CookieJar {
  constructor() { this.cookies = new Map(); }

  take(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v] = a.split('=');
        return (k.trim().toLowerCase() === 'expires' && Date.parse(v) <= Date.now())
          || (k.trim().toLowerCase() === 'max-age' && Number(v) <= 0);
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

// ---------------------------------------------------------------- /test/login
//
// Drives the real authorization-code flow against this server over loopback
// HTTP: GET /auth -> dev interaction (login) -> /auth/:uid -> dev interaction
// (consent) -> /auth/:uid -> redirect to the client with ?code= -> POST /token.

async function login(provider, { sub, scope, client_id: clientId }) {
  const client = CLIENTS.find((c) => c.client_id === (clientId ?? 'sessiond-test'));
  if (!client) throw Object.assign(new Error(`unknown client_id ${clientId}`), { status: 400 });
  const { issuer } = provider;
  const jar = new CookieJar();
  const state = randomBytes(12).toString('base64url');
  const nonce = randomBytes(12).toString('base64url');
  const internal = { [INTERNAL_HEADER]: INTERNAL_SECRET };

  const auth = new URL(`${issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: client.client_id,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    nonce,
    // Without prompt=consent the library silently drops offline_access from
    // the request (OIDC Core 11), and no refresh token would be issued.
    prompt: 'consent',
  }).toString();

  let next = { url: auth.href, method: 'GET' };
  for (let hop = 0; hop < 12; hop++) {
    const res = await fetch(next.url, {
      method: next.method,
      redirect: 'manual',
      headers: {
        ...internal,
        cookie: jar.header(),
        ...(next.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: next.body,
    });
    jar.take(res);
    const text = await res.text();
    if (res.status < 300 || res.status >= 400) {
      throw new Error(`login flow: ${next.method} ${next.url} answered ${res.status}: ${text.slice(0, 500)}`);
    }
    const location = new URL(res.headers.get('location'), next.url);

    if (location.href.startsWith(REDIRECT_URI)) {
      const params = location.searchParams;
      if (params.get('error')) {
        throw new Error(`login flow: ${params.get('error')}: ${params.get('error_description')}`);
      }
      if (params.get('state') !== state) throw new Error('login flow: state mismatch');
      const code = params.get('code');
      const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
      const headers = { ...internal, 'content-type': 'application/x-www-form-urlencoded' };
      if (client.token_endpoint_auth_method === 'private_key_jwt') {
        const { SignJWT } = await import('jose');
        const now = Math.floor(Date.now() / 1000);
        const assertion = await new SignJWT({})
          .setProtectedHeader({ alg: 'ES256', kid: 'pkjwt-1' })
          .setIssuer(client.client_id).setSubject(client.client_id)
          .setAudience(`${issuer}${TOKEN_PATH}`).setJti(randomUUID())
          .setIssuedAt(now).setExpirationTime(now + 60)
          .sign(pkjwtKey);
        body.set('client_id', client.client_id);
        body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
        body.set('client_assertion', assertion);
      } else if (client.token_endpoint_auth_method === 'client_secret_basic') {
        const enc = encodeURIComponent;
        headers.authorization = `Basic ${Buffer.from(`${enc(client.client_id)}:${enc(client.client_secret)}`).toString('base64')}`;
      } else {
        body.set('client_id', client.client_id);
        body.set('client_secret', client.client_secret);
      }
      const tokenRes = await fetch(`${issuer}${TOKEN_PATH}`, { method: 'POST', headers, body: body.toString() });
      const tokens = await tokenRes.json();
      if (tokenRes.status !== 200) {
        throw new Error(`login flow: token endpoint answered ${tokenRes.status}: ${JSON.stringify(tokens)}`);
      }
      return tokens;
    }

    const m = location.pathname.match(/^\/interaction\/([^/]+)$/);
    if (m) {
      const interaction = await provider.Interaction.find(m[1]);
      if (!interaction) throw new Error('login flow: interaction not found');
      const prompt = interaction.prompt.name;
      let form;
      if (prompt === 'login') form = { prompt: 'login', login: sub, password: 'x' };
      else if (prompt === 'consent') form = { prompt: 'consent' };
      else throw new Error(`login flow: unexpected prompt ${prompt}`);
      next = { url: location.href, method: 'POST', body: new URLSearchParams(form).toString() };
    } else {
      next = { url: location.href, method: 'GET' };
    }
  }
  throw new Error('login flow: too many redirects');
}

// ---------------------------------------------------------------- /test/revoke

async function revokeAccount(provider, sub) {
  const grantIds = [];
  for (const [key, entry] of store) {
    if (key.startsWith('Grant:') && entry.payload?.accountId === sub) {
      grantIds.push(key.slice('Grant:'.length));
    }
  }
  for (const grantId of grantIds) {
    await Promise.all([
      provider.AccessToken.revokeByGrantId(grantId),
      provider.RefreshToken.revokeByGrantId(grantId),
      provider.AuthorizationCode.revokeByGrantId(grantId),
      provider.Grant.adapter.destroy(grantId),
    ]);
  }
  return grantIds.length;
}

// ---------------------------------------------------------------- control middleware

function controlMiddleware(provider) {
  const issuerHost = new URL(provider.issuer).host;
  return async function sessiondTestControl(ctx, next) {
    // The library builds endpoint URLs (discovery, redirects) from the
    // request's Host; pin it to the issuer's so that reaching the server as
    // localhost:P still advertises http://127.0.0.1:P/... everywhere.
    ctx.req.headers.host = issuerHost;

    // Token endpoint: count, then delay/fail, then hand to the provider.
    if (ctx.method === 'POST' && ctx.path === TOKEN_PATH) {
      const raw = await readRaw(ctx.req);
      // The stream is consumed; the provider's body parser falls back to
      // req.body (a string is parsed as application/x-www-form-urlencoded).
      ctx.req.body = raw.toString('utf8');
      if (isInternal(ctx)) return next();

      const grantType = new URLSearchParams(ctx.req.body).get('grant_type');
      if (grantType === 'refresh_token') calls.token_refresh += 1;
      else calls.token_other += 1;

      if (delayMs > 0) await sleep(delayMs);

      if (fail.remaining !== 0) {
        if (fail.remaining > 0) fail.remaining -= 1;
        ctx.status = fail.status;
        ctx.set('cache-control', 'no-store');
        ctx.body = {
          error: 'temporarily_unavailable',
          error_description: 'failure injected by /test/fail',
        };
        return undefined;
      }
      return next();
    }

    if (ctx.path !== '/test' && !ctx.path.startsWith('/test/')) return next();

    if (!isLoopback(ctx.socket.remoteAddress)) {
      ctx.status = 403;
      ctx.body = { error: 'forbidden' };
      return undefined;
    }
    ctx.set('cache-control', 'no-store');

    const route = `${ctx.method} ${ctx.path}`;
    try {
      switch (route) {
        case 'POST /test/login': {
          const body = await readJson(ctx);
          const sub = body.sub ?? 'user-1';
          const scope = body.scope ?? 'openid offline_access';
          if (typeof sub !== 'string' || sub === '') throw Object.assign(new Error('sub must be a non-empty string'), { status: 400 });
          if (typeof scope !== 'string') throw Object.assign(new Error('scope must be a string'), { status: 400 });
          ctx.body = await login(provider, { sub, scope, client_id: body.client_id });
          return undefined;
        }
        case 'GET /test/calls':
          ctx.body = { ...calls };
          return undefined;
        case 'POST /test/reset-calls':
          calls.token_refresh = 0;
          calls.token_other = 0;
          ctx.body = { ...calls };
          return undefined;
        case 'POST /test/revoke': {
          const { sub } = await readJson(ctx);
          if (typeof sub !== 'string' || sub === '') throw Object.assign(new Error('sub must be a non-empty string'), { status: 400 });
          ctx.body = { sub, revoked_grants: await revokeAccount(provider, sub) };
          return undefined;
        }
        case 'POST /test/delay': {
          const { ms } = await readJson(ctx);
          if (!Number.isInteger(ms) || ms < 0) throw Object.assign(new Error('ms must be an integer >= 0'), { status: 400 });
          delayMs = ms;
          ctx.body = { ms: delayMs };
          return undefined;
        }
        case 'POST /test/fail': {
          const body = await readJson(ctx);
          const status = body.status ?? 503;
          const count = body.count ?? 1;
          if (!Number.isInteger(status) || status < 400 || status > 599) throw Object.assign(new Error('status must be an integer 400-599'), { status: 400 });
          if (!Number.isInteger(count) || count < -1) throw Object.assign(new Error('count must be an integer >= -1'), { status: 400 });
          fail = { status, remaining: count };
          ctx.body = { status, count };
          return undefined;
        }
        case 'GET /test/state':
          ctx.body = {
            issuer: provider.issuer,
            calls: { ...calls },
            delay_ms: delayMs,
            fail: { status: fail.status, count: fail.remaining },
            access_ttl: opts.accessTtl,
            refresh_ttl: opts.refreshTtl,
            rotate_refresh: opts.rotateRefresh,
          };
          return undefined;
        default:
          ctx.status = 404;
          ctx.body = { error: 'not_found', route };
          return undefined;
      }
    } catch (err) {
      ctx.status = err.status ?? 500;
      ctx.body = { error: ctx.status === 500 ? 'server_error' : 'invalid_request', error_description: err.message };
      if (ctx.status === 500) console.error(`provider.mjs: ${route}:`, err);
      return undefined;
    }
  };
}

// ---------------------------------------------------------------- main

let handler = (_req, res) => {
  res.statusCode = 503;
  res.end('starting\n');
};
const server = http.createServer((req, res) => handler(req, res));

function shutdown(code = 0) {
  server.close();
  server.closeAllConnections();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));

if (opts.parentWatch) {
  const parent = process.ppid;
  const parentGone = () => {
    if (process.ppid !== parent) return true;
    try {
      process.kill(parent, 0);
      return false;
    } catch (err) {
      return err.code === 'ESRCH';
    }
  };
  setInterval(() => {
    if (parentGone()) {
      console.error('provider.mjs: parent process gone, exiting');
      shutdown(0);
    }
  }, 500).unref();
}

server.on('error', (err) => {
  console.error(`provider.mjs: ${err.message}`);
  process.exit(1);
});

// The signing key (RSA keygen takes 0.1-0.5 s, off the main thread), the
// library import and the listening socket are got in parallel; the issuer
// needs the port, so the provider is built last.
const [{ default: Provider }, { privateKey }, port] = await Promise.all([
  import('oidc-provider'),
  promisify(generateKeyPair)('rsa', { modulusLength: 2048 }),
  new Promise((resolve) => {
    server.listen(opts.port, '127.0.0.1', () => resolve(server.address().port));
  }),
]);

{
  const issuer = `http://127.0.0.1:${port}`;
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

  const provider = new Provider(issuer, {
    adapter: TestAdapter,
    clients: CLIENTS,
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    routes: { token: TOKEN_PATH },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, name: sub, email: `${sub}@example.test`, email_verified: true };
        },
      };
    },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
    },
    rotateRefreshToken: opts.rotateRefresh,
    ttl: {
      AccessToken: opts.accessTtl,
      AuthorizationCode: 60,
      IdToken: opts.accessTtl,
      RefreshToken: opts.refreshTtl,
      Interaction: 600,
      Session: 24 * 60 * 60,
      Grant: opts.refreshTtl,
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('provider.mjs: server_error:', err));
  provider.use(controlMiddleware(provider));
  handler = provider.callback();

  process.stdout.write(`READY ${port}\n`);
}
