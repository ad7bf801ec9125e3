// What the Express and Hono middleware share: where the token comes from,
// and what each outcome of the validation answers. No framework import.
import type { SessiondClient } from "./client.js";
import { InvalidArgumentError, SessiondError } from "./errors.js";
import type { Session, ValidateOptions, ValidatedSession } from "./types.js";

export interface SessiondMiddlewareOptions {
  /**
   * The cookie that holds the session token, read when there is no
   * `Authorization: Bearer` header. Default `__Host-session`.
   */
  cookieName?: string;
  /**
   * Send the request's client IP and User-Agent with the validation, for
   * sessiond's fingerprint binding (`policy.fingerprint`). Default false.
   */
  forwardClient?: boolean;
  /** Extra validation options (`max_age_secs`, `min_aal`). */
  validate?: Omit<ValidateOptions, "client" | "csrf_token">;
  /** Called with the error when sessiond could not be asked (the answer is then 503 or 500). */
  onError?: (error: unknown) => void;
}

export const DEFAULT_COOKIE_NAME = "__Host-session";

/** The token of `Authorization: Bearer …`, else of the cookie. */
export function tokenFrom(
  authorization: string | undefined | null,
  cookieHeader: string | undefined | null,
  cookieName: string,
): string | undefined {
  if (authorization) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (m) return m[1];
  }
  if (cookieHeader) return readCookie(cookieHeader, cookieName);
  return undefined;
}

/** The first cookie called `name` in a `Cookie` header (percent-decoded, unquoted). */
export function readCookie(header: string, name: string): string | undefined {
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

/** The answer the middleware gives instead of passing the request on. */
export interface Refusal {
  status: 401 | 403 | 500 | 503;
  body: { error: string; message: string };
  headers: Record<string, string>;
}

export type Outcome = { ok: true; validated: ValidatedSession } | { ok: false; refusal: Refusal };

/** The codes that mean "this token does not open a session": 401 for the caller. */
const TOKEN_CODES = new Set([
  "invalid_token",
  "session_expired",
  "token_expired",
  "reauthentication_required",
]);
/** The codes that mean "sessiond cannot answer now": 503, fail closed. */
const TRANSIENT_CODES = new Set([
  "store_unavailable",
  "unavailable",
  "rate_limited",
  "conflict",
  "request_timeout",
]);

function unauthorized(code: string, message: string): Refusal {
  return {
    status: 401,
    body: { error: code, message },
    headers: { "www-authenticate": "Bearer", "cache-control": "no-store" },
  };
}

/** Validates `token` and says what to answer. Never lets a request through on an error. */
export async function authenticate(
  client: SessiondClient,
  token: string | undefined,
  request: { ip?: string | undefined; userAgent?: string | undefined },
  options: SessiondMiddlewareOptions,
): Promise<Outcome> {
  if (token === undefined || token === "") {
    return { ok: false, refusal: unauthorized("invalid_token", "a session token is required") };
  }
  const validateOptions: ValidateOptions = { ...options.validate };
  if (options.forwardClient) {
    validateOptions.client = { ip: request.ip ?? null, user_agent: request.userAgent ?? null };
  }
  try {
    return { ok: true, validated: await client.validate(token, validateOptions) };
  } catch (e) {
    if (e instanceof InvalidArgumentError) {
      return { ok: false, refusal: unauthorized("invalid_token", "the session token is not valid") };
    }
    if (e instanceof SessiondError && TOKEN_CODES.has(e.code)) {
      return { ok: false, refusal: unauthorized(e.code, messageFor(e.code)) };
    }
    options.onError?.(e);
    if (e instanceof SessiondError && TRANSIENT_CODES.has(e.code)) {
      const headers: Record<string, string> = { "cache-control": "no-store" };
      if (e.retryAfter !== undefined) headers["retry-after"] = String(e.retryAfter);
      return {
        ok: false,
        refusal: {
          status: 503,
          body: { error: "session_unavailable", message: "the session cannot be checked now; retry later" },
          headers,
        },
      };
    }
    return {
      ok: false,
      refusal: {
        status: 500,
        body: { error: "internal_error", message: "the session cannot be checked" },
        headers: { "cache-control": "no-store" },
      },
    };
  }
}

function messageFor(code: string): string {
  switch (code) {
    case "session_expired":
      return "the session has expired; sign in again";
    case "token_expired":
      return "the access token has expired; refresh it";
    case "reauthentication_required":
      return "sign in again to continue";
    default:
      return "the session token is not valid";
  }
}

export type { Session, ValidatedSession };
