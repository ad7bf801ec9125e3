// Express middleware (Express 4 or 5; only its types are imported).
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { SessiondClient } from "./client.js";
import {
  DEFAULT_COOKIE_NAME,
  authenticate,
  tokenFrom,
  type SessiondMiddlewareOptions,
} from "./middleware.js";
import type { Session } from "./types.js";

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The sessiond session, set by `sessiondExpress`. */
      session?: Session;
      /** The session's CSRF token, set by `sessiondExpress`. */
      sessionCsrfToken?: string;
    }
  }
}

export type { SessiondMiddlewareOptions };

/**
 * Validates the request's session token (`Authorization: Bearer`, else the
 * cookie `cookieName`) with sessiond and puts the session on
 * `req.session` (and its CSRF token on `req.sessionCsrfToken`). Without a
 * live session: 401 `{"error": "invalid_token" | "session_expired" |
 * "token_expired" | "reauthentication_required", "message"}`. When sessiond
 * cannot answer: 503 (with Retry-After when known), never the handler.
 */
export function sessiondExpress(
  client: SessiondClient,
  options: SessiondMiddlewareOptions = {},
): RequestHandler {
  const cookieName = options.cookieName ?? DEFAULT_COOKIE_NAME;
  return (req: Request, res: Response, next: NextFunction): void => {
    const token = tokenFrom(req.headers.authorization, req.headers.cookie, cookieName);
    authenticate(client, token, { ip: req.ip, userAgent: req.headers["user-agent"] }, options).then(
      (outcome) => {
        if (outcome.ok) {
          req.session = outcome.validated.session;
          req.sessionCsrfToken = outcome.validated.csrf_token;
          next();
        } else {
          res.status(outcome.refusal.status).set(outcome.refusal.headers).json(outcome.refusal.body);
        }
      },
      next,
    );
  };
}
