package tokensource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// maxRedirects bounds GET redirect chains (discovery, MSAL metadata).
const maxRedirects = 5

// parseHostEntry splits an AllowedHosts entry into a lower-case host and an
// optional port.
func parseHostEntry(e string) (host, port string, ok bool) {
	if e == "" || strings.ContainsAny(e, "/@?#") {
		return "", "", false
	}
	if h, p, err := net.SplitHostPort(e); err == nil {
		return strings.ToLower(h), p, h != "" && p != "" && strings.Trim(p, "0123456789") == ""
	}
	h := strings.TrimSuffix(strings.TrimPrefix(e, "["), "]")
	if strings.Contains(h, ":") && net.ParseIP(h) == nil {
		return "", "", false
	}
	return strings.ToLower(h), "", true
}

func defaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

// portMatches applies the port rule of every host list: an entry with a
// port matches that port only; an entry without one matches only the
// scheme's default port, so "login.example.com" never lets a credential
// reach another service on a non-standard port of the same machine.
func portMatches(entryPort string, u *url.URL) bool {
	port := u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	return entryPort == port || (entryPort == "" && port == defaultPort(u.Scheme))
}

// hostAllowed matches u against a request's AllowedHosts; nil allows all.
func hostAllowed(allowed []string, u *url.URL) bool {
	if allowed == nil {
		return true
	}
	host := strings.ToLower(u.Hostname())
	for _, e := range allowed {
		if h, p, ok := parseHostEntry(e); ok && h == host && portMatches(p, u) {
			return true
		}
	}
	return false
}

// parseIssuerHostEntry reads an AllowedIssuerHosts entry: "host",
// "host:port", or "*.suffix" with an optional port. The wildcard stands for
// one or more labels and never for the bare suffix.
func parseIssuerHostEntry(e string) (host, port string, wildcard, ok bool) {
	rest, wildcard := strings.CutPrefix(e, "*.")
	host, port, ok = parseHostEntry(rest)
	if !ok || host == "" || strings.Contains(host, "*") {
		return "", "", false, false
	}
	if wildcard && (net.ParseIP(host) != nil || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".")) {
		return "", "", false, false
	}
	return host, port, wildcard, true
}

// ValidateAllowedIssuerHosts checks entries for Options.AllowedIssuerHosts
// (the manager flag --allowed-issuer-hosts). The engine treats an invalid
// entry as matching nothing.
func ValidateAllowedIssuerHosts(entries []string) error {
	for _, e := range entries {
		if _, _, _, ok := parseIssuerHostEntry(e); !ok {
			return fmt.Errorf("allowed issuer host %q is not a host, host:port or *.domain[:port]", e)
		}
	}
	return nil
}

// issuerHostAllowed matches u against the operator's ceiling; an empty
// ceiling allows all.
func issuerHostAllowed(ceiling []string, u *url.URL) bool {
	if len(ceiling) == 0 {
		return true
	}
	host := strings.ToLower(u.Hostname())
	for _, e := range ceiling {
		h, p, wildcard, ok := parseIssuerHostEntry(e)
		if !ok || !portMatches(p, u) {
			continue
		}
		if !wildcard && h == host {
			return true
		}
		if wildcard && net.ParseIP(host) == nil {
			labels, found := strings.CutSuffix(host, "."+h)
			if found && labels != "" && !strings.HasPrefix(labels, ".") && !strings.Contains(labels, "..") {
				return true
			}
		}
	}
	return false
}

// loopbackHost is true for the names plain http may reach when allowed,
// where no network sees the credential.
func loopbackHost(u *url.URL) bool {
	h := u.Hostname()
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// policy is where one Fetch may send requests.
type policy struct {
	allowed   []string // the request's AllowedHosts
	ceiling   []string // the operator's AllowedIssuerHosts
	scheme    string   // the configured endpoint's scheme; every request uses it
	httpLocal bool     // plain http to loopback hosts is allowed
	maxBytes  int64
}

// callState is what one Fetch shares with the HTTP layer and MSAL callbacks
// through the request context.
type callState struct {
	policy
	provide func(context.Context) (string, error)

	mu          sync.Mutex
	failed      error // first refusal by the guard; libraries flatten errors
	secrets     []string
	assertionEr error
}

type callStateKey struct{}

func withState(ctx context.Context, st *callState) context.Context {
	return context.WithValue(ctx, callStateKey{}, st)
}

func stateFrom(ctx context.Context) *callState {
	st, _ := ctx.Value(callStateKey{}).(*callState)
	return st
}

// fail remembers the first refusal so that it survives libraries that
// flatten errors, and returns err.
func (s *callState) fail(err error) error {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = err
	}
	s.mu.Unlock()
	return err
}

// check refuses u unless its scheme and host are allowed.
func (s *callState) check(u *url.URL) error {
	switch {
	case u.Scheme != s.scheme || (u.Scheme != "https" && u.Scheme != "http"):
		return s.fail(&Error{Code: "scheme_not_allowed", Description: "refused a request whose URL scheme differs from the configured endpoint's (" + s.scheme + "); nothing was sent"})
	case u.Scheme == "http" && (!s.httpLocal || !loopbackHost(u)):
		return s.fail(&Error{Code: "scheme_not_allowed", Description: "refused a plain http request to a host other than localhost, 127.0.0.1 or [::1]; nothing was sent"})
	}
	if !issuerHostAllowed(s.ceiling, u) {
		return s.fail(&HostNotAllowedError{Host: boundHost(u.Host), ByOperator: true})
	}
	if !hostAllowed(s.allowed, u) {
		return s.fail(&HostNotAllowedError{Host: boundHost(u.Host)})
	}
	return nil
}

// boundHost keeps a server-chosen host short enough for a status message.
func boundHost(h string) string {
	return truncate(printable(h, true), 261) // 253-byte name, ':' and a port
}

func (s *callState) addSecret(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, v)
}

func (s *callState) snapshot() (failed error, secrets []string, assertionErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed, append([]string(nil), s.secrets...), s.assertionEr
}

// errNoCallState guards against a request made outside Fetch.
var errNoCallState = errors.New("tokensource: request made without call state")

// guardTransport enforces the call's policy on every request, including
// those MSAL makes and those following a discovery document, and caps
// every answer it hands back.
type guardTransport struct{ base http.RoundTripper }

func (g guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := stateFrom(req.Context())
	err := errNoCallState
	if st != nil {
		err = st.check(req.URL)
	}
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > st.maxBytes {
		_ = resp.Body.Close()
		return nil, st.fail(tooLarge(resp.StatusCode, st.maxBytes))
	}
	// The base transport has already undone any gzip it negotiated, so this
	// counts the bytes the reader will hold.
	resp.Body = &cappedBody{rc: resp.Body, left: st.maxBytes, st: st, status: resp.StatusCode}
	return resp, nil
}

func tooLarge(status int, max int64) *Error {
	return &Error{Retryable: true, StatusCode: status, Code: "malformed_response", Description: "the token service's answer is larger than " + byteSize(max)}
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// cappedBody fails a read once more than the cap would be delivered. When
// the cap is reached it peeks for one more byte, so readers that stop at
// the cap themselves (x/oauth2 reads at most 1 MiB) still see the error.
type cappedBody struct {
	rc     io.ReadCloser
	left   int64
	st     *callState
	status int
	err    error
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n := 0
	var err error
	if len(p) > 0 {
		n, err = b.rc.Read(p)
		b.left -= int64(n)
	}
	if b.left == 0 && err == nil {
		var one [1]byte
		if m, perr := io.ReadAtLeast(b.rc, one[:], 1); m > 0 {
			b.err = b.st.fail(tooLarge(b.status, b.st.maxBytes))
			err = b.err
		} else {
			err = perr
		}
	}
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// checkRedirect follows no redirect of a token POST, and follows GET
// redirects only a few times, on the same scheme and to allowed hosts.
func checkRedirect(req *http.Request, via []*http.Request) error {
	st := stateFrom(req.Context())
	if st == nil {
		return errNoCallState
	}
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	first, prev := via[0], via[len(via)-1]
	switch {
	case first.Method != http.MethodGet && first.Method != http.MethodHead:
		return st.fail(&Error{StatusCode: status, Code: "redirect", Description: "the token service answered the token request with a redirect, which is not followed"})
	case len(via) > maxRedirects:
		return st.fail(&Error{StatusCode: status, Code: "redirect", Description: fmt.Sprintf("more than %d redirects", maxRedirects)})
	case req.URL.Scheme != prev.URL.Scheme:
		return st.fail(&Error{StatusCode: status, Code: "redirect", Description: "a redirect to another URL scheme is not followed"})
	}
	return st.check(req.URL)
}
