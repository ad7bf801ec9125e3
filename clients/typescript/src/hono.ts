// Hono middleware (Hono 4; only its types are imported).
import type { MiddlewareHandler } from "hono";
import type { SessiondClient } from "./client.js";
import {
  DEFAULT_COOKIE_NAME,
  authenticate,
  tokenFrom,
  type SessiondMiddlewareOptions,
} from "./middleware.js";
import type { Session } from "./types.js";

export type { SessiondMiddlewareOptions };

/** The variables `sessiondHono` sets: `c.get('session')`, `c.get('sessionCsrfToken')`. */
export type SessiondVariables = {
  session: Session;
  sessionCsrfToken: string;
};

/**
 * Validates the request's session token (`Authorization: Bearer`, else the
 * cookie `cookieName`) with sessiond and sets `c.set('session', …)` (and
 * `sessionCsrfToken`). Without a live session: 401 JSON `{"error",
 * "message"}`; when sessiond cannot answer: 503 (with Retry-After when
 * known), never the handler.
 */
export function sessiondHono(
  client: SessiondClient,
  options: SessiondMiddlewareOptions & {
    /** The client IP for `forwardClient` (Hono has no runtime-independent one). */
    clientIp?: (c: Parameters<MiddlewareHandler>[0]) => string | undefined;
  } = {},
): MiddlewareHandler<{ Variables: SessiondVariables }> {
  const cookieName = options.cookieName ?? DEFAULT_COOKIE_NAME;
  return async (c, next) => {
    const token = tokenFrom(c.req.header("authorization"), c.req.header("cookie"), cookieName);
    const outcome = await authenticate(
      client,
      token,
      { ip: options.clientIp?.(c), userAgent: c.req.header("user-agent") },
      options,
    );
    if (!outcome.ok) {
      return c.json(outcome.refusal.body, outcome.refusal.status, outcome.refusal.headers);
    }
    c.set("session", outcome.validated.session);
    c.set("sessionCsrfToken", outcome.validated.csrf_token);
    await next();
    return undefined;
  };
}
