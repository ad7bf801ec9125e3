package sessiond

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const secretTok = "ses_SeCrEtToKeNvAlUe0123456789"

// Arguments that cannot be right are refused before any request, with an
// error that wraps ErrInvalidArgument and never holds the token.
func TestBadInputRefusedWithoutRequest(t *testing.T) {
	srv := newCounting(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(500)
	})
	ctx := ctxT(t)
	c := New(srv.URL, "sdk_test-key")
	long := strings.Repeat("a", 256)
	id := "01a249ef-0000-7000-8000-000000000000"
	calls := map[string]func() error{
		"validate empty":     func() error { _, err := c.Validate(ctx, ValidateRequest{}); return err },
		"validate space":     func() error { _, err := c.Validate(ctx, ValidateRequest{Token: secretTok + " x"}); return err },
		"validate newline":   func() error { _, err := c.Validate(ctx, ValidateRequest{Token: secretTok + "\n"}); return err },
		"validate tab":       func() error { _, err := c.Validate(ctx, ValidateRequest{Token: "\t" + secretTok}); return err },
		"validate NUL":       func() error { _, err := c.Validate(ctx, ValidateRequest{Token: secretTok + "\x00"}); return err },
		"validate DEL":       func() error { _, err := c.Validate(ctx, ValidateRequest{Token: secretTok + "\x7f"}); return err },
		"validate non-ASCII": func() error { _, err := c.Validate(ctx, ValidateRequest{Token: secretTok + "é"}); return err },
		"validate nbsp":      func() error { _, err := c.Validate(ctx, ValidateRequest{Token: secretTok + "\u00a0"}); return err },
		"validate csrf": func() error {
			_, err := c.Validate(ctx, ValidateRequest{Token: secretTok, CSRFToken: "a b"})
			return err
		},
		"validate negative max_age": func() error { _, err := c.Validate(ctx, ValidateRequest{Token: secretTok, MaxAgeSecs: -1}); return err },
		"upgrade empty token":       func() error { _, err := c.Upgrade(ctx, UpgradeRequest{Subject: "u"}); return err },
		"upgrade empty subject":     func() error { _, err := c.Upgrade(ctx, UpgradeRequest{Token: secretTok}); return err },
		"upgrade long subject":      func() error { _, err := c.Upgrade(ctx, UpgradeRequest{Token: secretTok, Subject: long}); return err },
		"upgrade control subject":   func() error { _, err := c.Upgrade(ctx, UpgradeRequest{Token: secretTok, Subject: "a\nb"}); return err },
		"upgrade bidi subject": func() error {
			_, err := c.Upgrade(ctx, UpgradeRequest{Token: secretTok, Subject: "a\u202eb"})
			return err
		},
		"upgrade bad issue": func() error {
			_, err := c.Upgrade(ctx, UpgradeRequest{Token: secretTok, Subject: "u", Issue: "jwt"})
			return err
		},
		"refresh empty":              func() error { _, err := c.Refresh(ctx, ""); return err },
		"refresh space":              func() error { _, err := c.Refresh(ctx, "rft_"+secretTok+" "); return err },
		"revoke empty":               func() error { return c.Revoke(ctx, "") },
		"revoke CR":                  func() error { return c.Revoke(ctx, secretTok+"\r") },
		"create long subject":        func() error { _, err := c.CreateSession(ctx, CreateSessionRequest{Subject: long}); return err },
		"create invalid UTF-8":       func() error { _, err := c.CreateSession(ctx, CreateSessionRequest{Subject: "\xff"}); return err },
		"create array attributes":    func() error { _, err := c.CreateSession(ctx, CreateSessionRequest{Attributes: []int{1}}); return err },
		"create bad issue":           func() error { _, err := c.CreateSession(ctx, CreateSessionRequest{Issue: "both"}); return err },
		"get empty id":               func() error { _, err := c.GetSession(ctx, ""); return err },
		"get id with slash":          func() error { _, err := c.GetSession(ctx, "../api-keys"); return err },
		"subject get empty subject":  func() error { _, err := c.GetSubjectSession(ctx, "", id); return err },
		"subject get empty id":       func() error { _, err := c.GetSubjectSession(ctx, "u", ""); return err },
		"subject delete long":        func() error { return c.DeleteSubjectSession(ctx, long, id) },
		"patch empty id":             func() error { _, err := c.PatchAttributes(ctx, "", map[string]any{}, 0); return err },
		"patch non-object":           func() error { _, err := c.PatchAttributes(ctx, id, []string{"x"}, 0); return err },
		"patch nil map":              func() error { _, err := c.PatchAttributes(ctx, id, map[string]any(nil), 0); return err },
		"delete empty id":            func() error { return c.DeleteSession(ctx, "") },
		"list empty subject":         func() error { _, err := c.ListSessions(ctx, "", 10, ""); return err },
		"list long subject":          func() error { _, err := c.ListSessions(ctx, long, 10, ""); return err },
		"list negative limit":        func() error { _, err := c.ListSessions(ctx, "u", -1, ""); return err },
		"revoke others empty except": func() error { _, err := c.RevokeOthers(ctx, "u", ""); return err },
		"revoke others empty subj":   func() error { _, err := c.RevokeOthers(ctx, "", id); return err },
		"revoke all empty subject":   func() error { _, err := c.RevokeAll(ctx, ""); return err },
		"revoke all long subject":    func() error { _, err := c.RevokeAll(ctx, long); return err },
		"upstream empty token":       func() error { _, err := c.UpstreamToken(ctx, "idp", ""); return err },
		"upstream space token":       func() error { _, err := c.UpstreamToken(ctx, "idp", secretTok+" "); return err },
		"upstream bad provider":      func() error { _, err := c.UpstreamToken(ctx, "../sessions", secretTok); return err },
		"upstream empty provider":    func() error { _, err := c.UpstreamToken(ctx, "", secretTok); return err },
		"put grant empty token":      func() error { return c.PutGrant(ctx, "idp", "", Grant{AccessToken: "a", ExpiresIn: 1}) },
		"put grant no expiry":        func() error { return c.PutGrant(ctx, "idp", secretTok, Grant{AccessToken: "a"}) },
		"put grant two expiries": func() error {
			at := time.Now()
			return c.PutGrant(ctx, "idp", secretTok, Grant{AccessToken: "a", ExpiresIn: 1, ExpiresAt: &at})
		},
		"put grant no access token": func() error { return c.PutGrant(ctx, "idp", secretTok, Grant{ExpiresIn: 1}) },
		"delete grant newline":      func() error { return c.DeleteGrant(ctx, "idp", secretTok+"\n") },
		"bad base URL":              func() error { _, err := New("127.0.0.1:7700", "k").GetSession(ctx, id); return err },
		"base URL with query":       func() error { _, err := New(srv.URL+"?x=1", "k").GetSession(ctx, id); return err },
		"empty API key":             func() error { _, err := New(srv.URL, "").GetSession(ctx, id); return err },
		"API key with newline": func() error {
			_, err := New(srv.URL, "sdk_k\r\nX-Evil: 1").GetSession(ctx, id)
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v does not wrap ErrInvalidArgument", name, err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidArgument || e.Status != 0 {
			t.Errorf("%s: %#v", name, err)
		}
		if strings.Contains(err.Error(), "SeCrEt") || strings.Contains(err.Error(), "sdk_") {
			t.Errorf("%s: a secret in the error text: %v", name, err)
		}
	}
	if n := srv.requests(); n != 0 {
		t.Fatalf("%d requests were made", n)
	}
}

// Tokens travel only in bodies; subjects are percent-encoded in paths.
func TestNoTokenInURLAndSubjectEscaped(t *testing.T) {
	var bodies atomic.Int64
	srv := newCounting(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), secretTok) {
			bodies.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		_, _ = io.WriteString(w, `{"error":"invalid_token","message":"the token is not valid"}`)
	})
	ctx := ctxT(t)
	c := New(srv.URL, "sdk_test-key")
	errs := []error{}
	_, err := c.Validate(ctx, ValidateRequest{Token: secretTok})
	errs = append(errs, err)
	_, err = c.Upgrade(ctx, UpgradeRequest{Token: secretTok, Subject: "u"})
	errs = append(errs, err)
	_, err = c.Refresh(ctx, secretTok)
	errs = append(errs, err)
	errs = append(errs, c.Revoke(ctx, secretTok))
	_, err = c.UpstreamToken(ctx, "idp", secretTok)
	errs = append(errs, err)
	errs = append(errs, c.PutGrant(ctx, "idp", secretTok, Grant{AccessToken: "x", ExpiresIn: 5}))
	errs = append(errs, c.DeleteGrant(ctx, "idp", secretTok))
	for i, err := range errs {
		wantCode(t, err, CodeInvalidToken, 401)
		if strings.Contains(err.Error(), "SeCrEt") {
			t.Errorf("call %d: the token is in the error text", i)
		}
	}
	if bodies.Load() != int64(len(errs)) {
		t.Fatalf("the token was in %d bodies of %d", bodies.Load(), len(errs))
	}
	_, _ = c.ListSessions(ctx, "team/alice:1 %x", 5, "abc/=")
	_, _ = c.RevokeOthers(ctx, "team/alice", "01a249ef-0000-7000-8000-000000000000")
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, u := range srv.uris {
		if strings.Contains(u, "SeCrEt") {
			t.Fatalf("a token in a URL: %s", u)
		}
	}
	n := len(srv.uris)
	if got, want := srv.uris[n-2], "/v1/subjects/team%2Falice:1%20%25x/sessions?cursor=abc%2F%3D&limit=5"; got != want {
		t.Fatalf("list URI %s, want %s", got, want)
	}
	if got, want := srv.uris[n-1], "/v1/subjects/team%2Falice/sessions?except=01a249ef-0000-7000-8000-000000000000"; got != want {
		t.Fatalf("revoke others URI %s, want %s", got, want)
	}
}

// Answers that are not what the API promises are bad_response.
func TestGarbageAnswer(t *testing.T) {
	ctx := ctxT(t)
	cases := []struct {
		name   string
		status int
		h      http.HandlerFunc
	}{
		{"HTML 200", 200, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>hello</html>")
		}},
		{"empty 200", 200, func(w http.ResponseWriter, r *http.Request) {}},
		{"truncated JSON", 200, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"session":{"id":"01a2`)
		}},
		{"cut short (Content-Length)", 200, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "500")
			_, _ = io.WriteString(w, `{"session":{"id":"01a2`)
			// The handler returns: the server closes the connection.
		}},
		{"trailing garbage", 200, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"session":{"id":"x"},"csrf_token":"c"} {}`)
		}},
		{"wrong types", 200, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"session":{"id":7}}`)
		}},
		{"no session", 200, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"csrf_token":"c"}`)
		}},
		{"502 from a proxy", 502, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html>Bad Gateway</html>")
		}},
		{"401 without a code", 401, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(401)
			_, _ = io.WriteString(w, `{"message":"nope"}`)
		}},
		{"redirect", 302, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCounting(t, tc.h)
			c := New(srv.URL, "sdk_test-key")
			_, err := c.Validate(ctx, ValidateRequest{Token: secretTok})
			wantCode(t, err, CodeBadResponse, tc.status)
			if strings.Contains(err.Error(), "SeCrEt") {
				t.Fatal("the token is in the error text")
			}
			if srv.requests() != 1 {
				t.Fatalf("%d requests", srv.requests())
			}
		})
	}
	// A 204 where a body is due, on a GET.
	srv := newCounting(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	_, err := New(srv.URL, "k").GetSession(ctx, "01a249ef-0000-7000-8000-000000000000")
	wantCode(t, err, CodeBadResponse, 204)
	// A revoke count that is missing.
	srv = newCounting(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{}`) })
	_, err = New(srv.URL, "k").RevokeAll(ctx, "u")
	wantCode(t, err, CodeBadResponse, 200)
}

// No answer at all: unavailable, wrapping the cause.
func TestTransportFailure(t *testing.T) {
	ctx := ctxT(t)
	port := freePort(t) // nothing listens there any more
	c := New("http://127.0.0.1:"+strconv.Itoa(port), "sdk_test-key")
	_, err := c.Validate(ctx, ValidateRequest{Token: secretTok})
	e := wantCode(t, err, CodeUnavailable, 0)
	var op *net.OpError
	if !errors.As(err, &op) || e.Unwrap() == nil {
		t.Fatalf("the cause is not wrapped: %v", err)
	}
	if strings.Contains(err.Error(), "SeCrEt") {
		t.Fatal("the token is in the error text")
	}
	if e.Temporary() != true {
		t.Fatal("unavailable is temporary")
	}

	// A server slower than the client's timeout.
	slow := newCounting(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	start := time.Now()
	_, err = New(slow.URL, "k", WithTimeout(100*time.Millisecond)).GetSession(ctx, "01a249ef-0000-7000-8000-000000000000")
	wantCode(t, err, CodeUnavailable, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("not a deadline: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the timeout took %v", d)
	}
	// The caller's context cancels too.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = New(slow.URL, "k").GetSession(cctx, "01a249ef-0000-7000-8000-000000000000")
	wantCode(t, err, CodeUnavailable, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("not cancelled: %v", err)
	}
}

// Only safe calls (GET, validate) are retried, once, on 503
// store_unavailable, after Retry-After capped at 1 s.
func TestRetryOnlyWhereSafe(t *testing.T) {
	ctx := ctxT(t)
	var fail atomic.Int64 // how many 503s are left to send
	srv := newCounting(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if _, ok := r.Header["Idempotency-Key"]; ok {
			t.Error("the Idempotency-Key marker was sent")
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || r.Header.Get("Accept") != "application/json" {
			t.Errorf("headers: %v", r.Header)
		}
		if fail.Add(-1) >= 0 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(503)
			_, _ = io.WriteString(w, `{"error":"store_unavailable","message":"the session store is unavailable; retry later"}`)
			return
		}
		_, _ = io.WriteString(w, `{"session":{"id":"01a249ef-0000-7000-8000-000000000000","version":1},"csrf_token":"c"}`)
	})
	c := New(srv.URL, "sdk_test-key")

	// One 503, then success: validate succeeds after ~1 s (30 s capped).
	fail.Store(1)
	start := time.Now()
	v, err := c.Validate(ctx, ValidateRequest{Token: secretTok})
	must(t, err)
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Fatalf("retry after %v, want ~1 s", d)
	}
	if v.Session.ID == "" || srv.requests() != 2 {
		t.Fatalf("%d requests", srv.requests())
	}

	// Always 503: a GET tries twice and returns the error with RetryAfter.
	fail.Store(100)
	_, err = c.GetSession(ctx, "01a249ef-0000-7000-8000-000000000000")
	e := wantCode(t, err, CodeStoreUnavailable, 503)
	if e.RetryAfter != 30*time.Second || srv.requests() != 4 {
		t.Fatalf("RetryAfter %v, %d requests", e.RetryAfter, srv.requests())
	}

	// Writes are never retried.
	for _, call := range []func() error{
		func() error { _, err := c.CreateSession(ctx, CreateSessionRequest{}); return err },
		func() error { _, err := c.Refresh(ctx, secretTok); return err },
		func() error { return c.Revoke(ctx, secretTok) },
		func() error { _, err := c.Upgrade(ctx, UpgradeRequest{Token: secretTok, Subject: "u"}); return err },
		func() error {
			_, err := c.PatchAttributes(ctx, "01a249ef-0000-7000-8000-000000000000", map[string]int{"a": 1}, 1)
			return err
		},
		func() error { return c.DeleteSession(ctx, "01a249ef-0000-7000-8000-000000000000") },
		func() error { _, err := c.RevokeAll(ctx, "u"); return err },
	} {
		before := srv.requests()
		wantCode(t, call(), CodeStoreUnavailable, 503)
		if srv.requests() != before+1 {
			t.Fatalf("a write was retried (%d requests)", srv.requests()-before)
		}
	}

	// A deadline shorter than the wait: no retry, the 503 stands.
	before := srv.requests()
	_, err = New(srv.URL, "k", WithTimeout(300*time.Millisecond)).Validate(ctx, ValidateRequest{Token: secretTok})
	wantCode(t, err, CodeStoreUnavailable, 503)
	if srv.requests() != before+1 {
		t.Fatal("retried past the deadline")
	}
	// Another 503 code (rate limited) is not retried either.
	rl := newCounting(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(429)
		_, _ = io.WriteString(w, `{"error":"rate_limited","message":"slow down"}`)
	})
	_, err = New(rl.URL, "k").Validate(ctx, ValidateRequest{Token: secretTok})
	e = wantCode(t, err, CodeRateLimited, 429)
	if e.RetryAfter != 2*time.Second || rl.requests() != 1 {
		t.Fatalf("rate limited: %v, %d requests", e.RetryAfter, rl.requests())
	}
}

// Sequential calls reuse one kept-alive connection.
func TestKeepAlive(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			w.WriteHeader(204)
			return
		}
		_, _ = io.WriteString(w, `{"session":{"id":"01a249ef-0000-7000-8000-000000000000"}}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	ctx := ctxT(t)
	c := New(srv.URL, "sdk_test-key")
	for i := 0; i < 20; i++ {
		must(t, c.Revoke(ctx, secretTok))
		_, err := c.GetSession(ctx, "01a249ef-0000-7000-8000-000000000000")
		must(t, err)
	}
	// Another Client shares the pool.
	must(t, New(srv.URL, "sdk_other").Revoke(ctx, secretTok))
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 41 sequential calls", n)
	}
}

func TestErrorHelpers(t *testing.T) {
	e := &Error{Status: 401, Code: CodeInvalidToken, Message: "the token is not valid"}
	var err error = e
	if !IsCode(err, CodeInvalidToken) || IsCode(nil, CodeInvalidToken) || ErrorCode(errors.New("x")) != "" {
		t.Fatal("IsCode / ErrorCode")
	}
	if got := e.Error(); got != "sessiond: invalid_token (401): the token is not valid" {
		t.Fatalf("Error() = %q", got)
	}
	if parseRetryAfter("2") != 2*time.Second || parseRetryAfter("-1") != 0 || parseRetryAfter("soon") != 0 {
		t.Fatal("parseRetryAfter")
	}
	at := time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)
	if d := parseRetryAfter(at); d < 8*time.Second || d > 10*time.Second {
		t.Fatalf("parseRetryAfter(date) = %v", d)
	}
}
