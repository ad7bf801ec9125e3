export { SessiondClient, parseRetryAfter, type SessiondClientOptions } from "./client.js";
export {
  SessiondError,
  InvalidArgumentError,
  isSessiondError,
  SERVER_ERROR_CODES,
  type ServerErrorCode,
  type ClientErrorCode,
  type SessiondErrorCode,
} from "./errors.js";
export { MAX_SUBJECT_BYTES } from "./check.js";
export { tokenFrom, readCookie, DEFAULT_COOKIE_NAME, type SessiondMiddlewareOptions } from "./middleware.js";
export type * from "./types.js";
/** The raw generated OpenAPI types (`paths`, `components`, `operations`). */
export type * as openapi from "./generated/api.js";
