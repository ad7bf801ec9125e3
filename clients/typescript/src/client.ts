import { setTimeout as sleep } from "node:timers/promises";
import {
  checkApiKey,
  checkBaseUrl,
  checkCursor,
  checkId,
  checkIfMatch,
  checkLimit,
  checkObject,
  checkProvider,
  checkSubject,
  checkTimeout,
  checkToken,
} from "./check.js";
import { InvalidArgumentError, SessiondError } from "./errors.js";
import type {
  CreateSessionRequest,
  CreatedSession,
  Introspection,
  PageOptions,
  Session,
  SessionList,
  SessionWithEtag,
  SubjectList,
  TokenPair,
  UpgradeOptions,
  UpstreamAccessToken,
  UpstreamGrant,
  ValidateOptions,
  ValidatedSession,
} from "./types.js";

export interface SessiondClientOptions {
  /** Where sessiond listens, e.g. `http://127.0.0.1:7700`. */
  baseUrl: string | URL;
  /** An API key (`Authorization: Bearer`), with the scopes the calls need. */
  apiKey: string;
  /** Per attempt; a call that gets no answer in time fails with `unavailable`. Default 5000. */
  timeoutMs?: number;
}

/** Longest wait before the one retry of a safe call (Retry-After is capped to it). */
const MAX_RETRY_WAIT_MS = 1000;

type Json = Record<string, unknown>;

interface Call {
  method: "GET" | "POST" | "PATCH" | "DELETE" | "PUT";
  path: string;
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  /** Safe to send twice: retried once on 503 store_unavailable. */
  retry?: boolean;
  /** Tokens in the body: never repeated in an error message. */
  secrets?: string[];
}

interface Answer {
  status: number;
  headers: Headers;
  /** The parsed body; undefined for an empty body. */
  json: Json | undefined;
}

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `Retry-After` in seconds (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** `POST /v1/sessions/validate`, for messages (the path without its query). */
function describe(call: Call): string {
  const q = call.path.indexOf("?");
  return `${call.method} ${q < 0 ? call.path : call.path.slice(0, q)}`;
}

function isJsonType(contentType: string | null): boolean {
  if (contentType === null) return false;
  if (contentType === "application/json") return true;
  const essence = contentType.split(";")[0]!.trim().toLowerCase();
  return essence === "application/json" || essence.endsWith("+json");
}

function badResponse(status: number, why: string, retryAfter?: number, cause?: unknown): SessiondError {
  return new SessiondError(
    status,
    "bad_response",
    `sessiond's answer (HTTP ${status}) is unusable: ${why}`,
    retryAfter,
    cause === undefined ? undefined : { cause },
  );
}

/** Throws `bad_response` unless `cond`. */
function expect(cond: boolean, status: number, why: string): asserts cond {
  if (!cond) throw badResponse(status, why);
}

function sessionOf(a: Answer): Session {
  const s = a.json?.session;
  expect(isObj(s) && typeof s.id === "string", a.status, "no session in the body");
  return s as unknown as Session;
}

function withEtag(a: Answer): SessionWithEtag {
  return { session: sessionOf(a), etag: a.headers.get("etag") ?? "" };
}

function created(a: Answer): CreatedSession | TokenPair {
  sessionOf(a);
  const j = a.json!;
  const hasToken = typeof j.token === "string";
  const hasPair = typeof j.access_token === "string" && typeof j.refresh_token === "string";
  expect(hasToken || hasPair, a.status, "no token in the body");
  expect(typeof j.csrf_token === "string", a.status, "no csrf_token in the body");
  return j as unknown as CreatedSession | TokenPair;
}

function pair(a: Answer): TokenPair {
  sessionOf(a);
  const j = a.json!;
  expect(
    typeof j.access_token === "string" && typeof j.refresh_token === "string",
    a.status,
    "no token pair in the body",
  );
  return j as unknown as TokenPair;
}

function revokedCount(a: Answer): number {
  const n = a.json?.revoked;
  expect(typeof n === "number" && Number.isInteger(n) && n >= 0, a.status, "no revoked count in the body");
  return n;
}

function pageQuery(opts: PageOptions | undefined): string {
  const q = new URLSearchParams();
  if (opts?.limit !== undefined) q.set("limit", String(checkLimit(opts.limit)));
  if (opts?.cursor !== undefined && opts.cursor !== null) q.set("cursor", checkCursor(opts.cursor));
  const s = q.toString();
  return s ? `?${s}` : "";
}

const seg = encodeURIComponent;

/** Token-shaped text: sessiond's tokens, API keys and JWTs. */
const TOKEN_SHAPED =
  /\b(?:ses|rft|sdk)_[A-Za-z0-9_-]{8,}|\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/**
 * A server's message without any secret in it. sessiond never puts one
 * there; this guards against anything else answering on its address.
 */
function scrub(message: string, secrets: readonly string[]): string {
  let m = message;
  for (const s of secrets) if (s.length >= 4) m = m.split(s).join("[redacted]");
  return m.replace(TOKEN_SHAPED, "[redacted]").slice(0, 500);
}

/**
 * A client of sessiond's v1 API over the global `fetch` (Node 20's undici,
 * which keeps connections alive). Every method checks its arguments before
 * sending anything (`InvalidArgumentError`), and fails with a
 * `SessiondError` carrying sessiond's stable code, `bad_response` for an
 * answer that is not sessiond's JSON, or `unavailable` when no answer came
 * within `timeoutMs`. Only safe calls (GETs and validate) are retried, once,
 * on `503 store_unavailable`, after its Retry-After (at most 1 s); creates,
 * upgrades, refreshes and other writes never are.
 *
 * The bodies and answers are sessiond's JSON as documented in docs/api.md
 * (snake_case fields), typed from its OpenAPI document.
 */
export class SessiondClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly #authorization: string;

  constructor(options: SessiondClientOptions) {
    if (!isObj(options)) throw new InvalidArgumentError("options", "must be an object");
    this.baseUrl = checkBaseUrl(options.baseUrl);
    this.#authorization = `Bearer ${checkApiKey(options.apiKey)}`;
    this.timeoutMs = checkTimeout(options.timeoutMs ?? 5000);
  }

  // ---- sessions ---------------------------------------------------------

  /**
   * `POST /v1/sessions`: a new session (anonymous without `subject`). The
   * token is in the answer, this once. Never retried.
   */
  createSession(req?: CreateSessionRequest & { issue?: "session" | null }): Promise<CreatedSession>;
  createSession(req: CreateSessionRequest & { issue: "pair" }): Promise<TokenPair>;
  createSession(req?: CreateSessionRequest): Promise<CreatedSession | TokenPair>;
  async createSession(req: CreateSessionRequest = {}): Promise<CreatedSession | TokenPair> {
    checkObject(req, "request");
    if (req.subject !== undefined && req.subject !== null) checkSubject(req.subject);
    if (req.attributes !== undefined && req.attributes !== null) checkObject(req.attributes, "attributes");
    return created(await this.#send({ method: "POST", path: "/v1/sessions", body: req }));
  }

  /**
   * `POST /v1/sessions/validate`: the session of a session token or an
   * access JWT, with its CSRF token. Retried once on `store_unavailable`.
   */
  async validate(token: string, options: ValidateOptions = {}): Promise<ValidatedSession> {
    checkToken(token);
    checkObject(options, "options");
    if (options.csrf_token !== undefined && options.csrf_token !== null) {
      checkToken(options.csrf_token, "csrf_token");
    }
    const a = await this.#send({
      method: "POST",
      path: "/v1/sessions/validate",
      body: { ...options, token },
      retry: true,
      secrets: [token, options.csrf_token ?? ""],
    });
    sessionOf(a);
    expect(typeof a.json!.csrf_token === "string", a.status, "no csrf_token in the body");
    return a.json as unknown as ValidatedSession;
  }

  /**
   * `POST /v1/sessions/upgrade`: log `subject` in on top of the session of
   * `token` (any token of it). A new session, id and token; every token of
   * the old one dies. Never retried.
   */
  upgrade(
    token: string,
    subject: string,
    options?: UpgradeOptions & { issue?: "session" | null },
  ): Promise<CreatedSession>;
  upgrade(token: string, subject: string, options: UpgradeOptions & { issue: "pair" }): Promise<TokenPair>;
  upgrade(token: string, subject: string, options?: UpgradeOptions): Promise<CreatedSession | TokenPair>;
  async upgrade(
    token: string,
    subject: string,
    options: UpgradeOptions = {},
  ): Promise<CreatedSession | TokenPair> {
    checkToken(token);
    checkSubject(subject);
    checkObject(options, "options");
    return created(
      await this.#send({
        method: "POST",
        path: "/v1/sessions/upgrade",
        body: { ...options, token, subject },
        secrets: [token],
      }),
    );
  }

  /**
   * `POST /v1/tokens/refresh`: the next pair. Store the new refresh token
   * at once. After a `store_unavailable` or `unavailable`, retry yourself
   * with the same refresh token (inside the grace window it gets the same
   * pair); this client never retries a refresh.
   */
  async refresh(refreshToken: string): Promise<TokenPair> {
    checkToken(refreshToken, "refreshToken");
    return pair(
      await this.#send({
        method: "POST",
        path: "/v1/tokens/refresh",
        body: { refresh_token: refreshToken },
        secrets: [refreshToken],
      }),
    );
  }

  /**
   * `POST /v1/sessions/revoke` (logout): revokes the session of any of its
   * tokens. Resolves for any well-formed token, live or not.
   */
  async revoke(token: string): Promise<void> {
    checkToken(token);
    await this.#send({ method: "POST", path: "/v1/sessions/revoke", body: { token }, secrets: [token] });
  }

  /** Same as {@link revoke}. */
  logout(token: string): Promise<void> {
    return this.revoke(token);
  }

  /** `POST /v1/tokens/introspect`: `{active: false}` for any token that is not live. */
  async introspect(token: string): Promise<Introspection> {
    checkToken(token);
    const a = await this.#send({
      method: "POST",
      path: "/v1/tokens/introspect",
      body: { token },
      retry: true,
      secrets: [token],
    });
    expect(typeof a.json?.active === "boolean", a.status, "no active flag in the body");
    return a.json as unknown as Introspection;
  }

  /** `GET /v1/sessions/{id}`: the session and its ETag. */
  async getSession(id: string): Promise<SessionWithEtag> {
    checkId(id);
    return withEtag(await this.#send({ method: "GET", path: `/v1/sessions/${seg(id)}`, retry: true }));
  }

  /**
   * `PATCH /v1/sessions/{id}/attributes`: a JSON merge patch (`null`
   * removes a key). With `ifMatch` (the ETag, or the version number), a
   * session changed meanwhile fails with `precondition_failed` and nothing
   * is written.
   */
  async patchAttributes(
    id: string,
    patch: Record<string, unknown>,
    options: { ifMatch?: string | number } = {},
  ): Promise<SessionWithEtag> {
    checkId(id);
    checkObject(patch, "patch");
    const headers: Record<string, string> = {};
    if (options.ifMatch !== undefined) headers["if-match"] = checkIfMatch(options.ifMatch);
    return withEtag(
      await this.#send({
        method: "PATCH",
        path: `/v1/sessions/${seg(id)}/attributes`,
        body: patch,
        contentType: "application/merge-patch+json",
        headers,
      }),
    );
  }

  /** `DELETE /v1/sessions/{id}`: revoke by id (`not_found` if it never existed). */
  async deleteSession(id: string): Promise<void> {
    checkId(id);
    await this.#send({ method: "DELETE", path: `/v1/sessions/${seg(id)}` });
  }

  // ---- subjects ---------------------------------------------------------

  /** `GET /v1/subjects/{subject}/sessions`: live sessions, newest first, paged. */
  async listSessions(subject: string, options?: PageOptions): Promise<SessionList> {
    checkSubject(subject);
    const a = await this.#send({
      method: "GET",
      path: `/v1/subjects/${seg(subject)}/sessions${pageQuery(options)}`,
      retry: true,
    });
    expect(Array.isArray(a.json?.sessions), a.status, "no sessions in the body");
    return a.json as unknown as SessionList;
  }

  /** `GET /v1/subjects/{subject}/sessions/{id}`: `not_found` unless the id is the subject's. */
  async getSubjectSession(subject: string, id: string): Promise<SessionWithEtag> {
    checkSubject(subject);
    checkId(id);
    return withEtag(
      await this.#send({
        method: "GET",
        path: `/v1/subjects/${seg(subject)}/sessions/${seg(id)}`,
        retry: true,
      }),
    );
  }

  /** `DELETE /v1/subjects/{subject}/sessions/{id}`: `not_found` unless the id is the subject's. */
  async deleteSubjectSession(subject: string, id: string): Promise<void> {
    checkSubject(subject);
    checkId(id);
    await this.#send({ method: "DELETE", path: `/v1/subjects/${seg(subject)}/sessions/${seg(id)}` });
  }

  /**
   * "Log out other devices": revokes every session of `subject` but
   * `exceptId`, which must be a live session of it (else `not_found` and
   * nothing is revoked). Resolves to how many were revoked.
   */
  async revokeOthers(subject: string, exceptId: string): Promise<number> {
    checkSubject(subject);
    checkId(exceptId, "exceptId");
    return revokedCount(
      await this.#send({
        method: "DELETE",
        path: `/v1/subjects/${seg(subject)}/sessions?except=${seg(exceptId)}`,
      }),
    );
  }

  /** Revokes every session of `subject`; resolves to how many. */
  async revokeAll(subject: string): Promise<number> {
    checkSubject(subject);
    return revokedCount(
      await this.#send({ method: "DELETE", path: `/v1/subjects/${seg(subject)}/sessions` }),
    );
  }

  /** `GET /v1/subjects`: the subjects with a live session, paged (an operator's view). */
  async listSubjects(options?: PageOptions): Promise<SubjectList> {
    const a = await this.#send({ method: "GET", path: `/v1/subjects${pageQuery(options)}`, retry: true });
    expect(Array.isArray(a.json?.subjects), a.status, "no subjects in the body");
    return a.json as unknown as SubjectList;
  }

  // ---- upstream token vault (scope `upstream`) ----------------------------

  /**
   * `POST /v1/upstream/{provider}/token`: a fresh access token of the
   * provider's grant kept with the session of `sessionToken`. Not retried
   * (it may refresh at the provider).
   */
  async token(provider: string, sessionToken: string): Promise<UpstreamAccessToken> {
    checkProvider(provider);
    checkToken(sessionToken, "sessionToken");
    const a = await this.#send({
      method: "POST",
      path: `/v1/upstream/${seg(provider)}/token`,
      body: { token: sessionToken },
      secrets: [sessionToken],
    });
    expect(typeof a.json?.access_token === "string", a.status, "no access_token in the body");
    return a.json as unknown as UpstreamAccessToken;
  }

  /** `PUT /v1/upstream/{provider}`: keep the provider's grant with the session. */
  async putGrant(provider: string, sessionToken: string, grant: UpstreamGrant): Promise<void> {
    checkProvider(provider);
    checkToken(sessionToken, "sessionToken");
    checkObject(grant, "grant");
    await this.#send({
      method: "PUT",
      path: `/v1/upstream/${seg(provider)}`,
      body: { token: sessionToken, grant },
      secrets: [sessionToken, grant.access_token, grant.refresh_token ?? "", grant.id_token ?? ""],
    });
  }

  /** `DELETE /v1/upstream/{provider}`: forget the grant (resolves whether or not there was one). */
  async deleteGrant(provider: string, sessionToken: string): Promise<void> {
    checkProvider(provider);
    checkToken(sessionToken, "sessionToken");
    await this.#send({
      method: "DELETE",
      path: `/v1/upstream/${seg(provider)}`,
      body: { token: sessionToken },
      secrets: [sessionToken],
    });
  }

  // ---- transport ----------------------------------------------------------

  async #send(call: Call): Promise<Answer> {
    try {
      return await this.#once(call);
    } catch (e) {
      if (!call.retry || !(e instanceof SessiondError) || e.code !== "store_unavailable") throw e;
      const waitMs = Math.min((e.retryAfter ?? 1) * 1000, MAX_RETRY_WAIT_MS);
      await sleep(waitMs);
      return this.#once(call);
    }
  }

  async #once(call: Call): Promise<Answer> {
    const headers: Record<string, string> =
      call.headers === undefined
        ? { authorization: this.#authorization, accept: "application/json" }
        : { authorization: this.#authorization, accept: "application/json", ...call.headers };
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers["content-type"] = call.contentType ?? "application/json";
    }
    // One timer per attempt, cleared once the body is read. (A plain
    // controller and setTimeout: AbortSignal.timeout costs some 20 µs a
    // call on Node 20.)
    const controller = new AbortController();
    const signal = controller.signal;
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let res: Response;
    let text: string;
    let retryAfter: number | undefined;
    try {
      try {
        res = await fetch(this.baseUrl + call.path, {
          method: call.method,
          headers,
          body,
          signal,
          redirect: "manual",
        });
      } catch (e) {
        throw this.#noAnswer(call, e, signal);
      }
      retryAfter = parseRetryAfter(res.headers.get("retry-after"));
      try {
        text = await res.text();
      } catch (e) {
        if (signal.aborted) throw this.#noAnswer(call, e, signal);
        throw badResponse(res.status, "the body was cut short", retryAfter, e);
      }
    } finally {
      clearTimeout(timer);
    }

    let json: Json | undefined;
    if (text.length > 0) {
      if (!isJsonType(res.headers.get("content-type"))) {
        throw badResponse(res.status, "the body is not JSON", retryAfter);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw badResponse(res.status, "the body is not valid JSON (truncated?)", retryAfter);
      }
      if (!isObj(parsed)) throw badResponse(res.status, "the body is not a JSON object", retryAfter);
      json = parsed;
    }

    if (res.status >= 200 && res.status < 300) {
      if (res.status !== 204 && json === undefined)
        throw badResponse(res.status, "the body is empty", retryAfter);
      return { status: res.status, headers: res.headers, json };
    }
    if (json !== undefined && typeof json.error === "string" && json.error.length > 0) {
      const message = typeof json.message === "string" && json.message ? json.message : json.error;
      const secrets = [...(call.secrets ?? []), this.#authorization.slice("Bearer ".length)];
      throw new SessiondError(
        res.status,
        scrub(json.error, secrets),
        `${describe(call)}: ${scrub(message, secrets)}`,
        retryAfter,
      );
    }
    throw badResponse(res.status, "not an error body of sessiond", retryAfter);
  }

  #noAnswer(call: Call, e: unknown, signal: AbortSignal): SessiondError {
    const what = describe(call);
    if (signal.aborted) {
      return new SessiondError(
        0,
        "unavailable",
        `${what}: no answer within ${this.timeoutMs} ms`,
        undefined,
        {
          cause: e,
        },
      );
    }
    const cause = (e as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
    const detail =
      typeof cause?.code === "string"
        ? cause.code
        : typeof cause?.message === "string"
          ? cause.message
          : "network error";
    return new SessiondError(0, "unavailable", `${what}: cannot reach sessiond (${detail})`, undefined, {
      cause: e,
    });
  }
}
