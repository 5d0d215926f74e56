// Package tokensource gets OAuth2 access tokens with the client credentials
// grant: from Microsoft Entra ID through MSAL Go, and from generic OAuth2 /
// OIDC servers through golang.org/x/oauth2.
//
// Every outgoing request is checked against the operator's allowed issuer
// hosts, the request's AllowedHosts and the scheme policy; every answer is
// size-capped, and so is every token returned; every error text is safe to
// show in a Kubernetes status.
package tokensource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
	// AWS holds temporary AWS credentials (TokenType TokenTypeAWS, no
	// AccessToken); they expire at ExpiresAt.
	AWS *AWSCredentials
}

// Bytes is about how much memory t holds: its strings plus a fixed overhead.
func (t Token) Bytes() int64 {
	n := 128 + len(t.AccessToken) + len(t.TokenType) + t.AWS.size()
	for _, s := range t.Scopes {
		n += 16 + len(s)
	}
	return int64(n)
}

// Defaults of Options.
const (
	DefaultTimeout               = 30 * time.Second
	DefaultResponseHeaderTimeout = 10 * time.Second
	DefaultMaxResponseBytes      = 1 << 20
	// DefaultMaxTokenBytes is far above what real issuers produce: Entra
	// access tokens are 1.5-4 KiB, 8-12 KiB with many groups or roles;
	// Google's and AWS session tokens 1-2 KiB.
	DefaultMaxTokenBytes = 64 << 10
)

// Options configure an Engine.
type Options struct {
	RootCAs    *x509.CertPool // nil means system roots
	Timeout    time.Duration  // per Fetch; default 30s
	Clock      clock.PassiveClock
	HTTPClient *http.Client // optional base; its transport is wrapped

	// MaxResponseBytes caps every answer the engine or MSAL reads, counted
	// after transparent gzip decoding; default 1 MiB.
	MaxResponseBytes int64
	// ResponseHeaderTimeout bounds the wait for an answer's headers, so a
	// silent server frees the worker early; default 10s, never above
	// Timeout. It is set on the engine's *http.Transport (a clone of
	// http.DefaultTransport, or of HTTPClient's transport).
	ResponseHeaderTimeout time.Duration
	// AllowHTTPLoopback lets plain http reach localhost, 127.0.0.1 and
	// [::1] (manager flag --insecure-allow-http-loopback); otherwise every
	// URL must be https.
	AllowHTTPLoopback bool
	// AllowedIssuerHosts is the operator-wide ceiling on where credentials
	// go (manager flag --allowed-issuer-hosts): "host", "host:port" or
	// "*.domain[:port]". A request's AllowedHosts narrow it, never widen
	// it. Empty means no ceiling; an invalid entry matches nothing.
	AllowedIssuerHosts []string
	// MaxTokenBytes caps an answer's access_token plus token_type, or AWS
	// credentials' three keys (manager
	// flag --max-token-bytes); a larger token is refused with
	// *TokenTooLargeError and kept nowhere. Default 64 KiB.
	MaxTokenBytes int64
}

// Engine fetches tokens. It keeps per-CacheKey state (MSAL clients and
// discovered endpoints) until Forget. It is safe for concurrent use.
type Engine struct {
	timeout       time.Duration
	headerTimeout time.Duration
	maxBytes      int64
	maxToken      int64
	httpLocal     bool
	ceiling       []string
	clock         clock.PassiveClock
	client        *http.Client

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
	e := &Engine{
		timeout:       o.Timeout,
		headerTimeout: o.ResponseHeaderTimeout,
		maxBytes:      o.MaxResponseBytes,
		maxToken:      o.MaxTokenBytes,
		httpLocal:     o.AllowHTTPLoopback,
		ceiling:       append([]string(nil), o.AllowedIssuerHosts...),
		clock:         o.Clock,
		keys:          map[string]*keyState{},
	}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	if e.headerTimeout <= 0 {
		e.headerTimeout = DefaultResponseHeaderTimeout
	}
	e.headerTimeout = min(e.headerTimeout, e.timeout)
	if e.maxBytes <= 0 {
		e.maxBytes = DefaultMaxResponseBytes
	}
	if e.maxToken <= 0 {
		e.maxToken = DefaultMaxTokenBytes
	}
	if e.clock == nil {
		e.clock = clock.RealClock{}
	}
	e.client = e.guardedClient(o)
	return e
}

func (e *Engine) guardedClient(o Options) *http.Client {
	var base http.RoundTripper
	c := &http.Client{}
	if o.HTTPClient != nil {
		*c = *o.HTTPClient
		base = c.Transport
	}
	if base == nil {
		base = http.DefaultTransport
	}
	if t, ok := base.(*http.Transport); ok {
		t = t.Clone()
		if o.RootCAs != nil {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			t.TLSClientConfig.RootCAs = o.RootCAs
		}
		t.ResponseHeaderTimeout = shorter(t.ResponseHeaderTimeout, e.headerTimeout)
		e.headerTimeout = t.ResponseHeaderTimeout
		t.TLSHandshakeTimeout = shorter(t.TLSHandshakeTimeout, e.headerTimeout)
		if t.MaxResponseHeaderBytes <= 0 || t.MaxResponseHeaderBytes > e.maxBytes {
			t.MaxResponseHeaderBytes = e.maxBytes
		}
		base = t
	}
	c.Transport = guardTransport{base: base}
	c.CheckRedirect = checkRedirect
	c.Jar = nil
	return c
}

// shorter is the smaller positive duration; zero means unlimited.
func shorter(have, limit time.Duration) time.Duration {
	if have <= 0 || have > limit {
		return limit
	}
	return have
}

// Validate checks req without any call: Request.Validate, then the
// operator's policy. Problems are *ConfigError, or *HostNotAllowedError with
// ByOperator for an endpoint outside AllowedIssuerHosts.
func (e *Engine) Validate(req Request) error {
	return e.validate(req.grant(), req)
}

func (e *Engine) validate(g grant, req Request) error {
	if err := req.validate(g); err != nil {
		return err
	}
	for _, ep := range g.endpoints(req) {
		u, err := url.Parse(ep.url)
		if err != nil {
			return &ConfigError{Field: ep.field, Message: "does not parse"}
		}
		if u.Scheme != "https" && !e.httpLocal {
			return &ConfigError{Field: ep.field, Message: "must be an https URL; plain http to localhost, 127.0.0.1 or [::1] needs the operator flag --insecure-allow-http-loopback"}
		}
		if !issuerHostAllowed(e.ceiling, u) {
			return &HostNotAllowedError{Host: u.Host, ByOperator: true}
		}
	}
	return nil
}

// Fetch returns a token for req. fresh, if not nil, says whether a token is
// still good enough for the caller; a cached MSAL token that is not fresh is
// dropped and a new one requested, so callers never loop on a stale token.
func (e *Engine) Fetch(ctx context.Context, req Request, fresh func(Token) bool) (Token, error) {
	return e.fetch(ctx, req.grant(), req, fresh)
}

// fetch is what every grant shares: the policy, the timeout, the common
// classification of failures and the token size cap.
func (e *Engine) fetch(ctx context.Context, g grant, req Request, fresh func(Token) bool) (Token, error) {
	if err := e.validate(g, req); err != nil {
		return Token{}, err
	}
	eps := g.endpoints(req)
	start, _ := url.Parse(eps[0].url)
	st := &callState{policy: policy{allowed: req.AllowedHosts, ceiling: e.ceiling, scheme: start.Scheme, httpLocal: e.httpLocal, maxBytes: e.maxBytes}}
	if a, ok := req.Credential.(*credential.Assertion); ok {
		st.provide = a.Provide
	}
	for _, ep := range eps {
		u, _ := url.Parse(ep.url)
		if err := st.check(u); err != nil {
			return Token{}, err
		}
	}
	callCtx, cancel := context.WithTimeout(withState(ctx, st), e.timeout)
	defer cancel()
	c := &call{e: e, req: req, key: req.cacheKey(g), st: st, fresh: fresh}
	tok, err := g.fetch(callCtx, c)
	if err != nil {
		return Token{}, e.classify(g, ctx, callCtx, st, err)
	}
	if size := int64(len(tok.AccessToken) + len(tok.TokenType) + tok.AWS.size()); size > e.maxToken {
		if g.keepsTokens() {
			e.Forget(c.key)
		}
		return Token{}, &TokenTooLargeError{Size: size, Max: e.maxToken}
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
// *Error or the caller's context error, with safe text: the grant sees
// only what no common case explains, and whatever it returns is scrubbed
// of the secrets the call recorded.
func (e *Engine) classify(g grant, parent, call context.Context, st *callState, err error) error {
	failed, secrets, assertionErr := st.snapshot()
	var ce *ConfigError
	var te *Error
	switch {
	case failed != nil:
		return failed
	case errors.As(err, &ce), errors.As(err, &te):
		return scrubbed(err, secrets)
	case parent.Err() != nil:
		return parent.Err()
	case assertionErr != nil && terminal(assertionErr):
		return assertionErr // a refusal the caller explains, such as a 403 from the API server
	case assertionErr != nil:
		what := "the client assertion"
		var se subjectTokenError
		if errors.As(assertionErr, &se) {
			what = "the token exchange's " + se.role + " token"
		}
		return &Error{Retryable: true, Code: "credential_unavailable", Description: what + " could not be obtained: " + describe(assertionErr.Error(), nil, secrets)}
	case errors.Is(call.Err(), context.DeadlineExceeded):
		return &Error{Retryable: true, Code: "timeout", Description: "no answer within " + e.timeout.String()}
	}
	return scrubbed(g.classify(e, err, secrets), secrets)
}

// scrubbed removes secrets from the text of an *Error or *ConfigError in
// err, whichever grant made it. Any other error but a refused host becomes
// a generic *Error, since its text is unknown. The engine's own texts hold
// no secret, so this changes nothing for them.
func scrubbed(err error, secrets []string) error {
	var ce *ConfigError
	var te *Error
	var he *HostNotAllowedError
	switch {
	case errors.As(err, &te):
		te.Code = scrub(te.Code, secrets)
		te.Description = scrub(te.Description, secrets)
		te.CorrelationID = requestID(secrets, te.CorrelationID)
		te.TraceID = requestID(secrets, te.TraceID)
	case errors.As(err, &ce):
		ce.Message = scrub(ce.Message, secrets)
	case errors.As(err, &he):
	default:
		return &Error{Retryable: true, Code: "malformed_response", Description: "the token service call failed"}
	}
	return err
}

// networkError describes transport failures without URLs or bodies. Their
// text may still hold server-chosen names (certificate SANs), so it is
// bounded like a description.
func (e *Engine) networkError(err error, secrets []string) (*Error, bool) {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return nil, false
	}
	if ue.Timeout() {
		if strings.Contains(ue.Err.Error(), "awaiting response headers") {
			return &Error{Retryable: true, Code: "timeout", Description: fmt.Sprintf("no answer within %s", e.headerTimeout)}, true
		}
		return &Error{Retryable: true, Code: "timeout", Description: "the connection timed out"}, true
	}
	return &Error{Retryable: true, Code: "network", Description: describe(ue.Err.Error(), nil, secrets)}, true
}

// terminal says whether an assertion source's error is a refusal that
// retrying will not fix: the source says so with a Terminal method, and
// its message is its own, free of credential material.
func terminal(err error) bool {
	var t interface{ Terminal() bool }
	return errors.As(err, &t) && t.Terminal()
}
