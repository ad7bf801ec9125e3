package sessiond

import (
	"encoding/json"
	"time"
)

// Issue kinds for CreateSessionRequest.Issue and UpgradeRequest.Issue.
const (
	// IssueSession issues a session token (the default).
	IssueSession = "session"
	// IssuePair issues an access JWT and a refresh token (docs/tokens.md).
	IssuePair = "pair"
)

// Session is sessiond's session object. Fields sessiond adds in later
// versions are ignored.
type Session struct {
	ID string `json:"id"`
	// Subject is "" for an anonymous session.
	Subject       string    `json:"subject"`
	CreatedAt     time.Time `json:"created_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	// AuthTime is nil for an anonymous session.
	AuthTime *time.Time `json:"auth_time"`
	// Attributes is the attributes object as sessiond stored it (compact
	// JSON, keys in the order sent). Decode it with DecodeAttributes.
	Attributes json.RawMessage `json:"attributes"`
	Client     ClientInfo      `json:"client"`
	// Version changes only when the attributes, the subject or the auth
	// level change; it is the ETag, for PatchAttributes' ifMatch.
	Version uint64 `json:"version"`
	// AAL is the authenticator assurance level (0 for an anonymous
	// session, 1 to 3 otherwise).
	AAL int `json:"aal"`
	// AMR lists the authentication methods (RFC 8176 names).
	AMR []string `json:"amr"`
}

// Anonymous reports whether the session has no subject.
func (s *Session) Anonymous() bool { return s.Subject == "" }

// DecodeAttributes decodes the attributes object into v (a struct, or a
// map[string]any).
func (s *Session) DecodeAttributes(v any) error {
	if len(s.Attributes) == 0 {
		return json.Unmarshal([]byte("{}"), v)
	}
	return json.Unmarshal(s.Attributes, v)
}

// ClientInfo describes the client of a session. Empty fields are not
// sent.
type ClientInfo struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Device    string `json:"device,omitempty"`
}

// ClientBinding is the client presented at validation (checked against
// the session's fingerprint when the policy asks for it).
type ClientBinding struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// CreateSessionRequest is the body of POST /v1/sessions. Zero fields are
// not sent (sessiond's defaults apply).
type CreateSessionRequest struct {
	// Subject: "" creates an anonymous session.
	Subject string `json:"subject,omitempty"`
	// Attributes must marshal to a JSON object (a map, a struct, a
	// json.RawMessage); nil sends none.
	Attributes any         `json:"attributes,omitempty"`
	Client     *ClientInfo `json:"client,omitempty"`
	// IdleTimeoutSecs and AbsoluteTimeoutSecs may only shorten the
	// policy's timeouts; 0 keeps the policy's.
	IdleTimeoutSecs     int64 `json:"idle_timeout_secs,omitempty"`
	AbsoluteTimeoutSecs int64 `json:"absolute_timeout_secs,omitempty"`
	// Issue is IssueSession (default) or IssuePair.
	Issue string `json:"issue,omitempty"`
	// AAL (1 to 3) and AMR state how the subject authenticated.
	AAL int      `json:"aal,omitempty"`
	AMR []string `json:"amr,omitempty"`
}

// IssuedSession answers a create, an upgrade or a refresh. Its tokens are
// shown this once: sessiond keeps only their hashes.
type IssuedSession struct {
	Session Session `json:"session"`
	// Token is the session token (issue "session"); "" for a pair.
	Token string `json:"token,omitempty"`
	// AccessToken, AccessExpiresAt and RefreshToken are set for a pair.
	AccessToken     string    `json:"access_token,omitempty"`
	AccessExpiresAt time.Time `json:"access_expires_at"`
	RefreshToken    string    `json:"refresh_token,omitempty"`
	CSRFToken       string    `json:"csrf_token"`
	// Evicted names the sessions revoked to stay under the per-subject
	// cap, if any.
	Evicted []string `json:"evicted,omitempty"`
}

// ValidateRequest is the body of POST /v1/sessions/validate.
type ValidateRequest struct {
	// Token is a session token or an access JWT.
	Token string `json:"token"`
	// CSRFToken, when set, must be the session's (else csrf_failed).
	CSRFToken string         `json:"csrf_token,omitempty"`
	Client    *ClientBinding `json:"client,omitempty"`
	// MaxAgeSecs, when > 0, demands a sign-in at most that long ago
	// (else reauthentication_required).
	MaxAgeSecs int64 `json:"max_age_secs,omitempty"`
	// MinAAL, when > 0, demands at least that assurance level.
	MinAAL int `json:"min_aal,omitempty"`
}

// Validation answers a successful validate.
type Validation struct {
	Session   Session `json:"session"`
	CSRFToken string  `json:"csrf_token"`
}

// UpgradeRequest is the body of POST /v1/sessions/upgrade (log in,
// rotate, step up).
type UpgradeRequest struct {
	// Token is any token of the session to upgrade.
	Token   string `json:"token"`
	Subject string `json:"subject"`
	// KeepAttributes names the top-level attributes to carry over (at
	// most 64; none carry over when the subject changes to another user).
	KeepAttributes []string `json:"keep_attributes,omitempty"`
	Issue          string   `json:"issue,omitempty"`
	AAL            int      `json:"aal,omitempty"`
	AMR            []string `json:"amr,omitempty"`
}

// SessionPage is one page of a subject's live sessions, newest first.
type SessionPage struct {
	Sessions []Session `json:"sessions"`
	// NextCursor is "" on the last page.
	NextCursor string `json:"next_cursor"`
}

// Grant is an upstream provider's grant, kept sealed by sessiond with the
// session (PUT /v1/upstream/{provider}). Exactly one of ExpiresIn and
// ExpiresAt must be set.
type Grant struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int64 `json:"expires_in,omitempty"`
	// ExpiresAt is when the access token expires.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Scope     string     `json:"scope,omitempty"`
	IDToken   string     `json:"id_token,omitempty"`
}

// UpstreamToken is a fresh upstream access token.
type UpstreamToken struct {
	AccessToken string    `json:"access_token"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Scope is "" when unknown.
	Scope string `json:"scope"`
}
