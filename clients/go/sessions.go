package sessiond

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// maxTokenBytes bounds any token the client sends (access JWTs carrying
// claims are the largest).
const maxTokenBytes = 64 << 10

// maxSubjectBytes is sessiond's longest subject.
const maxSubjectBytes = 255

// CreateSession creates a session (POST /v1/sessions, scope
// sessions:write). An empty Subject makes an anonymous session.
func (c *Client) CreateSession(ctx context.Context, req CreateSessionRequest) (*IssuedSession, error) {
	if req.Subject != "" {
		if e := checkSubject(req.Subject); e != nil {
			return nil, e
		}
	}
	if req.Attributes != nil {
		if e := checkObject("attributes", req.Attributes, true); e != nil {
			return nil, e
		}
	}
	if req.Issue != "" && req.Issue != IssueSession && req.Issue != IssuePair {
		return nil, invalidArg("issue must be %q or %q", IssueSession, IssuePair)
	}
	var out IssuedSession
	if err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/sessions", body: &req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Validate checks a session token or an access JWT (POST
// /v1/sessions/validate, scope sessions:validate) and returns its session.
// A token that is not live is an *Error: invalid_token, session_expired,
// token_expired (refresh, then retry), csrf_failed or
// reauthentication_required. Retried once on 503 store_unavailable.
func (c *Client) Validate(ctx context.Context, req ValidateRequest) (*Validation, error) {
	if e := checkToken("token", req.Token); e != nil {
		return nil, e
	}
	if req.CSRFToken != "" {
		if e := checkToken("csrf_token", req.CSRFToken); e != nil {
			return nil, e
		}
	}
	if req.MaxAgeSecs < 0 || req.MinAAL < 0 {
		return nil, invalidArg("max_age_secs and min_aal must not be negative")
	}
	var out Validation
	if err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/sessions/validate", body: &req, safe: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Upgrade logs a session in, rotates it or steps it up (POST
// /v1/sessions/upgrade, scope sessions:write): a new session (new id and
// tokens) replaces the old one, whose every token dies.
func (c *Client) Upgrade(ctx context.Context, req UpgradeRequest) (*IssuedSession, error) {
	if e := checkToken("token", req.Token); e != nil {
		return nil, e
	}
	if e := checkSubject(req.Subject); e != nil {
		return nil, e
	}
	if req.Issue != "" && req.Issue != IssueSession && req.Issue != IssuePair {
		return nil, invalidArg("issue must be %q or %q", IssueSession, IssuePair)
	}
	var out IssuedSession
	if err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/sessions/upgrade", body: &req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Refresh rotates a pair (POST /v1/tokens/refresh, scope sessions:write):
// a new access token and refresh token. The previous refresh token again
// within the grace window gets the same pair; any other reuse is
// refresh_token_reused and revokes the session. Never retried by the
// client: on store_unavailable, retry with the same refresh token.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*IssuedSession, error) {
	if e := checkToken("refresh_token", refreshToken); e != nil {
		return nil, e
	}
	body := struct {
		RefreshToken string `json:"refresh_token"`
	}{refreshToken}
	var out IssuedSession
	if err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/tokens/refresh", body: &body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revoke logs out the session of any of its tokens (POST
// /v1/sessions/revoke, scope sessions:write). Idempotent: nil for any
// well-formed token, live or not; invalid_token for a malformed one.
func (c *Client) Revoke(ctx context.Context, token string) error {
	if e := checkToken("token", token); e != nil {
		return e
	}
	return c.do(ctx, &request{method: http.MethodPost, path: "/v1/sessions/revoke", body: tokenBody{token}}, nil)
}

// GetSession reads a session by id (GET /v1/sessions/{id}, scope
// sessions:read); not_found when dead or unknown. Its Version is the
// ETag for PatchAttributes.
func (c *Client) GetSession(ctx context.Context, id string) (*Session, error) {
	if e := checkID(id); e != nil {
		return nil, e
	}
	var out sessionBody
	if err := c.do(ctx, &request{method: http.MethodGet, path: "/v1/sessions/" + url.PathEscape(id), safe: true}, &out); err != nil {
		return nil, err
	}
	return out.Session, nil
}

// PatchAttributes applies a JSON merge patch (RFC 7396) to a session's
// attributes (PATCH /v1/sessions/{id}/attributes, scope sessions:write):
// patch must marshal to a JSON object, and a null value removes a key.
// With ifMatch > 0 it is sent as If-Match: a session whose version is
// another is precondition_failed and nothing is written. 0 sends none.
func (c *Client) PatchAttributes(ctx context.Context, id string, patch any, ifMatch uint64) (*Session, error) {
	if e := checkID(id); e != nil {
		return nil, e
	}
	if e := checkObject("patch", patch, false); e != nil {
		return nil, e
	}
	r := &request{
		method:      http.MethodPatch,
		path:        "/v1/sessions/" + url.PathEscape(id) + "/attributes",
		body:        patch,
		contentType: "application/merge-patch+json",
	}
	if ifMatch > 0 {
		r.ifMatch = `"` + strconv.FormatUint(ifMatch, 10) + `"`
	}
	var out sessionBody
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Session, nil
}

// DeleteSession revokes a session by id (DELETE /v1/sessions/{id}, scope
// sessions:write); nil if it exists or existed, not_found otherwise.
func (c *Client) DeleteSession(ctx context.Context, id string) error {
	if e := checkID(id); e != nil {
		return e
	}
	return c.do(ctx, &request{method: http.MethodDelete, path: "/v1/sessions/" + url.PathEscape(id)}, nil)
}

// ListSessions lists a subject's live sessions, newest first (GET
// /v1/subjects/{subject}/sessions, scope sessions:read). limit 0 takes
// sessiond's default (100; at most 1000); cursor is "" for the first page,
// then the previous page's NextCursor.
func (c *Client) ListSessions(ctx context.Context, subject string, limit int, cursor string) (*SessionPage, error) {
	if e := checkSubject(subject); e != nil {
		return nil, e
	}
	if limit < 0 {
		return nil, invalidArg("limit must not be negative")
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out SessionPage
	if err := c.do(ctx, &request{method: http.MethodGet, path: subjectPath(subject), query: q, safe: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeOthers revokes every session of subject except exceptID ("log
// out other devices"; DELETE /v1/subjects/{subject}/sessions?except=,
// scope sessions:write) and returns how many it revoked. exceptID must be
// a live session of that subject (else not_found, nothing revoked); an
// empty exceptID is refused, never taken as "all".
func (c *Client) RevokeOthers(ctx context.Context, subject, exceptID string) (int, error) {
	if e := checkSubject(subject); e != nil {
		return 0, e
	}
	if e := checkID(exceptID); e != nil {
		return 0, e
	}
	return c.revokeSubject(ctx, subject, url.Values{"except": {exceptID}})
}

// RevokeAll revokes every session of subject ("log out everywhere") and
// returns how many it revoked.
func (c *Client) RevokeAll(ctx context.Context, subject string) (int, error) {
	if e := checkSubject(subject); e != nil {
		return 0, e
	}
	return c.revokeSubject(ctx, subject, nil)
}

func (c *Client) revokeSubject(ctx context.Context, subject string, q url.Values) (int, error) {
	var out revokedBody
	if err := c.do(ctx, &request{method: http.MethodDelete, path: subjectPath(subject), query: q}, &out); err != nil {
		return 0, err
	}
	return int(*out.Revoked), nil
}

// GetSubjectSession reads a session only if it belongs to subject (GET
// /v1/subjects/{subject}/sessions/{id}, scope sessions:read); not_found
// otherwise. Use it, and DeleteSubjectSession, for any id that came from
// an end user.
func (c *Client) GetSubjectSession(ctx context.Context, subject, id string) (*Session, error) {
	if e := checkSubject(subject); e != nil {
		return nil, e
	}
	if e := checkID(id); e != nil {
		return nil, e
	}
	var out sessionBody
	if err := c.do(ctx, &request{method: http.MethodGet, path: subjectPath(subject) + "/" + url.PathEscape(id), safe: true}, &out); err != nil {
		return nil, err
	}
	return out.Session, nil
}

// DeleteSubjectSession revokes a session only if it belongs to subject
// (DELETE /v1/subjects/{subject}/sessions/{id}, scope sessions:write);
// not_found otherwise.
func (c *Client) DeleteSubjectSession(ctx context.Context, subject, id string) error {
	if e := checkSubject(subject); e != nil {
		return e
	}
	if e := checkID(id); e != nil {
		return e
	}
	return c.do(ctx, &request{method: http.MethodDelete, path: subjectPath(subject) + "/" + url.PathEscape(id)}, nil)
}

// PutGrant keeps an upstream provider's grant with the session of
// sessionToken (PUT /v1/upstream/{provider}, scope upstream), replacing
// its earlier grant of that provider.
func (c *Client) PutGrant(ctx context.Context, provider, sessionToken string, grant Grant) error {
	if e := checkProvider(provider); e != nil {
		return e
	}
	if e := checkToken("token", sessionToken); e != nil {
		return e
	}
	if grant.AccessToken == "" {
		return invalidArg("grant.access_token is empty")
	}
	if (grant.ExpiresIn > 0) == (grant.ExpiresAt != nil) || grant.ExpiresIn < 0 {
		return invalidArg("grant: give exactly one of expires_in (> 0) and expires_at")
	}
	body := struct {
		Token string `json:"token"`
		Grant *Grant `json:"grant"`
	}{sessionToken, &grant}
	return c.do(ctx, &request{method: http.MethodPut, path: "/v1/upstream/" + url.PathEscape(provider), body: &body}, nil)
}

// UpstreamToken returns a fresh access token of the provider's grant kept
// with the session of sessionToken (POST /v1/upstream/{provider}/token,
// scope upstream), refreshed first if needed. not_found when there is no
// grant, reauthentication_required when the provider refused its refresh
// token, upstream_unavailable (with RetryAfter) when the provider is down
// and no valid token is left.
func (c *Client) UpstreamToken(ctx context.Context, provider, sessionToken string) (*UpstreamToken, error) {
	if e := checkProvider(provider); e != nil {
		return nil, e
	}
	if e := checkToken("token", sessionToken); e != nil {
		return nil, e
	}
	var out UpstreamToken
	if err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/upstream/" + url.PathEscape(provider) + "/token", body: tokenBody{sessionToken}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteGrant forgets the provider's grant of the session of sessionToken
// (DELETE /v1/upstream/{provider}, scope upstream); nil whether or not
// there was one.
func (c *Client) DeleteGrant(ctx context.Context, provider, sessionToken string) error {
	if e := checkProvider(provider); e != nil {
		return e
	}
	if e := checkToken("token", sessionToken); e != nil {
		return e
	}
	return c.do(ctx, &request{method: http.MethodDelete, path: "/v1/upstream/" + url.PathEscape(provider), body: tokenBody{sessionToken}}, nil)
}

// subjectPath is /v1/subjects/{subject}/sessions with the subject
// percent-encoded (a "/" travels as %2F).
func subjectPath(subject string) string {
	return "/v1/subjects/" + url.PathEscape(subject) + "/sessions"
}

type tokenBody struct {
	Token string `json:"token"`
}

type sessionBody struct {
	Session *Session `json:"session"`
}

func (b *sessionBody) check() error {
	if b.Session == nil {
		return errors.New("session")
	}
	return b.Session.check()
}

type revokedBody struct {
	Revoked *int64 `json:"revoked"`
}

func (b *revokedBody) check() error {
	if b.Revoked == nil || *b.Revoked < 0 {
		return errors.New("revoked")
	}
	return nil
}

func (s *Session) check() error {
	if s.ID == "" {
		return errors.New("session.id")
	}
	return nil
}

func (v *Validation) check() error { return v.Session.check() }

func (s *IssuedSession) check() error {
	if err := s.Session.check(); err != nil {
		return err
	}
	if s.Token == "" && (s.AccessToken == "" || s.RefreshToken == "") {
		return errors.New("token")
	}
	return nil
}

func (p *SessionPage) check() error {
	for i := range p.Sessions {
		if err := p.Sessions[i].check(); err != nil {
			return err
		}
	}
	return nil
}

func (t *UpstreamToken) check() error {
	if t.AccessToken == "" {
		return errors.New("access_token")
	}
	return nil
}

// checkToken refuses a token that cannot be one: empty, too long, or with
// whitespace, a control character or a non-ASCII byte. Its message names
// the field, never the value.
func checkToken(field, tok string) *Error {
	if tok == "" {
		return invalidArg("%s is empty", field)
	}
	if len(tok) > maxTokenBytes {
		return invalidArg("%s is too long", field)
	}
	for i := 0; i < len(tok); i++ {
		if b := tok[i]; b <= ' ' || b >= 0x7f {
			return invalidArg("%s contains whitespace, a control character or a non-ASCII byte", field)
		}
	}
	return nil
}

// checkSubject applies sessiond's subject rules: 1 to 255 bytes of UTF-8,
// no control or invisible formatting character.
func checkSubject(s string) *Error {
	switch {
	case s == "":
		return invalidArg("subject is empty")
	case len(s) > maxSubjectBytes:
		return invalidArg("subject is longer than %d bytes", maxSubjectBytes)
	case !utf8.ValidString(s):
		return invalidArg("subject is not UTF-8")
	}
	for _, r := range s {
		if isHidden(r) {
			return invalidArg("subject contains a control character or an invisible one")
		}
	}
	return nil
}

// isHidden mirrors sessionkit-core's text::is_hidden.
func isHidden(r rune) bool {
	if unicode.IsControl(r) {
		return true
	}
	switch {
	case r == 0x061C, r >= 0x200B && r <= 0x200F, r == 0x2028, r == 0x2029,
		r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2064,
		r >= 0x2066 && r <= 0x2069, r == 0xFEFF:
		return true
	}
	return false
}

// checkID refuses an id that cannot be a session id (sessiond's are
// lowercase UUIDs; it judges the rest).
func checkID(id string) *Error {
	if id == "" {
		return invalidArg("session id is empty")
	}
	if len(id) > 64 {
		return invalidArg("session id is too long")
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '-') {
			return invalidArg("session id has a character other than letters, digits and '-'")
		}
	}
	return nil
}

// checkProvider applies sessiond's provider-name rules (a-z 0-9 _ -).
func checkProvider(p string) *Error {
	if p == "" {
		return invalidArg("provider is empty")
	}
	if len(p) > 64 {
		return invalidArg("provider is too long")
	}
	for i := 0; i < len(p); i++ {
		b := p[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return invalidArg("provider must be made of a-z 0-9 _ -")
		}
	}
	return nil
}

// checkObject refuses a value that does not marshal to a JSON object
// (or null, when allowed).
func checkObject(field string, v any, allowNull bool) *Error {
	var b []byte
	switch x := v.(type) {
	case json.RawMessage:
		b = x
	case []byte:
		return invalidArg("%s: pass a json.RawMessage, a map or a struct, not []byte", field)
	default:
		m, err := json.Marshal(v)
		if err != nil {
			return invalidArg("%s cannot be encoded as JSON", field)
		}
		b = m
	}
	b = bytes.TrimSpace(b)
	if allowNull && string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return invalidArg("%s must be a JSON object", field)
	}
	return nil
}
