package tokensource

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ConfigError is a problem with the request found before any call. It stays
// until the spec or the credential changes.
type ConfigError struct {
	Field   string
	Message string
}

func (e *ConfigError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// HostNotAllowedError says the credential would have gone to a host the
// request's AllowedHosts does not list. Nothing was sent to that host.
type HostNotAllowedError struct {
	Host string
}

func (e *HostNotAllowedError) Error() string {
	return fmt.Sprintf("host %q is not in the allowed hosts for this credential; nothing was sent to it", e.Host)
}

// Error is a failed call to the token service. Its text never holds a
// secret, assertion, token or key, even when the service echoes one.
type Error struct {
	Retryable  bool
	StatusCode int    // 0 when no HTTP answer was read
	Code       string // RFC 6749 error, or network, timeout, malformed_response, credential_unavailable
	ErrorCodes []int  // Entra AADSTS codes
	// Description is the service's error_description (first line, scrubbed).
	Description   string
	CorrelationID string
	TraceID       string
	RetryAfter    time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "token service answered %d", e.StatusCode)
	} else {
		b.WriteString("token service call failed")
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if len(e.ErrorCodes) > 0 {
		codes := make([]string, len(e.ErrorCodes))
		for i, c := range e.ErrorCodes {
			codes[i] = "AADSTS" + strconv.Itoa(c)
		}
		b.WriteString(" (" + strings.Join(codes, ", ") + ")")
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.CorrelationID != "" {
		b.WriteString(" [correlation_id=" + e.CorrelationID + "]")
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after " + e.RetryAfter.String() + ")")
	}
	return b.String()
}

// oauthErrorBody is RFC 6749 §5.2 plus Entra's fields.
type oauthErrorBody struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
}

// terminalAADSTS are Entra codes that no retry can fix.
var terminalAADSTS = map[int]bool{7000215: true, 700016: true, 700027: true}

// httpError classifies an error answer. secrets are scrubbed from text.
func httpError(status int, h http.Header, body []byte, now time.Time, secrets []string) *Error {
	e := &Error{StatusCode: status, RetryAfter: retryAfter(h.Get("Retry-After"), now)}
	var b oauthErrorBody
	if json.Unmarshal(body, &b) != nil {
		e.Retryable = retryableStatus(status)
		if e.Retryable {
			e.Code = "malformed_response"
		}
		e.Description = fmt.Sprintf("answer is not an OAuth2 error document (HTTP %d)", status)
		return e
	}
	e.Code = scrub(b.Error, secrets)
	e.ErrorCodes = b.ErrorCodes
	e.Description = describe(b.Description, b.ErrorCodes, secrets)
	e.TraceID = scrub(firstNonEmpty(b.TraceID, h.Get("x-ms-request-id")), secrets)
	e.CorrelationID = scrub(firstNonEmpty(b.CorrelationID, h.Get("client-request-id")), secrets)
	e.Retryable = retryable(status, b)
	return e
}

func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

func retryable(status int, b oauthErrorBody) bool {
	for _, c := range b.ErrorCodes {
		if terminalAADSTS[c] {
			return false
		}
	}
	switch b.Error {
	case "temporarily_unavailable", "server_error":
		return true
	}
	return retryableStatus(status)
}

var aadstsPrefix = regexp.MustCompile(`^AADSTS\d+:\s*`)

// describe keeps the first line of a description (Entra appends trace,
// correlation and timestamp lines) without the AADSTS prefix.
func describe(d string, codes []int, secrets []string) string {
	d = scrub(d, secrets)
	if i := strings.IndexAny(d, "\r\n"); i >= 0 {
		d = d[:i]
	}
	if len(codes) > 0 {
		d = aadstsPrefix.ReplaceAllString(d, "")
	}
	const max = 400
	if len(d) > max {
		d = d[:max] + "..."
	}
	return strings.TrimSpace(d)
}

// retryAfter parses delta-seconds or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}

var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)

// minScrubLen keeps very short secrets from blanking ordinary words; such
// secrets are refused by the credential parser anyway.
const minScrubLen = 4

// scrub removes known secrets (raw and encoded) and anything shaped like a
// JWT from text that may come from the server.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) < minScrubLen {
			continue
		}
		for _, form := range encodings(sec) {
			s = strings.ReplaceAll(s, form, "[redacted]")
		}
	}
	return jwtLike.ReplaceAllString(s, "[redacted]")
}

// encodings are the forms a secret takes on the wire or in JSON.
func encodings(sec string) []string {
	q := strconv.Quote(sec)
	return []string{sec, url.QueryEscape(sec), url.PathEscape(sec), q[1 : len(q)-1]}
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}
