package sessiond_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"

	sessiond "github.com/sessionkit/sessiond-go"
)

// The README's five lines (compiled, not run: they need a sessiond).
func Example() {
	run := func(ctx context.Context, api http.Handler) error {
		c := sessiond.New("http://127.0.0.1:7700", os.Getenv("SESSIOND_API_KEY"))
		s, err := c.CreateSession(ctx, sessiond.CreateSessionRequest{Subject: "user-1"}) // at login
		if err != nil {
			return err // a *sessiond.Error
		}
		_, err = c.Validate(ctx, sessiond.ValidateRequest{Token: s.Token}) // per request
		http.Handle("/api/", sessiond.Middleware(c, "session")(api))       // or let this validate
		return err
	}
	_ = run
}

// Telling the errors apart.
func ExampleError() {
	c := sessiond.New("http://127.0.0.1:7700", os.Getenv("SESSIOND_API_KEY"))
	_, err := c.Validate(context.Background(), sessiond.ValidateRequest{Token: "ses_…"})
	var e *sessiond.Error
	switch {
	case err == nil:
	case errors.Is(err, sessiond.ErrInvalidArgument):
		log.Print("not a token at all: no request was made")
	case errors.As(err, &e) && e.Code == sessiond.CodeTokenExpired:
		log.Print("refresh the pair, then retry")
	case errors.As(err, &e) && e.Code == sessiond.CodeStoreUnavailable:
		log.Printf("retry after %v", e.RetryAfter)
	default:
		log.Print(err)
	}
}

// A handler behind the middleware.
func ExampleMiddleware() {
	c := sessiond.New("http://127.0.0.1:7700", os.Getenv("SESSIOND_API_KEY"))
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := sessiond.SessionFrom(r.Context())
		fmt.Fprintf(w, "hello %s", s.Subject)
	})
	http.Handle("/api/", sessiond.Middleware(c, "session")(api))
}
