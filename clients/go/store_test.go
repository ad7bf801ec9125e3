package sessiond

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// startRedis starts a throwaway redis-server on a free loopback port (never
// the shared one on 6379); the test's cleanup kills it.
func startRedis(t *testing.T, port int) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not on the PATH (apt-get install -y redis-server): the store-down test needs it")
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if os.Getenv("SESSIOND_GO_TEST_VERBOSE") == "" {
		cmd.Stdout, cmd.Stderr = nil, nil
	}
	must(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The store goes down under sessiond: 503 store_unavailable with
// Retry-After; safe calls are retried once (after Retry-After, capped at
// 1 s), writes are not; the middleware answers 503, never "allow".
func TestStoreDown(t *testing.T) {
	ctx := ctxT(t)
	port := freePort(t)
	redis := startRedis(t, port)
	sd, err := startSessiond("SESSIOND_STORE=redis", "SESSIOND_STORE_URL=redis://127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer sd.stop()

	// Count the requests that reach sessiond through a proxy.
	var hits atomic.Int64
	target, _ := url.Parse(sd.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	c := New(proxy.URL, sd.Key)

	s, err := c.CreateSession(ctx, CreateSessionRequest{Subject: "store-down"})
	must(t, err)
	_, err = c.Validate(ctx, ValidateRequest{Token: s.Token})
	must(t, err)

	must(t, redis.Process.Kill())
	time.Sleep(100 * time.Millisecond)

	before := hits.Load()
	start := time.Now()
	_, err = c.Validate(ctx, ValidateRequest{Token: s.Token})
	e := wantCode(t, err, CodeStoreUnavailable, 503)
	if e.RetryAfter <= 0 {
		t.Fatalf("no Retry-After: %+v", e)
	}
	if n := hits.Load() - before; n != 2 {
		t.Fatalf("validate: %d requests, want 2 (one retry)", n)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 4*time.Second {
		t.Fatalf("validate with its retry took %v", d)
	}

	before = hits.Load()
	_, err = c.GetSession(ctx, s.Session.ID)
	wantCode(t, err, CodeStoreUnavailable, 503)
	if n := hits.Load() - before; n != 2 {
		t.Fatalf("get: %d requests, want 2", n)
	}

	before = hits.Load()
	_, err = c.CreateSession(ctx, CreateSessionRequest{Subject: "store-down"})
	wantCode(t, err, CodeStoreUnavailable, 503)
	err = c.Revoke(ctx, s.Token)
	wantCode(t, err, CodeStoreUnavailable, 503)
	if n := hits.Load() - before; n != 2 {
		t.Fatalf("writes: %d requests, want 2 (no retry)", n)
	}

	// The middleware: 503 with Retry-After.
	app := httptest.NewServer(Middleware(New(sd.URL, sd.Key, WithTimeout(500*time.Millisecond)), "sid")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the request got through with the store down")
	})))
	defer app.Close()
	req, _ := http.NewRequestWithContext(ctx, "GET", app.URL, nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("middleware: %d %v", resp.StatusCode, resp.Header)
	}

	// The store comes back (empty: nothing was saved): calls work again.
	startRedis(t, port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = c.CreateSession(ctx, CreateSessionRequest{Subject: "store-back"})
		if err == nil {
			break
		}
		if !IsCode(err, CodeStoreUnavailable) || time.Now().After(deadline) {
			t.Fatalf("after the store came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
