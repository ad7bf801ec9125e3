// Package sessiond is the Go client of sessiond, the session server of
// sessionkit (its v1 JSON HTTP API is described in docs/api.md).
//
// It uses the standard library only. A Client is safe for concurrent use
// and keeps its connections alive: make one per process and share it.
//
//	c := sessiond.New("http://127.0.0.1:7700", apiKey)
//	s, err := c.CreateSession(ctx, sessiond.CreateSessionRequest{Subject: "user-1"})
//	v, err := c.Validate(ctx, sessiond.ValidateRequest{Token: s.Token})
//
// Every error is an *Error (errors.As) with a stable Code. Arguments that
// cannot be right (an empty token, a token with whitespace, an empty or
// over-long subject) are refused before any request, with an error that
// wraps ErrInvalidArgument. Tokens travel only in request bodies, never in
// a URL, and never appear in an error's text.
package sessiond

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds a whole call (retry included) unless WithTimeout
// says otherwise.
const DefaultTimeout = 5 * time.Second

const (
	// maxRetryWait caps the wait before the one retry of a safe call.
	maxRetryWait = time.Second
	// defaultRetryWait is the wait when a 503 has no usable Retry-After.
	defaultRetryWait = 100 * time.Millisecond
	// maxResponseBytes caps an answer (a page of 1000 sessions with 16 KiB
	// attributes each fits).
	maxResponseBytes = 64 << 20
	userAgent        = "sessiond-go/0.1"
)

// sharedTransport is the connection pool every Client made without
// WithHTTPClient uses: connections to sessiond are kept alive and reused.
var sharedTransport = newTransport()

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	// Below sessiond's header_read_timeout_secs (10 s), after which it
	// closes an idle keep-alive connection: the pool drops it first.
	t.IdleConnTimeout = 5 * time.Second
	// sessiond takes no Content-Encoding and sends none.
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = false
	return t
}

// sharedHTTPClient never follows redirects: sessiond sends none, and the
// API key must not travel to another address.
var sharedHTTPClient = &http.Client{
	Transport:     sharedTransport,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Client talks to one sessiond. Make it with New.
type Client struct {
	base      string   // scheme://host[:port][/prefix], no trailing slash
	auth      []string // {"Bearer <key>"}
	ua        []string
	hc        *http.Client
	timeout   time.Duration
	configErr *Error
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout bounds each call, its retry included (default 5 s; 0 or
// less: only the caller's context bounds it).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithHTTPClient makes the Client send its requests through hc instead of
// the package's shared keep-alive client.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithUserAgent sets the User-Agent header (default "sessiond-go/0.1").
func WithUserAgent(ua string) Option { return func(c *Client) { c.ua = []string{ua} } }

// New returns a Client of the sessiond at baseURL (such as
// "http://127.0.0.1:7700") that authenticates with apiKey. A malformed
// baseURL or apiKey makes every call fail with CodeInvalidArgument, before
// any request.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{
		base:    strings.TrimRight(baseURL, "/"),
		auth:    []string{"Bearer " + apiKey},
		ua:      []string{userAgent},
		hc:      sharedHTTPClient,
		timeout: DefaultTimeout,
	}
	for _, o := range opts {
		o(c)
	}
	u, err := url.Parse(c.base)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		c.configErr = invalidArg("baseURL must be an http:// or https:// URL")
	case u.RawQuery != "" || u.Fragment != "":
		c.configErr = invalidArg("baseURL must not have a query or a fragment")
	default:
		if e := checkToken("apiKey", apiKey); e != nil {
			c.configErr = e
		}
	}
	return c
}

// request is one API call.
type request struct {
	method      string
	path        string // escaped, from the API root ("/v1/...")
	query       url.Values
	body        any // marshalled to JSON when not nil
	contentType string
	ifMatch     string
	// safe calls (GET, validate) are retried once on 503
	// store_unavailable, and replayed by the transport on a kept-alive
	// connection that the server had just closed.
	safe bool
}

// checker is implemented by answers with required fields.
type checker interface{ check() error }

// do runs r and decodes a 2xx answer into out (nil: the body is ignored).
func (c *Client) do(ctx context.Context, r *request, out any) error {
	if c.configErr != nil {
		return c.configErr
	}
	var body []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return &Error{Code: CodeInvalidArgument, Message: "the request body cannot be encoded as JSON", err: ErrInvalidArgument}
		}
		body = b
	}
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		status, hdr, data, err := c.roundTrip(ctx, r, target, body)
		if err != nil {
			return err
		}
		if status >= 200 && status < 300 {
			return decode(status, data, out)
		}
		e := errorFrom(status, hdr, data)
		if !r.safe || attempt > 0 || e.Code != CodeStoreUnavailable {
			return e
		}
		wait := e.RetryAfter
		if wait > maxRetryWait {
			wait = maxRetryWait
		} else if wait <= 0 {
			wait = defaultRetryWait
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return e // no time left to retry: the first answer stands
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return e
		case <-t.C:
		}
	}
}

func (c *Client) roundTrip(ctx context.Context, r *request, target string, body []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, rd)
	if err != nil {
		return 0, nil, nil, &Error{Code: CodeInvalidArgument, Message: "cannot build the request", err: ErrInvalidArgument}
	}
	h := req.Header
	h["Authorization"] = c.auth
	h["Accept"] = acceptJSON
	h["User-Agent"] = c.ua
	if body != nil {
		if r.contentType != "" {
			h["Content-Type"] = []string{r.contentType}
		} else {
			h["Content-Type"] = contentJSON
		}
	}
	if r.ifMatch != "" {
		h["If-Match"] = []string{r.ifMatch}
	}
	if r.safe && r.method != http.MethodGet {
		// Marks the request replayable for net/http without sending the
		// header (a nil value is never written).
		h["Idempotency-Key"] = nil
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, &Error{Code: CodeUnavailable, Message: "no answer from sessiond", err: err}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	resp.Body.Close()
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, nil, &Error{Status: resp.StatusCode, Code: CodeUnavailable, Message: "the answer did not arrive in time", err: err}
		}
		return 0, nil, nil, badResponse(resp.StatusCode, "the answer was cut short", err)
	}
	if len(data) > maxResponseBytes {
		return 0, nil, nil, badResponse(resp.StatusCode, "the answer is too large", nil)
	}
	return resp.StatusCode, resp.Header, data, nil
}

var (
	acceptJSON  = []string{"application/json"}
	contentJSON = []string{"application/json"}
)

func decode(status int, data []byte, out any) error {
	if out == nil {
		return nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return badResponse(status, "the answer has no body", nil)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return badResponse(status, "the answer is not the expected JSON", err)
	}
	if ch, ok := out.(checker); ok {
		if err := ch.check(); err != nil {
			return badResponse(status, "the answer lacks a required field", err)
		}
	}
	return nil
}

// errorFrom turns a non-2xx answer into an *Error.
func errorFrom(status int, hdr http.Header, data []byte) *Error {
	e := &Error{Status: status, RetryAfter: parseRetryAfter(hdr.Get("Retry-After"))}
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(data, &body); err != nil || body.Error == "" {
		e.Code = CodeBadResponse
		e.Message = "status " + strconv.Itoa(status) + " without sessiond's JSON error body"
		e.err = err
		return e
	}
	e.Code = body.Error
	e.Message = body.Message
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// malformed.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > 86400*365 {
			n = 86400 * 365
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
