/**
 * The stable error codes of sessiond's v1 API (docs/api.md, "Errors"), and
 * the two this client adds: `bad_response` (the answer was not the JSON
 * sessiond sends: not JSON, truncated, or the wrong shape) and
 * `unavailable` (no answer: connection refused or reset, DNS, timeout).
 */
export const SERVER_ERROR_CODES = [
  "invalid_request",
  "unauthenticated",
  "invalid_token",
  "session_expired",
  "token_expired",
  "reauthentication_required",
  "refresh_token_reused",
  "csrf_failed",
  "insufficient_scope",
  "not_found",
  "method_not_allowed",
  "session_limit_reached",
  "conflict",
  "request_timeout",
  "precondition_failed",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "headers_too_large",
  "internal_error",
  "store_unavailable",
  "upstream_unavailable",
  "insufficient_storage",
] as const;

export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number];
export type ClientErrorCode = "bad_response" | "unavailable";
/**
 * A code of the table above, or one a later sessiond adds (kept as sent).
 */
export type SessiondErrorCode = ServerErrorCode | ClientErrorCode | (string & {});

/**
 * A call that sessiond refused, or that got no usable answer. `status` is
 * the HTTP status (0 when there was no answer), `code` the stable code,
 * `retryAfter` the `Retry-After` in seconds when the answer carried one.
 * The message is sessiond's (it names fields, never secret values) or the
 * client's; it never contains a token or the API key.
 */
export class SessiondError extends Error {
  override readonly name = "SessiondError";
  readonly status: number;
  readonly code: SessiondErrorCode;
  readonly retryAfter: number | undefined;

  constructor(
    status: number,
    code: SessiondErrorCode,
    message: string,
    retryAfter?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * An argument the client refuses before sending anything: an empty token,
 * one with whitespace or control characters, an empty subject or one over
 * 255 UTF-8 bytes, and so on. A `TypeError`. The message names the
 * argument, never its value.
 */
export class InvalidArgumentError extends TypeError {
  override readonly name = "InvalidArgumentError";
  /** The parameter that was refused. */
  readonly argument: string;

  constructor(argument: string, why: string) {
    super(`invalid ${argument}: ${why}`);
    this.argument = argument;
  }
}

/** Whether `e` is a `SessiondError` (with `code`, when given). */
export function isSessiondError(e: unknown, code?: SessiondErrorCode): e is SessiondError {
  return e instanceof SessiondError && (code === undefined || e.code === code);
}
