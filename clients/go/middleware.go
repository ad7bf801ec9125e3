package sessiond

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type ctxKey struct{}

type ctxValue struct {
	session *Session
	csrf    string
}

// SessionFrom returns the session that Middleware validated for this
// request.
func SessionFrom(ctx context.Context) (*Session, bool) {
	v, ok := ctx.Value(ctxKey{}).(*ctxValue)
	if !ok || v.session == nil {
		return nil, false
	}
	return v.session, true
}

// CSRFTokenFrom returns the CSRF token of the session that Middleware
// validated ("" without one): hand it to pages that post forms or call
// the API from script, which send it back in X-CSRF-Token.
func CSRFTokenFrom(ctx context.Context) string {
	if v, ok := ctx.Value(ctxKey{}).(*ctxValue); ok {
		return v.csrf
	}
	return ""
}

// Middleware returns net/http middleware that lets through only requests
// with a live session, validated by sessiond. The token is read from
// "Authorization: Bearer <token>" or, when that header is absent and
// cookieName is not "", from that cookie. The request's User-Agent goes
// along as the client binding (for a policy that checks fingerprints).
//
// A cookie is sent by the browser on its own, so a cookie-authenticated
// request with a state-changing method (anything but GET, HEAD, OPTIONS
// and TRACE) must also carry the session's CSRF token in X-CSRF-Token
// (see CSRFTokenFrom); without it the answer is 403 csrf_failed.
//
// The handler reaches the session with SessionFrom(r.Context()). Other
// requests get a JSON error {"error", "message"}: 401 (unauthenticated
// when there is no token; invalid_token, session_expired, token_expired,
// reauthentication_required otherwise), 403 csrf_failed, 503
// store_unavailable with Retry-After when sessiond or its store cannot
// answer (never "allow"), 500 internal_error when sessiond refuses this
// service's API key.
func Middleware(client *Client, cookieName string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, fromCookie, ok := requestToken(r, cookieName)
			if !ok {
				writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "a session token is required", 0)
				return
			}
			req := ValidateRequest{Token: token}
			if ua := r.UserAgent(); ua != "" {
				req.Client = &ClientBinding{UserAgent: ua}
			}
			if fromCookie && !safeMethod(r.Method) {
				req.CSRFToken = r.Header.Get("X-CSRF-Token")
				if req.CSRFToken == "" {
					writeError(w, http.StatusForbidden, CodeCSRFFailed, "X-CSRF-Token is required", 0)
					return
				}
			}
			v, err := client.Validate(r.Context(), req)
			if err != nil {
				denied(w, err)
				return
			}
			ctx := context.WithValue(r.Context(), ctxKey{}, &ctxValue{session: &v.Session, csrf: v.CSRFToken})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// requestToken finds the token: the bearer token, else the cookie. ok is
// false when there is none at all.
func requestToken(r *http.Request, cookieName string) (token string, fromCookie, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:]), false, true
		}
		// Another scheme: not ours; the cookie may still hold a session.
	}
	if cookieName != "" {
		if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
			return c.Value, true, true
		}
	}
	return "", false, false
}

func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// denied answers a failed validation without revealing more than the code.
func denied(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrInvalidArgument) {
		writeError(w, http.StatusUnauthorized, CodeInvalidToken, "the session token is not valid", 0)
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		writeError(w, http.StatusInternalServerError, CodeInternalError, "the session could not be checked", 0)
		return
	}
	switch e.Code {
	case CodeInvalidToken, CodeRefreshTokenReused:
		writeError(w, http.StatusUnauthorized, CodeInvalidToken, "the session token is not valid", 0)
	case CodeSessionExpired:
		writeError(w, http.StatusUnauthorized, CodeSessionExpired, "the session has expired", 0)
	case CodeTokenExpired:
		writeError(w, http.StatusUnauthorized, CodeTokenExpired, "the access token has expired: refresh it", 0)
	case CodeReauthenticationRequired:
		writeError(w, http.StatusUnauthorized, CodeReauthenticationRequired, "sign in again", 0)
	case CodeCSRFFailed:
		writeError(w, http.StatusForbidden, CodeCSRFFailed, "the CSRF token is not the session's", 0)
	case CodeStoreUnavailable, CodeUnavailable, CodeBadResponse, CodeRateLimited:
		ra := e.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		writeError(w, http.StatusServiceUnavailable, CodeStoreUnavailable, "sessions cannot be checked now; retry later", ra)
	default:
		writeError(w, http.StatusInternalServerError, CodeInternalError, "the session could not be checked", 0)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		if code == CodeUnauthenticated {
			h.Set("WWW-Authenticate", "Bearer")
		} else {
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
	}
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.WriteHeader(status)
	// code and msg are constants of this package: no escaping needed.
	_, _ = w.Write([]byte(`{"error":"` + code + `","message":"` + msg + `"}`))
}
