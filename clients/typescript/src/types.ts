// Names for the wire types. Everything here is the JSON sessiond sends and
// takes, field for field (snake_case, as in docs/api.md), taken from the
// types generated from its OpenAPI document (src/generated/api.ts), except
// the upstream vault's, which that document does not describe yet.
import type { components } from "./generated/api.js";

type Schemas = components["schemas"];

/** A session (`SessionOut`). */
export type Session = Schemas["SessionOut"];
/** A session's client info. */
export type SessionClient = Schemas["ClientOut"];
/** The body of `POST /v1/sessions`. */
export type CreateSessionRequest = Schemas["CreateRequest"];
/** `{session, token, csrf_token, evicted?}`: create and upgrade. */
export type CreatedSession = Schemas["CreatedResponse"];
/** `{session, access_token, access_expires_at, refresh_token, csrf_token, evicted?}`. */
export type TokenPair = Schemas["PairResponse"];
/** `{session, csrf_token}`: validate. */
export type ValidatedSession = Schemas["ValidatedResponse"];
/** The optional fields of a validate: `csrf_token`, `client`, `max_age_secs`, `min_aal`. */
export type ValidateOptions = Omit<Schemas["ValidateRequestBody"], "token">;
/** The optional fields of an upgrade: `keep_attributes`, `issue`, `aal`, `amr`. */
export type UpgradeOptions = Omit<Schemas["UpgradeRequestBody"], "token" | "subject">;
/** `{sessions, next_cursor}`. */
export type SessionList = Schemas["SessionList"];
/** `{subjects, next_cursor}`. */
export type SubjectList = Schemas["SubjectList"];
/** The answer of `POST /v1/tokens/introspect`. */
export type Introspection = Schemas["Introspection"];
/** `{error, message}`. */
export type ErrorBody = Schemas["ErrorBody"];
/** `"session"` or `"pair"`. */
export type IssueKind = Schemas["IssueKind"];

/** A session and its `ETag` (`"<version>"`, to send back in `If-Match`). */
export interface SessionWithEtag {
  session: Session;
  /** The `ETag` header as sent (`"3"`); empty if the answer had none. */
  etag: string;
}

/** Paging of the list calls. */
export interface PageOptions {
  /** 1 to 1000 (server default 100). */
  limit?: number;
  /** The `next_cursor` of the previous page. */
  cursor?: string | null;
}

/** A provider's grant, for `PUT /v1/upstream/{provider}` (docs/api.md). */
export interface UpstreamGrant {
  access_token: string;
  refresh_token?: string | null;
  /** Seconds the access token lives, 1 to 316224000 (or `expires_at`). */
  expires_in?: number | null;
  /** RFC 3339 (or `expires_in`). */
  expires_at?: string | null;
  scope?: string | null;
  id_token?: string | null;
}

/** `POST /v1/upstream/{provider}/token`: a fresh access token of the provider. */
export interface UpstreamAccessToken {
  access_token: string;
  /** RFC 3339. */
  expires_at: string;
  scope: string | null;
}
