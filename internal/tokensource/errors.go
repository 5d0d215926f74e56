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
	"unicode"
	"unicode/utf8"
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
// request's AllowedHosts, or the operator's AllowedIssuerHosts (ByOperator),
// does not list. Nothing was sent to that host.
type HostNotAllowedError struct {
	Host string
	// ByOperator: the operator-wide ceiling refused the host; no annotation
	// on the credential can allow it.
	ByOperator bool
}

func (e *HostNotAllowedError) Error() string {
	if e.ByOperator {
		return fmt.Sprintf("host %q is not in the operator's allowed issuer hosts (--allowed-issuer-hosts); nothing was sent to it", e.Host)
	}
	return fmt.Sprintf("host %q is not in the allowed hosts for this credential; nothing was sent to it", e.Host)
}

// TokenTooLargeError is a token larger than the operator's limit
// (Options.MaxTokenBytes). It was not kept: asking again gets the same.
type TokenTooLargeError struct {
	Size, Max int64
}

func (e *TokenTooLargeError) Error() string {
	return fmt.Sprintf("the token service answered a token of %s, more than the operator's limit of %s (--max-token-bytes); it was not stored", byteSize(e.Size), byteSize(e.Max))
}

// Error is a failed call to the token service. Its text never holds a
// secret, assertion, token or key, even when the service echoes one.
type Error struct {
	Retryable  bool
	StatusCode int // 0 when no HTTP answer was read
	// Code is the service's RFC 6749 error (printable ASCII, at most 64
	// bytes) or one of the engine's codes: network, timeout,
	// malformed_response, credential_unavailable, redirect,
	// scheme_not_allowed. Use MetricCode for metric labels.
	Code       string
	ErrorCodes []int // Entra AADSTS codes, at most maxErrorCodes
	// Description is the service's error_description: first line, printable,
	// scrubbed, at most 400 bytes.
	Description string
	// CorrelationID and TraceID are kept only when short and made of
	// letters, digits and dashes.
	CorrelationID string
	TraceID       string
	RetryAfter    time.Duration // at most maxRetryAfter
}

// metricCodes are the only values MetricCode returns besides "other".
var metricCodes = map[string]bool{
	// RFC 6749 §5.2
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
	// RFC 6749 §4.1.2.1, sent by token endpoints too
	"temporarily_unavailable": true, "server_error": true, "access_denied": true,
	// RFC 8693 §2.2.2
	"invalid_target": true,
	// the engine's own
	"network": true, "timeout": true, "malformed_response": true, "credential_unavailable": true,
	"redirect": true, "scheme_not_allowed": true,
}

// MetricCode is Code when it is one of a fixed set of known codes, else
// "other": a token service cannot create metric series.
func (e *Error) MetricCode() string {
	if e != nil && metricCodes[e.Code] {
		return e.Code
	}
	return "other"
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

// Bounds on what is kept of a service's error answer.
const (
	maxCodeLen        = 64
	maxDescriptionLen = 400
	maxErrorCodes     = 5
	maxAADSTS         = 9_999_999 // AADSTS codes have up to 7 digits
	maxIDLen          = 64
	maxRetryAfter     = 15 * time.Minute
)

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
	e.Code = errorCode(b.Error, secrets)
	e.ErrorCodes = aadstsCodes(b.ErrorCodes)
	e.Description = describe(b.Description, e.ErrorCodes, secrets)
	e.TraceID = requestID(secrets, b.TraceID, h.Get("x-ms-request-id"))
	e.CorrelationID = requestID(secrets, b.CorrelationID, h.Get("client-request-id"))
	e.Retryable = retryable(status, b)
	return e
}

// errorCode keeps a printable, short form of the service's error, for
// messages only.
func errorCode(s string, secrets []string) string {
	return cut(scrub(printable(s, false), secrets), maxCodeLen)
}

// aadstsCodes keeps the first few plausible AADSTS numbers.
func aadstsCodes(codes []int) []int {
	var kept []int
	for _, c := range codes {
		if len(kept) == maxErrorCodes {
			break
		}
		if c > 0 && c <= maxAADSTS {
			kept = append(kept, c)
		}
	}
	return kept
}

// requestID returns the first candidate that looks like a request ID;
// anything else may be server-chosen prose and is dropped.
func requestID(secrets []string, candidates ...string) string {
	for _, c := range candidates {
		if c != "" && len(c) <= maxIDLen && strings.Trim(c, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == "" && scrub(c, secrets) == c {
			return c
		}
	}
	return ""
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
// correlation and timestamp lines) without the AADSTS prefix, printable
// and scrubbed. Secrets are scrubbed again after control characters are
// dropped, since dropping them could join a secret back together.
func describe(d string, codes []int, secrets []string) string {
	d = scrub(d, secrets)
	if i := strings.IndexFunc(d, lineBreak); i >= 0 {
		d = d[:i]
	}
	d = scrub(printable(d, true), secrets)
	if len(codes) > 0 {
		d = aadstsPrefix.ReplaceAllString(d, "")
	}
	return strings.TrimSpace(truncate(strings.TrimSpace(d), maxDescriptionLen))
}

func lineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', '\u0085', '\u2028', '\u2029':
		return true
	}
	return false
}

// printable drops control, format and invalid characters. With text false
// it keeps only ASCII without spaces, quotes or backslashes, the
// characters of RFC 6749 error codes.
func printable(s string, text bool) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError, r < ' ', r == 0x7f:
			return -1
		case r == ' ', r == '"', r == '\\':
			if text {
				return r
			}
			return -1
		case r < utf8.RuneSelf, text && unicode.IsPrint(r):
			return r
		}
		return -1
	}, s)
}

// retryAfter parses delta-seconds or an HTTP date (RFC 9110 §10.2.3), at
// most maxRetryAfter so a service cannot park a TokenRequest for long.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter // too large to parse is still a number
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now).Round(time.Second), maxRetryAfter)
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

// cut shortens s to at most n bytes on a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// truncate is cut with a "..." marker.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cut(s, n) + "..."
}
