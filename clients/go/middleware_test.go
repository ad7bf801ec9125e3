package sessiond

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// The middleware against the real sessiond: bearer and cookie tokens, the
// session in the context, 401 JSON without a live one, CSRF on cookie
// writes.
func TestMiddleware(t *testing.T) {
	ctx := ctxT(t)
	c := main1.client()
	app := Middleware(c, "sid")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := SessionFrom(r.Context())
		if !ok {
			t.Error("no session in the context")
			w.WriteHeader(500)
			return
		}
		_, _ = io.WriteString(w, s.Subject+" "+CSRFTokenFrom(r.Context()))
	}))
	srv := httptest.NewServer(app)
	defer srv.Close()

	s, err := c.CreateSession(ctx, CreateSessionRequest{Subject: "mw-user"})
	must(t, err)
	pair, err := c.CreateSession(ctx, CreateSessionRequest{Subject: "mw-pair", Issue: IssuePair})
	must(t, err)
	dead, err := c.CreateSession(ctx, CreateSessionRequest{Subject: "mw-dead"})
	must(t, err)
	must(t, c.Revoke(ctx, dead.Token))

	type hdrs map[string]string
	do := func(method string, h hdrs) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+"/x", nil)
		must(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	errCode := func(body string) string {
		t.Helper()
		var e struct{ Error, Message string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Message == "" {
			t.Fatalf("not a JSON error: %q", body)
		}
		return e.Error
	}

	// Bearer session token and bearer access JWT.
	if st, body, _ := do("GET", hdrs{"Authorization": "Bearer " + s.Token}); st != 200 || body != "mw-user "+s.CSRFToken {
		t.Fatalf("bearer: %d %q", st, body)
	}
	if st, body, _ := do("POST", hdrs{"Authorization": "bearer " + pair.AccessToken}); st != 200 || !strings.HasPrefix(body, "mw-pair ") {
		t.Fatalf("bearer JWT: %d %q", st, body)
	}
	// Cookie: GET passes; a POST needs the CSRF token.
	cookie := "sid=" + s.Token
	if st, body, _ := do("GET", hdrs{"Cookie": cookie}); st != 200 || !strings.HasPrefix(body, "mw-user") {
		t.Fatalf("cookie: %d %q", st, body)
	}
	if st, body, _ := do("POST", hdrs{"Cookie": cookie}); st != 403 || errCode(body) != CodeCSRFFailed {
		t.Fatalf("cookie POST without CSRF: %d %q", st, body)
	}
	if st, body, _ := do("POST", hdrs{"Cookie": cookie, "X-CSRF-Token": "wrong"}); st != 403 || errCode(body) != CodeCSRFFailed {
		t.Fatalf("cookie POST, wrong CSRF: %d %q", st, body)
	}
	if st, body, _ := do("POST", hdrs{"Cookie": cookie, "X-CSRF-Token": s.CSRFToken}); st != 200 {
		t.Fatalf("cookie POST with CSRF: %d %q", st, body)
	}
	// Another Authorization scheme: the cookie still counts.
	if st, _, _ := do("GET", hdrs{"Authorization": "Basic dTpw", "Cookie": cookie}); st != 200 {
		t.Fatalf("basic + cookie: %d", st)
	}

	// 401 JSON: no token, a revoked one, a malformed one, a wrong cookie name.
	for name, h := range map[string]hdrs{
		"none":        {},
		"revoked":     {"Authorization": "Bearer " + dead.Token},
		"revoked ck":  {"Cookie": "sid=" + dead.Token},
		"malformed":   {"Authorization": "Bearer ses_bad token"},
		"other ck":    {"Cookie": "session=" + s.Token},
		"empty bear.": {"Authorization": "Bearer "},
		"refresh tok": {"Authorization": "Bearer " + pair.RefreshToken},
	} {
		st, body, hdr := do("GET", h)
		if st != 401 || hdr.Get("Content-Type") != "application/json" || hdr.Get("WWW-Authenticate") == "" {
			t.Fatalf("%s: %d %q", name, st, body)
		}
		code := errCode(body)
		if code != CodeUnauthenticated && code != CodeInvalidToken {
			t.Fatalf("%s: code %s", name, code)
		}
		if strings.Contains(body, "ses_") {
			t.Fatalf("%s: a token in the answer", name)
		}
	}
	if _, ok := SessionFrom(ctx); ok {
		t.Fatal("a session in a bare context")
	}
}

// sessiond down: the middleware answers 503 with Retry-After, never lets
// the request through.
func TestMiddlewareSessiondDown(t *testing.T) {
	c := New("http://127.0.0.1:"+strconv.Itoa(freePort(t)), "sdk_test-key")
	srv := httptest.NewServer(Middleware(c, "sid")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the request got through")
	})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", "Bearer ses_abc")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}
