package sessiond

import (
	"errors"
	"fmt"
	"time"
)

// The stable error codes of sessiond's v1 API (docs/api.md, "Errors"),
// found in Error.Code.
const (
	CodeInvalidRequest           = "invalid_request"
	CodeUnauthenticated          = "unauthenticated"
	CodeInvalidToken             = "invalid_token"
	CodeSessionExpired           = "session_expired"
	CodeTokenExpired             = "token_expired"
	CodeReauthenticationRequired = "reauthentication_required"
	CodeRefreshTokenReused       = "refresh_token_reused"
	CodeCSRFFailed               = "csrf_failed"
	CodeInsufficientScope        = "insufficient_scope"
	CodeNotFound                 = "not_found"
	CodeMethodNotAllowed         = "method_not_allowed"
	CodeSessionLimitReached      = "session_limit_reached"
	CodeConflict                 = "conflict"
	CodeRequestTimeout           = "request_timeout"
	CodePreconditionFailed       = "precondition_failed"
	CodePayloadTooLarge          = "payload_too_large"
	CodeUnsupportedMediaType     = "unsupported_media_type"
	CodeRateLimited              = "rate_limited"
	CodeHeadersTooLarge          = "headers_too_large"
	CodeInternalError            = "internal_error"
	CodeStoreUnavailable         = "store_unavailable"
	CodeUpstreamUnavailable      = "upstream_unavailable"
	CodeInsufficientStorage      = "insufficient_storage"
)

// Codes made by this client, never sent by sessiond.
const (
	// CodeBadResponse: sessiond's answer was not what the API promises
	// (not JSON, truncated, missing a required field, an unexpected
	// status). Error.Status is the HTTP status received.
	CodeBadResponse = "bad_response"
	// CodeUnavailable: no answer at all (connection refused or reset,
	// timeout, context cancelled). The cause is wrapped: errors.Is(err,
	// context.DeadlineExceeded) works.
	CodeUnavailable = "unavailable"
	// CodeInvalidArgument: the call was refused before any request was
	// made; errors.Is(err, ErrInvalidArgument) is true.
	CodeInvalidArgument = "invalid_argument"
)

// ErrInvalidArgument is wrapped by every error that refuses a call's
// arguments before any request is sent (an empty or malformed token, an
// empty or over-long subject, ...).
var ErrInvalidArgument = errors.New("sessiond: invalid argument")

// Error is every error the client returns. Use errors.As to get it:
//
//	var e *sessiond.Error
//	if errors.As(err, &e) && e.Code == sessiond.CodeInvalidToken { ... }
//
// Its text never holds a token or the API key: sessiond's messages name
// fields, never secret values, and the client's own name only the field.
type Error struct {
	// Status is the HTTP status (0 when no answer was received or the
	// call was refused before sending).
	Status int
	// Code is one of the Code* constants.
	Code string
	// Message is sessiond's human text (or the client's).
	Message string
	// RetryAfter is the answer's Retry-After (0 when absent).
	RetryAfter time.Duration

	err error
}

func (e *Error) Error() string {
	s := "sessiond: " + e.Code
	if e.Status != 0 {
		s += fmt.Sprintf(" (%d)", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.err != nil && e.err != ErrInvalidArgument {
		s += ": " + e.err.Error()
	}
	return s
}

// Unwrap returns the cause: the transport error for CodeUnavailable, the
// decoding error for CodeBadResponse, ErrInvalidArgument for
// CodeInvalidArgument, nil otherwise.
func (e *Error) Unwrap() error { return e.err }

// Temporary reports whether the same call may succeed later unchanged
// (store or upstream unavailable, rate limited, conflict, no answer).
func (e *Error) Temporary() bool {
	switch e.Code {
	case CodeStoreUnavailable, CodeUpstreamUnavailable, CodeRateLimited, CodeConflict, CodeUnavailable:
		return true
	}
	return false
}

// ErrorCode returns the Code of err's *Error, or "" when err is nil or
// not from this client.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code string) bool { return err != nil && ErrorCode(err) == code }

func invalidArg(format string, a ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf(format, a...), err: ErrInvalidArgument}
}

func badResponse(status int, msg string, cause error) *Error {
	return &Error{Status: status, Code: CodeBadResponse, Message: msg, err: cause}
}
