// Package tokensource gets OAuth2 access tokens with the client credentials
// grant: from Microsoft Entra ID through MSAL Go, and from generic OAuth2 /
// OIDC servers through golang.org/x/oauth2.
//
// Every outgoing request is checked against the request's AllowedHosts, and
// every error text is safe to show in a Kubernetes status.
package tokensource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/token-operator/token-operator/internal/credential"
	"k8s.io/utils/clock"
)

// Token is an access token and what is known about its lifetime.
type Token struct {
	AccessToken string
	TokenType   string
	IssuedAt    time.Time // when the token service answered (engine clock)
	ExpiresAt   time.Time // from expires_in
	RefreshAt   time.Time // the service's refresh hint (Entra refresh_in); zero if none
	Scopes      []string  // as granted, else as requested
	FromCache   bool      // MSAL served it from its cache
}

// Options configure an Engine.
type Options struct {
	RootCAs    *x509.CertPool // nil means system roots
	Timeout    time.Duration  // per Fetch; default 30s
	Clock      clock.PassiveClock
	HTTPClient *http.Client // optional base; its transport is wrapped
}

// Engine fetches tokens. It keeps per-CacheKey state (MSAL clients and
// discovered endpoints) until Forget. It is safe for concurrent use.
type Engine struct {
	timeout time.Duration
	clock   clock.PassiveClock
	client  *http.Client

	mu   sync.Mutex
	keys map[string]*keyState
}

// keyState is what the engine keeps for one CacheKey.
type keyState struct {
	mu           sync.Mutex
	msal         *msalClient
	last         Token // last token MSAL got from the network
	tokenURL     string
	discoveredAt time.Time
}

// New returns an Engine.
func New(o Options) *Engine {
	e := &Engine{timeout: o.Timeout, clock: o.Clock, keys: map[string]*keyState{}}
	if e.timeout <= 0 {
		e.timeout = 30 * time.Second
	}
	if e.clock == nil {
		e.clock = clock.RealClock{}
	}
	e.client = guardedClient(o)
	return e
}

func guardedClient(o Options) *http.Client {
	base := http.RoundTripper(http.DefaultTransport)
	c := &http.Client{}
	if o.HTTPClient != nil {
		*c = *o.HTTPClient
		if c.Transport != nil {
			base = c.Transport
		}
	}
	if t, ok := base.(*http.Transport); ok && o.RootCAs != nil {
		t = t.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t.TLSClientConfig.RootCAs = o.RootCAs
		base = t
	}
	c.Transport = guardTransport{base: base}
	c.CheckRedirect = checkRedirect
	c.Jar = nil
	return c
}

// Fetch returns a token for req. fresh, if not nil, says whether a token is
// still good enough for the caller; a cached MSAL token that is not fresh is
// dropped and a new one requested, so callers never loop on a stale token.
func (e *Engine) Fetch(ctx context.Context, req Request, fresh func(Token) bool) (Token, error) {
	if err := req.Validate(); err != nil {
		return Token{}, err
	}
	st := &callState{allowed: req.AllowedHosts}
	if a, ok := req.Credential.(*credential.Assertion); ok {
		st.provide = a.Provide
	}
	_, raw := req.endpoint()
	u, _ := url.Parse(raw)
	if err := st.check(u); err != nil {
		return Token{}, err
	}
	callCtx, cancel := context.WithTimeout(withState(ctx, st), e.timeout)
	defer cancel()
	var tok Token
	var err error
	if req.entra() {
		tok, err = e.fetchEntra(callCtx, req, st, fresh)
	} else {
		tok, err = e.fetchGeneric(callCtx, req, st)
	}
	if err != nil {
		return Token{}, e.classify(ctx, callCtx, st, err, req.entra())
	}
	return tok, nil
}

// Forget drops the state kept for cacheKey.
func (e *Engine) Forget(cacheKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.keys, cacheKey)
}

func (e *Engine) state(key string) *keyState {
	e.mu.Lock()
	defer e.mu.Unlock()
	ks := e.keys[key]
	if ks == nil {
		ks = &keyState{}
		e.keys[key] = ks
	}
	return ks
}

// classify turns any failure into *HostNotAllowedError, *ConfigError,
// *Error or the caller's context error, with safe text.
func (e *Engine) classify(parent, call context.Context, st *callState, err error, entra bool) error {
	refused, secrets, assertionErr := st.snapshot()
	var ce *ConfigError
	var te *Error
	switch {
	case refused != nil:
		return refused
	case errors.As(err, &ce), errors.As(err, &te):
		return err
	case parent.Err() != nil:
		return parent.Err()
	case assertionErr != nil:
		return &Error{Retryable: true, Code: "credential_unavailable", Description: "the client assertion could not be obtained: " + scrub(assertionErr.Error(), secrets)}
	case errors.Is(call.Err(), context.DeadlineExceeded):
		return &Error{Retryable: true, Code: "timeout", Description: "no answer within " + e.timeout.String()}
	}
	if entra {
		return e.classifyMSAL(err, secrets)
	}
	return e.classifyOAuth2(err, secrets)
}

// networkError describes transport failures without URLs or bodies.
func networkError(err error, secrets []string) (*Error, bool) {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return nil, false
	}
	if ue.Timeout() {
		return &Error{Retryable: true, Code: "timeout", Description: "the connection timed out"}, true
	}
	return &Error{Retryable: true, Code: "network", Description: scrub(ue.Err.Error(), secrets)}, true
}
