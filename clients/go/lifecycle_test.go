package sessiond

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The whole lifecycle against the real sessiond: an anonymous visitor
// with a cart, a patch guarded by If-Match, login by upgrade (the old
// token dies, the cart stays), two more devices, the device list paged,
// "log out other devices", logout, and the idempotent cleanup calls.
func TestLifecycle(t *testing.T) {
	ctx := ctxT(t)
	c := main1.client()
	subject := fmt.Sprintf("team/alice-%d", time.Now().UnixNano()) // a '/' travels as %2F

	anon, err := c.CreateSession(ctx, CreateSessionRequest{
		Attributes: map[string]any{"cart": 3},
		Client:     &ClientInfo{UserAgent: "go-test", Device: "laptop"},
	})
	must(t, err)
	if !strings.HasPrefix(anon.Token, "ses_") || anon.CSRFToken == "" || anon.Session.ID == "" {
		t.Fatalf("create answer: %+v", anon)
	}
	if !anon.Session.Anonymous() || anon.Session.AuthTime != nil || anon.Session.AAL != 0 || anon.Session.Version != 1 {
		t.Fatalf("anonymous session: %+v", anon.Session)
	}
	if anon.Session.Client.Device != "laptop" || anon.Session.Client.IP != "" {
		t.Fatalf("client: %+v", anon.Session.Client)
	}

	v, err := c.Validate(ctx, ValidateRequest{Token: anon.Token})
	must(t, err)
	if v.Session.ID != anon.Session.ID || v.CSRFToken != anon.CSRFToken {
		t.Fatalf("validate: %+v", v)
	}
	var attrs struct{ Cart int }
	must(t, v.Session.DecodeAttributes(&attrs))
	if attrs.Cart != 3 {
		t.Fatalf("attributes: %s", v.Session.Attributes)
	}
	// The CSRF token checks out; another one is csrf_failed.
	_, err = c.Validate(ctx, ValidateRequest{Token: anon.Token, CSRFToken: anon.CSRFToken})
	must(t, err)
	_, err = c.Validate(ctx, ValidateRequest{Token: anon.Token, CSRFToken: "not-the-csrf-token"})
	wantCode(t, err, CodeCSRFFailed, 403)
	// Step-up: an anonymous session has aal 0.
	_, err = c.Validate(ctx, ValidateRequest{Token: anon.Token, MinAAL: 1})
	wantCode(t, err, CodeReauthenticationRequired, 401)

	// Patch with If-Match: the current version writes, a stale one is
	// precondition_failed and writes nothing.
	got, err := c.GetSession(ctx, anon.Session.ID)
	must(t, err)
	p, err := c.PatchAttributes(ctx, got.ID, map[string]any{"theme": "dark"}, got.Version)
	must(t, err)
	if p.Version != got.Version+1 || string(p.Attributes) != `{"cart":3,"theme":"dark"}` {
		t.Fatalf("patched: v%d %s", p.Version, p.Attributes)
	}
	_, err = c.PatchAttributes(ctx, got.ID, map[string]any{"theme": "light"}, got.Version)
	wantCode(t, err, CodePreconditionFailed, 412)
	// A merge patch without If-Match; null removes a key.
	p, err = c.PatchAttributes(ctx, got.ID, map[string]any{"theme": nil, "x": 1}, 0)
	must(t, err)
	if string(p.Attributes) != `{"cart":3,"x":1}` {
		t.Fatalf("patched: %s", p.Attributes)
	}

	// Log in: upgrade. New id and token, the cart carried over, x not.
	login, err := c.Upgrade(ctx, UpgradeRequest{Token: anon.Token, Subject: subject, KeepAttributes: []string{"cart"}, AAL: 2, AMR: []string{"pwd", "otp"}})
	must(t, err)
	if login.Session.ID == anon.Session.ID || login.Token == anon.Token || login.Session.Subject != subject {
		t.Fatalf("upgrade: %+v", login)
	}
	if string(login.Session.Attributes) != `{"cart":3}` || login.Session.AAL != 2 || len(login.Session.AMR) != 2 || login.Session.AuthTime == nil {
		t.Fatalf("upgraded session: %+v", login.Session)
	}
	_, err = c.Validate(ctx, ValidateRequest{Token: anon.Token})
	wantCode(t, err, CodeInvalidToken, 401)
	_, err = c.GetSession(ctx, anon.Session.ID)
	wantCode(t, err, CodeNotFound, 404)
	_, err = c.Validate(ctx, ValidateRequest{Token: login.Token, MinAAL: 2, MaxAgeSecs: 60})
	must(t, err)

	// Two more devices; the list is newest first, paged by cursor.
	var ids []string
	for i := 0; i < 2; i++ {
		d, err := c.CreateSession(ctx, CreateSessionRequest{Subject: subject, Client: &ClientInfo{Device: fmt.Sprintf("phone-%d", i)}})
		must(t, err)
		ids = append(ids, d.Session.ID)
	}
	page1, err := c.ListSessions(ctx, subject, 2, "")
	must(t, err)
	if len(page1.Sessions) != 2 || page1.NextCursor == "" || page1.Sessions[0].ID != ids[1] || page1.Sessions[1].ID != ids[0] {
		t.Fatalf("page 1: %+v", page1)
	}
	page2, err := c.ListSessions(ctx, subject, 2, page1.NextCursor)
	must(t, err)
	if len(page2.Sessions) != 1 || page2.NextCursor != "" || page2.Sessions[0].ID != login.Session.ID {
		t.Fatalf("page 2: %+v", page2)
	}
	all, err := c.ListSessions(ctx, subject, 0, "")
	must(t, err)
	if len(all.Sessions) != 3 {
		t.Fatalf("list: %d sessions", len(all.Sessions))
	}

	// By subject: only that subject's sessions.
	got, err = c.GetSubjectSession(ctx, subject, ids[0])
	must(t, err)
	if got.ID != ids[0] {
		t.Fatalf("get for subject: %+v", got)
	}
	_, err = c.GetSubjectSession(ctx, subject+"-other", ids[0])
	wantCode(t, err, CodeNotFound, 404)
	err = c.DeleteSubjectSession(ctx, subject+"-other", ids[0])
	wantCode(t, err, CodeNotFound, 404)

	// Log out the other devices.
	n, err := c.RevokeOthers(ctx, subject, login.Session.ID)
	must(t, err)
	if n != 2 {
		t.Fatalf("revoke others: %d", n)
	}
	all, err = c.ListSessions(ctx, subject, 0, "")
	must(t, err)
	if len(all.Sessions) != 1 || all.Sessions[0].ID != login.Session.ID {
		t.Fatalf("after revoke others: %+v", all)
	}
	// except must be a live session of the subject: not_found, nothing revoked.
	_, err = c.RevokeOthers(ctx, subject, ids[0])
	wantCode(t, err, CodeNotFound, 404)

	// Logout: the token is dead; logout again is still fine (idempotent).
	must(t, c.Revoke(ctx, login.Token))
	_, err = c.Validate(ctx, ValidateRequest{Token: login.Token})
	wantCode(t, err, CodeInvalidToken, 401)
	must(t, c.Revoke(ctx, login.Token))
	// Deleting a revoked session by id: it existed (tombstone).
	must(t, c.DeleteSession(ctx, login.Session.ID))
	err = c.DeleteSession(ctx, "01a249ef-0000-7000-8000-000000000000")
	wantCode(t, err, CodeNotFound, 404)
	n, err = c.RevokeAll(ctx, subject)
	must(t, err)
	if n != 0 {
		t.Fatalf("revoke all: %d", n)
	}
	all, err = c.ListSessions(ctx, subject, 0, "")
	must(t, err)
	if len(all.Sessions) != 0 || all.NextCursor != "" {
		t.Fatalf("after logout: %+v", all)
	}
}

// RevokeAll and DeleteSession kill every token of the sessions they hit.
func TestRevokeAllAndDelete(t *testing.T) {
	ctx := ctxT(t)
	c := main1.client()
	subject := fmt.Sprintf("telegram:%d", time.Now().UnixNano())
	var toks []string
	for i := 0; i < 3; i++ {
		s, err := c.CreateSession(ctx, CreateSessionRequest{Subject: subject})
		must(t, err)
		toks = append(toks, s.Token)
	}
	n, err := c.RevokeAll(ctx, subject)
	must(t, err)
	if n != 3 {
		t.Fatalf("revoked %d", n)
	}
	for _, tok := range toks {
		_, err := c.Validate(ctx, ValidateRequest{Token: tok})
		wantCode(t, err, CodeInvalidToken, 401)
	}
	s, err := c.CreateSession(ctx, CreateSessionRequest{Subject: subject})
	must(t, err)
	must(t, c.DeleteSession(ctx, s.Session.ID))
	_, err = c.Validate(ctx, ValidateRequest{Token: s.Token})
	wantCode(t, err, CodeInvalidToken, 401)
}

// A revoked token, a forged one and an unknown one are all invalid_token,
// for validate and upgrade alike; logout of a malformed token is
// invalid_token too.
func TestRevokedToken(t *testing.T) {
	ctx := ctxT(t)
	c := main1.client()
	s, err := c.CreateSession(ctx, CreateSessionRequest{Subject: "user-revoked"})
	must(t, err)
	must(t, c.Revoke(ctx, s.Token))
	_, err = c.Validate(ctx, ValidateRequest{Token: s.Token})
	e := wantCode(t, err, CodeInvalidToken, 401)
	if strings.Contains(e.Error(), s.Token) {
		t.Fatal("the token is in the error text")
	}
	_, err = c.Upgrade(ctx, UpgradeRequest{Token: s.Token, Subject: "user-revoked"})
	wantCode(t, err, CodeInvalidToken, 401)
	forged := s.Token[:len(s.Token)-2] + "AA"
	_, err = c.Validate(ctx, ValidateRequest{Token: forged})
	wantCode(t, err, CodeInvalidToken, 401)
	err = c.Revoke(ctx, "ses_bogus")
	wantCode(t, err, CodeInvalidToken, 401)
	// A refresh token only refreshes: at validate it is invalid_token.
	pair, err := c.CreateSession(ctx, CreateSessionRequest{Subject: "user-revoked", Issue: IssuePair})
	must(t, err)
	_, err = c.Validate(ctx, ValidateRequest{Token: pair.RefreshToken})
	wantCode(t, err, CodeInvalidToken, 401)
	// Logout by the refresh token kills the access token too.
	must(t, c.Revoke(ctx, pair.RefreshToken))
	_, err = c.Validate(ctx, ValidateRequest{Token: pair.AccessToken})
	wantCode(t, err, CodeInvalidToken, 401)
}

// A pair: the access JWT validates, a refresh rotates, the parent again
// inside the grace window (1 s here) gets the same pair, and after it the
// parent is refresh_token_reused: the whole session is revoked.
func TestPairRefreshRotation(t *testing.T) {
	ctx := ctxT(t)
	c := main1.client()
	p0, err := c.CreateSession(ctx, CreateSessionRequest{Subject: "user-pair", Issue: IssuePair})
	must(t, err)
	if p0.Token != "" || !strings.HasPrefix(p0.RefreshToken, "rft_") || strings.Count(p0.AccessToken, ".") != 2 {
		t.Fatalf("pair: %+v", p0)
	}
	if !p0.AccessExpiresAt.After(time.Now()) || p0.AccessExpiresAt.After(p0.Session.ExpiresAt) {
		t.Fatalf("access_expires_at %v", p0.AccessExpiresAt)
	}
	v, err := c.Validate(ctx, ValidateRequest{Token: p0.AccessToken})
	must(t, err)
	if v.Session.ID != p0.Session.ID {
		t.Fatalf("validate: %+v", v.Session)
	}

	p1, err := c.Refresh(ctx, p0.RefreshToken)
	must(t, err)
	if p1.RefreshToken == p0.RefreshToken || p1.AccessToken == p0.AccessToken || p1.Session.ID != p0.Session.ID {
		t.Fatalf("refresh did not rotate: %+v", p1)
	}
	// A retry of the parent inside the grace window: the same pair.
	again, err := c.Refresh(ctx, p0.RefreshToken)
	must(t, err)
	if again.RefreshToken != p1.RefreshToken || again.AccessToken != p1.AccessToken {
		t.Fatal("a retry inside the grace window did not get the same pair")
	}
	_, err = c.Validate(ctx, ValidateRequest{Token: p1.AccessToken})
	must(t, err)

	time.Sleep(2100 * time.Millisecond) // past refresh_grace_secs = 1
	_, err = c.Refresh(ctx, p0.RefreshToken)
	wantCode(t, err, CodeRefreshTokenReused, 401)
	// The session is revoked: its access and refresh tokens are dead.
	_, err = c.Validate(ctx, ValidateRequest{Token: p1.AccessToken})
	wantCode(t, err, CodeInvalidToken, 401)
	_, err = c.Refresh(ctx, p1.RefreshToken)
	wantCode(t, err, CodeInvalidToken, 401)
}

// Upgrade to a pair, from a session token.
func TestUpgradeToPair(t *testing.T) {
	ctx := ctxT(t)
	c := main1.client()
	s, err := c.CreateSession(ctx, CreateSessionRequest{})
	must(t, err)
	p, err := c.Upgrade(ctx, UpgradeRequest{Token: s.Token, Subject: "user-up", Issue: IssuePair})
	must(t, err)
	if p.AccessToken == "" || p.RefreshToken == "" || p.Token != "" {
		t.Fatalf("upgrade to a pair: %+v", p)
	}
	_, err = c.Validate(ctx, ValidateRequest{Token: p.AccessToken})
	must(t, err)
	_, err = c.Validate(ctx, ValidateRequest{Token: s.Token})
	wantCode(t, err, CodeInvalidToken, 401)
}

// The upstream vault against a fake token endpoint: a grant that expires
// within the buffer is refreshed once on use, then served as is; deleting
// it makes the next use not_found; logging out drops it too.
func TestUpstreamGrant(t *testing.T) {
	ctx := ctxT(t)
	c := main1.client()
	s, err := c.CreateSession(ctx, CreateSessionRequest{Subject: "user-upstream"})
	must(t, err)

	_, err = c.UpstreamToken(ctx, "idp", s.Token)
	wantCode(t, err, CodeNotFound, 404) // no grant yet
	before := idp.calls.Load()
	must(t, c.PutGrant(ctx, "idp", s.Token, Grant{AccessToken: "at-initial", RefreshToken: "rt-initial", ExpiresIn: 30, Scope: "openid"}))
	tok, err := c.UpstreamToken(ctx, "idp", s.Token)
	must(t, err)
	if !strings.HasPrefix(tok.AccessToken, "at-") || tok.AccessToken == "at-initial" || idp.calls.Load() != before+1 {
		t.Fatalf("not refreshed once: %+v (calls %d)", tok, idp.calls.Load()-before)
	}
	if tok.ExpiresAt.Before(time.Now().Add(50*time.Minute)) || tok.Scope != "openid profile" {
		t.Fatalf("token: %+v", tok)
	}
	tok2, err := c.UpstreamToken(ctx, "idp", s.Token)
	must(t, err)
	if tok2.AccessToken != tok.AccessToken || idp.calls.Load() != before+1 {
		t.Fatal("a fresh token was refreshed again")
	}
	// A grant with expires_at, then forgotten.
	at := time.Now().Add(2 * time.Hour).UTC()
	must(t, c.PutGrant(ctx, "idp", s.Token, Grant{AccessToken: "at-long", ExpiresAt: &at}))
	tok3, err := c.UpstreamToken(ctx, "idp", s.Token)
	must(t, err)
	if tok3.AccessToken != "at-long" || tok3.Scope != "" {
		t.Fatalf("token: %+v", tok3)
	}
	must(t, c.DeleteGrant(ctx, "idp", s.Token))
	must(t, c.DeleteGrant(ctx, "idp", s.Token)) // whether or not there was one
	_, err = c.UpstreamToken(ctx, "idp", s.Token)
	wantCode(t, err, CodeNotFound, 404)
	// Unknown provider; logout drops the grants.
	_, err = c.UpstreamToken(ctx, "other", s.Token)
	wantCode(t, err, CodeNotFound, 404)
	must(t, c.PutGrant(ctx, "idp", s.Token, Grant{AccessToken: "at-x", ExpiresIn: 3600}))
	must(t, c.Revoke(ctx, s.Token))
	_, err = c.UpstreamToken(ctx, "idp", s.Token)
	wantCode(t, err, CodeInvalidToken, 401)
}

// Errors sessiond raises for bad values come back typed: the API key,
// a subject sessiond refuses, attributes over the cap.
func TestServerErrors(t *testing.T) {
	ctx := ctxT(t)
	_, err := New(main1.URL, "sdk_not-a-real-key-but-well-formed").GetSession(ctx, "01a249ef-0000-7000-8000-000000000000")
	e := wantCode(t, err, CodeUnauthenticated, 401)
	if e.Message == "" {
		t.Fatal("no message")
	}
	c := main1.client()
	_, err = c.GetSession(ctx, "01A249EF-0000-7000-8000-000000000000") // not lowercase
	wantCode(t, err, CodeInvalidRequest, 400)
	_, err = c.CreateSession(ctx, CreateSessionRequest{Subject: "u", IdleTimeoutSecs: 10, AbsoluteTimeoutSecs: 5})
	wantCode(t, err, CodeInvalidRequest, 400)
	_, err = c.CreateSession(ctx, CreateSessionRequest{Subject: "u", Attributes: map[string]string{"big": strings.Repeat("x", 17<<10)}})
	wantCode(t, err, CodePayloadTooLarge, 413)
	var ae *Error
	if !errors.As(err, &ae) || ae.Temporary() {
		t.Fatal("413 is not temporary")
	}
}
