package tokensource

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

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

// hostAllowed matches u against entries. An entry with a port matches that
// port only; an entry without one matches only the scheme's default port,
// so "login.example.com" never lets a credential reach another service on
// a non-standard port of the same machine.
func hostAllowed(allowed []string, u *url.URL) bool {
	if allowed == nil {
		return true
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	for _, e := range allowed {
		h, p, ok := parseHostEntry(e)
		if !ok || h != host {
			continue
		}
		if p == port || (p == "" && port == defaultPort(u.Scheme)) {
			return true
		}
	}
	return false
}

// callState is what one Fetch shares with the HTTP layer and MSAL callbacks
// through the request context.
type callState struct {
	allowed []string
	provide func(context.Context) (string, error)

	mu          sync.Mutex
	refused     *HostNotAllowedError
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

// check refuses u unless allowed, and remembers the refusal so it survives
// libraries that flatten errors.
func (s *callState) check(u *url.URL) error {
	if hostAllowed(s.allowed, u) {
		return nil
	}
	err := &HostNotAllowedError{Host: u.Host}
	s.mu.Lock()
	if s.refused == nil {
		s.refused = err
	}
	s.mu.Unlock()
	return err
}

func (s *callState) addSecret(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, v)
}

func (s *callState) snapshot() (refused *HostNotAllowedError, secrets []string, assertionErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused, append([]string(nil), s.secrets...), s.assertionEr
}

// errNoCallState guards against a request made outside Fetch.
var errNoCallState = errors.New("tokensource: request made without call state")

// guardTransport enforces AllowedHosts on every request, including those
// MSAL makes and those following a discovery document.
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
	return g.base.RoundTrip(req)
}

// checkRedirect refuses redirects to hosts that are not allowed before the
// redirected request is built, and caps the chain.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	st := stateFrom(req.Context())
	if st == nil {
		return errNoCallState
	}
	return st.check(req.URL)
}
