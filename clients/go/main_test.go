package sessiond

// The tests run against a real sessiond, started here on a free loopback
// port with a temporary data directory. The binary is $SESSIOND_BIN, else
// ../../target/release/sessiond if it exists, else
// ../../target/debug/sessiond; without one the tests fail (never skip).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	sessiondBinPath string
	main1           *sessiondProc // embedded store, provider "idp", grace 1 s
	idp             *fakeIDP
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin, err := findSessiond()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: "+err.Error())
		return 1
	}
	sessiondBinPath = bin
	idp = newFakeIDP()
	defer idp.srv.Close()
	main1, err = startSessiond(
		"SESSIOND_TOKENS__REFRESH_GRACE_SECS=1",
		"SESSIOND_UPSTREAM__PROVIDERS__IDP__TOKEN_URL="+idp.srv.URL+"/token",
		"SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_ID=sessiond-go-test",
		"SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_SECRET=not-a-real-secret",
		"SESSIOND_UPSTREAM__PROVIDERS__IDP__REFRESH_BUFFER_SECS=60",
		"SESSIOND_UPSTREAM__REFRESH_INTERVAL_SECS=0",
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting sessiond: "+err.Error())
		return 1
	}
	defer main1.stop()
	return m.Run()
}

func findSessiond() (string, error) {
	if b := os.Getenv("SESSIOND_BIN"); b != "" {
		if st, err := os.Stat(b); err != nil || st.IsDir() {
			return "", fmt.Errorf("SESSIOND_BIN=%s is not a file", b)
		}
		return filepath.Abs(b)
	}
	for _, p := range []string{"../../target/release/sessiond", "../../target/debug/sessiond"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return filepath.Abs(p)
		}
	}
	return "", errors.New("no sessiond binary: build it (cargo build -p sessiond) or set SESSIOND_BIN " +
		"(looked for ../../target/release/sessiond and ../../target/debug/sessiond)")
}

// sessiondProc is one running sessiond.
type sessiondProc struct {
	URL string
	Key string
	cmd *exec.Cmd
	dir string
	log *syncBuffer
	// exited is closed when the process has been waited for.
	exited chan struct{}
}

var listeningRE = regexp.MustCompile(`listening on (\S+)`)

// startSessiond starts sessiond serve with a fresh data directory on a
// free loopback port; env adds SESSIOND_* settings.
func startSessiond(env ...string) (*sessiondProc, error) {
	dir, err := os.MkdirTemp("", "sessiond-go-test-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(sessiondBinPath, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SESSIOND_") && !strings.HasPrefix(kv, "RUST_LOG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "SESSIOND_LISTEN=127.0.0.1:0", "SESSIOND_DATA_DIR="+dir, "RUST_LOG=info")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &sessiondProc{cmd: cmd, dir: dir, log: &syncBuffer{}, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			p.log.WriteString(line + "\n")
			if !found {
				if m := listeningRE.FindStringSubmatch(line); m != nil {
					found = true
					addr <- m[1]
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.exited:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sessiond exited at start:\n%s", p.log.String())
	case <-time.After(20 * time.Second):
		p.stop()
		return nil, fmt.Errorf("sessiond did not say where it listens within 20 s:\n%s", p.log.String())
	}
	key, err := os.ReadFile(filepath.Join(dir, "admin.key"))
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("reading admin.key: %w", err)
	}
	p.Key = strings.TrimSpace(string(key))
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after 5 s, and removes the data dir.
func (p *sessiondProc) stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	os.RemoveAll(p.dir)
}

func (p *sessiondProc) client(opts ...Option) *Client { return New(p.URL, p.Key, opts...) }

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) WriteString(v string) {
	s.mu.Lock()
	s.b.WriteString(v)
	s.mu.Unlock()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeIDP is an OAuth 2.0 token endpoint on loopback for the upstream
// grant tests: every refresh_token grant answers a new access token
// "at-N" and refresh token "rt-N".
type fakeIDP struct {
	srv   *httptest.Server
	calls atomic.Int64
}

func newFakeIDP() *fakeIDP {
	f := &fakeIDP{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") != "refresh_token" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"unsupported_grant_type"}`)
			return
		}
		n := f.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token":  fmt.Sprintf("at-%d", n),
			"refresh_token": fmt.Sprintf("rt-%d", n),
			"token_type":    "Bearer",
			"expires_in":    3600,
			"scope":         "openid profile",
		})
	}))
	return f
}

// ---- helpers shared by the tests ----

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is an *Error with the code (and status, when
// status is not 0).
func wantCode(t testing.TB, err error, code string, status int) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error %s, got %T %v", code, err, err)
	}
	if e.Code != code || (status != 0 && e.Status != status) {
		t.Fatalf("want %s (%d), got %s (%d): %v", code, status, e.Code, e.Status, err)
	}
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// counting is an httptest server that counts the requests it gets and
// keeps their request URIs, answering with h.
type counting struct {
	*httptest.Server
	n    atomic.Int64
	mu   sync.Mutex
	uris []string
}

func newCounting(t testing.TB, h http.HandlerFunc) *counting {
	c := &counting{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		c.mu.Lock()
		c.uris = append(c.uris, r.RequestURI)
		c.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *counting) requests() int64 { return c.n.Load() }
