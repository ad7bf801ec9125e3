// Checks made before any request. A refused argument throws
// InvalidArgumentError whose message names the argument, never its value.
import { InvalidArgumentError } from "./errors.js";

const encoder = new TextEncoder();

/** Longest subject sessiond takes, in UTF-8 bytes. */
export const MAX_SUBJECT_BYTES = 255;

/**
 * A token (session token, access JWT, refresh token): a non-empty string of
 * printable ASCII. Whitespace, control characters and anything outside
 * ASCII are refused (no sessiond token has them).
 */
export function checkToken(token: unknown, argument = "token"): string {
  if (typeof token !== "string") throw new InvalidArgumentError(argument, "must be a string");
  if (token.length === 0) throw new InvalidArgumentError(argument, "must not be empty");
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new InvalidArgumentError(
      argument,
      "must not contain whitespace, control characters or non-ASCII characters",
    );
  }
  return token;
}

/**
 * Characters sessiond refuses in a subject (sessionkit_core::text::is_hidden):
 * C0 and C1 controls, DEL, and invisible formatting characters.
 */
const HIDDEN =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;

/** A subject: 1 to 255 UTF-8 bytes, well-formed, no control or invisible characters. */
export function checkSubject(subject: unknown, argument = "subject"): string {
  if (typeof subject !== "string") throw new InvalidArgumentError(argument, "must be a string");
  if (subject.length === 0) throw new InvalidArgumentError(argument, "must not be empty");
  if (!subject.isWellFormed()) {
    throw new InvalidArgumentError(argument, "is not well-formed Unicode (a lone surrogate)");
  }
  if (encoder.encode(subject).length > MAX_SUBJECT_BYTES) {
    throw new InvalidArgumentError(argument, `is longer than ${MAX_SUBJECT_BYTES} UTF-8 bytes`);
  }
  if (HIDDEN.test(subject)) {
    throw new InvalidArgumentError(argument, "contains a control or invisible character");
  }
  return subject;
}

/** A session id (or another id sent in a path or a query): printable ASCII. */
export function checkId(id: unknown, argument = "id"): string {
  if (typeof id !== "string") throw new InvalidArgumentError(argument, "must be a string");
  if (id.length === 0) throw new InvalidArgumentError(argument, "must not be empty");
  if (id.length > 256 || !/^[\x21-\x7e]+$/.test(id)) {
    throw new InvalidArgumentError(argument, "is not a session id");
  }
  return id;
}

/** An upstream provider's name: `a-z 0-9 _ -`. */
export function checkProvider(provider: unknown): string {
  if (typeof provider !== "string" || !/^[a-z0-9_-]{1,64}$/.test(provider)) {
    throw new InvalidArgumentError("provider", "must be 1 to 64 of a-z 0-9 _ -");
  }
  return provider;
}

/** A page size: an integer from 1 to 1000. */
export function checkLimit(limit: unknown): number {
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new InvalidArgumentError("limit", "must be an integer from 1 to 1000");
  }
  return limit;
}

/** An opaque cursor (printable ASCII). */
export function checkCursor(cursor: unknown): string {
  if (typeof cursor !== "string" || cursor.length === 0 || !/^[\x21-\x7e]+$/.test(cursor)) {
    throw new InvalidArgumentError("cursor", "must be the next_cursor of a previous page");
  }
  return cursor;
}

/** A plain JSON object (not null, not an array). */
export function checkObject(value: unknown, argument: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(argument, "must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * An `If-Match` value: a version number (sent as `"<n>"`), or an ETag as
 * sessiond sent it (`"3"`), or `*`.
 */
export function checkIfMatch(ifMatch: unknown): string {
  if (typeof ifMatch === "number") {
    if (!Number.isSafeInteger(ifMatch) || ifMatch < 0) {
      throw new InvalidArgumentError("ifMatch", "must be a version (a non-negative integer) or an ETag");
    }
    return `"${ifMatch}"`;
  }
  if (typeof ifMatch !== "string" || ifMatch.length === 0 || !/^[\x20-\x7e]+$/.test(ifMatch)) {
    throw new InvalidArgumentError("ifMatch", "must be a version (a non-negative integer) or an ETag");
  }
  return ifMatch;
}

/** The API key: a non-empty string of printable ASCII. */
export function checkApiKey(apiKey: unknown): string {
  if (typeof apiKey !== "string" || apiKey.length === 0 || !/^[\x21-\x7e]+$/.test(apiKey)) {
    throw new InvalidArgumentError("apiKey", "must be a non-empty string of printable ASCII");
  }
  return apiKey;
}

/** The base URL: http or https, without a query or fragment; returned without a trailing slash. */
export function checkBaseUrl(baseUrl: unknown): string {
  if (typeof baseUrl !== "string" && !(baseUrl instanceof URL)) {
    throw new InvalidArgumentError("baseUrl", "must be an http(s) URL");
  }
  let u: URL;
  try {
    u = new URL(String(baseUrl));
  } catch {
    throw new InvalidArgumentError("baseUrl", "must be an http(s) URL");
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.search || u.hash || u.username || u.password) {
    throw new InvalidArgumentError(
      "baseUrl",
      "must be an http(s) URL without credentials, query or fragment",
    );
  }
  return u.href.replace(/\/+$/, "");
}

/** A timeout in milliseconds: a positive finite number. */
export function checkTimeout(timeoutMs: unknown): number {
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidArgumentError("timeoutMs", "must be a positive number of milliseconds");
  }
  return timeoutMs;
}
