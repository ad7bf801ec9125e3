package sessiond

// "A client's validate call adds at most 50 µs over a raw HTTP call with a
// kept-alive connection": BenchmarkValidateRaw and BenchmarkValidateClient
// validate the same token against the local sessiond started by TestMain,
// both on kept-alive connections; BenchmarkValidateCodec is the client's
// own work alone (encode the request, decode and check the answer).
//
// BenchmarkValidatePaired alternates the two, for a difference that the
// load of a shared machine does not swamp.
//
//	go test -run '^$' -bench Validate -benchtime 2s -count 5

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"
)

func benchSession(b *testing.B) string {
	b.Helper()
	s, err := main1.client().CreateSession(context.Background(), CreateSessionRequest{
		Subject:    "bench-user",
		Attributes: map[string]any{"cart": 3, "theme": "dark"},
		Client:     &ClientInfo{UserAgent: "Mozilla/5.0"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return s.Token
}

// rawValidate returns a raw validate call: net/http on its own pool of
// kept-alive connections, the body read and dropped, no decoding.
func rawValidate(tok string) func() error {
	hc := &http.Client{Transport: newTransport()}
	body := []byte(`{"token":"` + tok + `"}`)
	target := main1.URL + "/v1/sessions/validate"
	auth := "Bearer " + main1.Key
	return func() error {
		req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

// clientValidate returns a Validate call on its own pool.
func clientValidate(tok string) func() error {
	c := New(main1.URL, main1.Key, WithHTTPClient(&http.Client{Transport: newTransport()}))
	ctx := context.Background()
	return func() error {
		_, err := c.Validate(ctx, ValidateRequest{Token: tok})
		return err
	}
}

func BenchmarkValidateRaw(b *testing.B) {
	call := rawValidate(benchSession(b))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateClient(b *testing.B) {
	call := clientValidate(benchSession(b))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidatePaired alternates a raw call and a client call (the
// order swapped every iteration) so that the load of a shared machine
// hits both alike, and reports the median of each and the median of the
// per-pair differences (client-raw-ns).
func BenchmarkValidatePaired(b *testing.B) {
	tok := benchSession(b)
	raw, cli := rawValidate(tok), clientValidate(tok)
	// Warm both pools.
	if err := raw(); err != nil {
		b.Fatal(err)
	}
	if err := cli(); err != nil {
		b.Fatal(err)
	}
	rs, cs, ds := make([]float64, 0, b.N), make([]float64, 0, b.N), make([]float64, 0, b.N)
	timed := func(f func() error) float64 {
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		return float64(time.Since(t0).Nanoseconds())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var r, c float64
		if i%2 == 0 {
			r, c = timed(raw), timed(cli)
		} else {
			c, r = timed(cli), timed(raw)
		}
		rs, cs, ds = append(rs, r), append(cs, c), append(ds, c-r)
	}
	b.StopTimer()
	b.ReportMetric(median(rs), "raw-ns")
	b.ReportMetric(median(cs), "client-ns")
	b.ReportMetric(median(ds), "client-raw-ns")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

// validateAnswer is a real validate answer of sessiond (a subject, two
// attributes, a user agent).
const validateAnswer = `{"session":{"id":"01a249ef-5149-7429-9a4b-fd8f19927e58","subject":"bench-user","created_at":"2026-12-06T05:59:10.409Z","last_seen_at":"2026-12-06T05:59:10.409Z","idle_expires_at":"2026-12-06T06:29:10.409Z","expires_at":"2027-01-05T05:59:10.409Z","auth_time":"2026-12-06T05:59:10.409Z","attributes":{"cart":3,"theme":"dark"},"client":{"ip":null,"user_agent":"Mozilla/5.0","device":null},"version":1,"aal":1,"amr":[]},"csrf_token":"onM5idsHWy4J7a069Bvhw9-Wd2NMdp98HDX_ZgJXv98"}`

// validateCodec is what Validate does beyond the raw call: check and
// encode the request, decode and check the answer.
func validateCodec(tok string) error {
	req := ValidateRequest{Token: tok}
	if e := checkToken("token", req.Token); e != nil {
		return e
	}
	if _, err := json.Marshal(&req); err != nil {
		return err
	}
	var out Validation
	return decode(200, []byte(validateAnswer), &out)
}

func BenchmarkValidateCodec(b *testing.B) {
	tok := "ses_G8lV9BWyoQliB6eImAv6qeaoZ2y8B75mS0HXrJKKLTM"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := validateCodec(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// The client's own work on a validate stays far under the 50 µs budget
// (it measures a few µs; the bound leaves room for slow, shared CI).
func TestValidateOverheadBudget(t *testing.T) {
	if err := validateCodec("ses_abc"); err != nil {
		t.Fatal(err)
	}
	r := testing.Benchmark(BenchmarkValidateCodec)
	if raceEnabled {
		t.Logf("under -race the budget is not checked: %s", r)
		return
	}
	if ns := r.NsPerOp(); ns <= 0 || ns > 50_000 {
		t.Fatalf("client-side validate work: %d ns/op, budget 50000", ns)
	}
	t.Logf("client-side validate work: %s", r)
}
