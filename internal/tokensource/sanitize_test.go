package tokensource

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	safeID   = regexp.MustCompile(`^[A-Za-z0-9-]{0,64}$`)
	safeCode = regexp.MustCompile(`^[!#-\[\]-~]{0,64}$`) // printable ASCII without space, quote, backslash
)

// checkSafe fails unless err is safe to show and to count: no secret in
// any encoding, nothing JWT-shaped, short printable fields, and a metric
// code from the fixed set.
func checkSafe(t *testing.T, err error, secrets []string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range secrets {
		for _, form := range encodings(s) {
			if strings.Contains(msg, form) {
				t.Fatalf("message %q contains the secret form %q", msg, form)
			}
		}
	}
	if jwtLike.MatchString(msg) {
		t.Fatalf("message %q contains a JWT", msg)
	}
	if !utf8.ValidString(msg) || strings.IndexFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		t.Fatalf("message %q has invalid or non-printable characters", msg)
	}
	var hna *HostNotAllowedError
	if errors.As(err, &hna) && len(hna.Host) > 264 {
		t.Fatalf("host of %d bytes", len(hna.Host))
	}
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	if !safeCode.MatchString(e.Code) {
		t.Fatalf("Code %q", e.Code)
	}
	if mc := e.MetricCode(); !metricCodes[mc] && mc != "other" {
		t.Fatalf("MetricCode %q", mc)
	}
	if len(e.Description) > 512 {
		t.Fatalf("Description of %d bytes", len(e.Description))
	}
	if len(e.ErrorCodes) > maxErrorCodes {
		t.Fatalf("%d error codes", len(e.ErrorCodes))
	}
	for _, c := range e.ErrorCodes {
		if c <= 0 || c > maxAADSTS {
			t.Fatalf("error code %d", c)
		}
	}
	if !safeID.MatchString(e.TraceID) || !safeID.MatchString(e.CorrelationID) {
		t.Fatalf("ids %q %q", e.TraceID, e.CorrelationID)
	}
	if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
		t.Fatalf("RetryAfter %v", e.RetryAfter)
	}
}

func TestMetricCodeIsFromAFixedSet(t *testing.T) {
	for _, c := range []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope", "invalid_target",
		"temporarily_unavailable", "server_error", "access_denied", "network", "timeout", "malformed_response", "credential_unavailable", "redirect", "scheme_not_allowed"} {
		if got := (&Error{Code: c}).MetricCode(); got != c {
			t.Errorf("%q: got %q", c, got)
		}
	}
	for _, c := range []string{"", "INVALID_CLIENT", "invalid_client ", "invalid_client\x00", "interaction_required", "x" + strings.Repeat("y", 63), "invalid_client; drop table"} {
		if got := (&Error{Code: c}).MetricCode(); got != "other" {
			t.Errorf("%q: got %q", c, got)
		}
	}
	if got := (*Error)(nil).MetricCode(); got != "other" {
		t.Errorf("nil: got %q", got)
	}
}

func TestHTTPErrorKeepsOnlyBoundedServerText(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	secrets := []string{weirdSecret}
	long := strings.Repeat("é", 1000)
	for _, tc := range []struct {
		name string
		h    http.Header
		body string
		want Error
	}{
		{"a long, spaced, non-ASCII error code is cut to printable ASCII",
			nil, `{"error":"invalid client\u0000\u202e é` + strings.Repeat("x", 100) + `"}`,
			Error{Code: "invalidclient" + strings.Repeat("x", 51)}},
		{"an error code that echoes the secret is scrubbed",
			nil, `{"error":"hunter2\u0000-hunter2"}`, Error{Code: "[redacted]"}},
		{"a description keeps its first line without control or format characters",
			nil, `{"error":"invalid_client","error_description":"bad \u001b[31mred\u001b[0m \u202eevil\u0007 text\u2028second line\nthird"}`,
			Error{Code: "invalid_client", Description: "bad [31mred[0m evil text"}},
		{"a long description is cut on a character boundary",
			nil, `{"error":"server_error","error_description":"` + long + `"}`,
			Error{Code: "server_error", Description: strings.Repeat("é", 200) + "...", Retryable: true}},
		{"a secret joined by a dropped control character is still scrubbed",
			nil, `{"error":"invalid_client","error_description":"got s3cr%t+with:colon\u0000 and spaces~ there"}`,
			Error{Code: "invalid_client", Description: "got [redacted] there"}},
		{"only the first few plausible AADSTS codes are kept",
			nil, `{"error":"invalid_client","error_codes":[0,-1,7000215,10000000000,50012,1,2,3,4,5],"error_description":"AADSTS7000215: Invalid."}`,
			Error{Code: "invalid_client", ErrorCodes: []int{7000215, 50012, 1, 2, 3}, Description: "Invalid."}},
		{"request IDs that are not short IDs are dropped",
			http.Header{"X-Ms-Request-Id": {"not an id"}, "Client-Request-Id": {strings.Repeat("a", 65)}},
			`{"error":"invalid_client","trace_id":"<script>","correlation_id":"` + strings.Repeat("b", 65) + `"}`,
			Error{Code: "invalid_client"}},
		{"a header ID stands in for a bad body ID",
			http.Header{"X-Ms-Request-Id": {"0a1b-2c3d"}, "Client-Request-Id": {"c-1"}},
			`{"error":"invalid_client","trace_id":"a b","correlation_id":""}`,
			Error{Code: "invalid_client", TraceID: "0a1b-2c3d", CorrelationID: "c-1"}},
		{"an ID that is a secret is dropped",
			http.Header{"Client-Request-Id": {"hunter2-hunter2"}}, `{"error":"invalid_client"}`,
			Error{Code: "invalid_client"}},
		{"Retry-After is capped",
			http.Header{"Retry-After": {"86400"}}, `{"error":"temporarily_unavailable"}`,
			Error{Code: "temporarily_unavailable", Retryable: true, RetryAfter: 15 * time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			if h == nil {
				h = http.Header{}
			}
			secrets := append(secrets, "hunter2-hunter2")
			got := httpError(400, h, []byte(tc.body), now, secrets)
			tc.want.StatusCode = 400
			if got.Error() != tc.want.Error() || got.TraceID != tc.want.TraceID || got.Retryable != tc.want.Retryable {
				t.Errorf("got  %+v\nwant %+v", got, &tc.want)
			}
			checkSafe(t, got, secrets)
		})
	}
}

func TestRetryAfterIsCapped(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"900":                  15 * time.Minute,
		"901":                  15 * time.Minute,
		"99999999999999999999": 15 * time.Minute,
		"0":                    0,
		"-5":                   0,
		"1e3":                  0,
		now.Add(24 * time.Hour).Format(http.TimeFormat): 15 * time.Minute,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("%q: got %v want %v", in, got, want)
		}
	}
}

// hostileText mixes the characters that break naive sanitizers.
func hostileText(r *rand.Rand) string {
	pieces := []string{"a", "Z", "9", "-", "_", " ", "\x00", "\x1b[2J", "\r\n", "\u2028", "\u202e", "\ufeff", "\xff", "é", "\"", "\\", "%", "+",
		weirdSecret, "s3cr%t+with:colon", " and spaces~", "eyJhbGciOi", ".", "eyJ0eXAi.eyJzdWIi.c2ln", "hunter2-hunter2", "hunter2\x00-hunter2"}
	var b strings.Builder
	for range r.IntN(60) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func TestHTTPErrorWithRandomHostileText(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	secrets := []string{weirdSecret, "hunter2-hunter2"}
	for range 5000 {
		body := map[string]string{"error": hostileText(r), "error_description": hostileText(r), "trace_id": hostileText(r), "correlation_id": hostileText(r)}
		h := http.Header{"Retry-After": {hostileText(r)}, "X-Ms-Request-Id": {hostileText(r)}, "Client-Request-Id": {hostileText(r)}}
		e := httpError(400+r.IntN(200), h, mustJSON(t, body), time.Now(), secrets)
		checkSafe(t, e, secrets)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
