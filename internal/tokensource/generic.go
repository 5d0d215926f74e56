package tokensource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/token-operator/token-operator/internal/credential"
)

const (
	jwtBearerType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	discoveryTTL  = time.Hour
)

// clientCredentialsGrant is OAuth2 client credentials (RFC 6749 §4.4)
// through golang.org/x/oauth2, at TokenURL or at the token endpoint that
// IssuerURL's discovery document names.
type clientCredentialsGrant struct{}

func (clientCredentialsGrant) endpoints(r Request) []endpoint {
	if r.IssuerURL != "" {
		return []endpoint{{"issuerURL", strings.TrimRight(r.IssuerURL, "/")}}
	}
	return []endpoint{{"tokenURL", r.TokenURL}}
}

// keyParts keeps the layout keys had before grants had their own parts, so
// stored keys stay valid: the third part is Entra's region, empty in any
// request validate accepts.
func (clientCredentialsGrant) keyParts(r Request) []string {
	if r.IssuerURL != "" {
		return []string{"issuer", strings.TrimRight(r.IssuerURL, "/"), r.AzureRegion}
	}
	return []string{"token", r.TokenURL, r.AzureRegion}
}

func (g clientCredentialsGrant) validate(r Request) *ConfigError {
	return firstProblem(
		r.checkOneEndpoint,
		func() *ConfigError { return r.checkEndpoints(g) },
		r.checkClient,
		func() *ConfigError { return r.checkCredential(signableKey) },
		func() *ConfigError { return r.checkScopes(nil) },
		r.checkExtras,
		r.refuseRegion,
	)
}

func (clientCredentialsGrant) fetch(ctx context.Context, c *call) (Token, error) {
	return c.e.fetchGeneric(ctx, c.req, c.key, c.st)
}

func (clientCredentialsGrant) classify(e *Engine, err error, secrets []string) error {
	return e.classifyOAuth2(err, secrets)
}

// keepsTokens: only the discovered endpoint is kept per key.
func (clientCredentialsGrant) keepsTokens() bool { return false }

// signableKey: the engine signs RFC 7523 assertions itself.
func signableKey(c *credential.Certificate) *ConfigError {
	if _, err := signingAlgorithm(c); err != nil {
		return &ConfigError{Field: "credential", Message: err.Error()}
	}
	return nil
}

var reservedParams = map[string]bool{
	"grant_type": true, "scope": true, "client_id": true, "client_secret": true,
	"client_assertion": true, "client_assertion_type": true,
}

func (r Request) checkExtras() *ConfigError {
	for k := range r.ExtraParameters {
		if k == "" || reservedParams[k] {
			return &ConfigError{Field: "extraParameters", Message: fmt.Sprintf("%q is set by the token engine and cannot be overridden", k)}
		}
	}
	return nil
}

func (r Request) refuseRegion() *ConfigError {
	if r.AzureRegion != "" {
		return &ConfigError{Field: "azureRegion", Message: "only applies with authority"}
	}
	return nil
}

func (e *Engine) fetchGeneric(ctx context.Context, req Request, key string, st *callState) (Token, error) {
	tokenURL := req.TokenURL
	if req.IssuerURL != "" {
		var err error
		if tokenURL, err = e.tokenEndpoint(ctx, req.IssuerURL, key, st); err != nil {
			return Token{}, err
		}
	}
	cfg, err := e.clientConfig(ctx, req, st, tokenURL)
	if err != nil {
		return Token{}, err
	}
	ot, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, e.client))
	if err != nil {
		return Token{}, err
	}
	return tokenFromOAuth2(ot, req.Scopes, e.clock.Now())
}

// clientConfig authenticates the client: a secret in Basic (id and secret
// form-url-encoded first, as x/oauth2 does per RFC 6749 §2.3.1) or in the
// form, or a private_key_jwt assertion (RFC 7523).
func (e *Engine) clientConfig(ctx context.Context, req Request, st *callState, tokenURL string) (*clientcredentials.Config, error) {
	cfg := &clientcredentials.Config{ClientID: req.ClientID, TokenURL: tokenURL, Scopes: req.Scopes, EndpointParams: url.Values{}, AuthStyle: oauth2.AuthStyleInParams}
	for k, v := range req.ExtraParameters {
		cfg.EndpointParams.Set(k, v)
	}
	var assertion string
	switch c := req.Credential.(type) {
	case *credential.ClientSecret:
		st.addSecret(c.Secret)
		cfg.ClientSecret = c.Secret
		if c.AuthMethod != credential.ClientSecretPost {
			cfg.AuthStyle = oauth2.AuthStyleInHeader
		}
		return cfg, nil
	case *credential.Certificate:
		a, err := signAssertion(c, req.ClientID, tokenURL, e.clock.Now())
		if err != nil {
			return nil, &ConfigError{Field: "credential", Message: err.Error()}
		}
		assertion = a
	case *credential.Assertion:
		a, err := c.Provide(ctx)
		if err == nil && a == "" {
			err = errors.New("the assertion source returned nothing")
		}
		if err != nil {
			st.mu.Lock()
			st.assertionEr = err
			st.mu.Unlock()
			return nil, err
		}
		assertion = a
	}
	st.addSecret(assertion)
	cfg.EndpointParams.Set("client_assertion_type", jwtBearerType)
	cfg.EndpointParams.Set("client_assertion", assertion)
	return cfg, nil
}

// tokenEndpoint reads token_endpoint from the issuer's discovery document,
// kept per key for an hour.
func (e *Engine) tokenEndpoint(ctx context.Context, issuer, key string, st *callState) (string, error) {
	ks := e.state(key)
	now := e.clock.Now()
	ks.mu.Lock()
	cached, at := ks.tokenURL, ks.discoveredAt
	ks.mu.Unlock()
	if cached == "" || now.Sub(at) > discoveryTTL || now.Before(at) {
		var err error
		if cached, err = e.discover(ctx, issuer); err != nil {
			return "", err
		}
		ks.mu.Lock()
		ks.tokenURL, ks.discoveredAt = cached, now
		ks.mu.Unlock()
	}
	u, _ := url.Parse(cached)
	if err := st.check(u); err != nil {
		return "", err
	}
	return cached, nil
}

func (e *Engine) discover(ctx context.Context, issuer string) (string, error) {
	docURL := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return "", &ConfigError{Field: "issuerURL", Message: "cannot build the discovery URL"}
	}
	hreq.Header.Set("Accept", "application/json")
	resp, err := e.client.Do(hreq)
	if err != nil {
		return "", err
	}
	body, err := readBody(resp)
	if err != nil {
		return "", &Error{Retryable: true, StatusCode: resp.StatusCode, Code: "network", Description: "the discovery document at " + docURL + " could not be read"}
	}
	if resp.StatusCode != http.StatusOK {
		he := httpError(resp.StatusCode, resp.Header, body, e.clock.Now(), nil)
		he.Description = fmt.Sprintf("discovery document at %s: HTTP %d", docURL, resp.StatusCode)
		return "", he
	}
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return "", &Error{Retryable: true, StatusCode: 200, Code: "malformed_response", Description: "the discovery document at " + docURL + " is not valid JSON"}
	}
	if !sameIssuer(doc.Issuer, issuer) {
		return "", &ConfigError{Field: "issuerURL", Message: fmt.Sprintf("the discovery document names issuer %s, which is not this issuerURL; OpenID Connect Discovery 1.0 §4.3 requires them to be identical, so nothing was sent to its token endpoint", quoteShort(scrub(doc.Issuer, nil)))}
	}
	// The credential follows token_endpoint, so it keeps the issuer's scheme
	// (no https to http downgrade); the guard checks its host.
	iu, _ := url.Parse(issuer)
	u, err := url.Parse(doc.TokenEndpoint)
	if err != nil || u.Host == "" || u.Scheme != iu.Scheme || u.User != nil {
		return "", &Error{StatusCode: 200, Code: "malformed_response", Description: "the discovery document at " + docURL + " has no " + iu.Scheme + " token_endpoint"}
	}
	return doc.TokenEndpoint, nil
}

// sameIssuer is the mix-up defence of OpenID Connect Discovery 1.0 §4.3:
// the document's issuer is the configured one, exactly. A single trailing
// slash may differ, since both forms read the same document (Hydra, for
// one, names its issuer with the slash).
func sameIssuer(doc, configured string) bool {
	return doc != "" && (doc == configured || doc == configured+"/" || doc+"/" == configured)
}

// readBody reads an answer; the guard transport caps its size.
func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// tokenFromOAuth2 reads the answer without looking inside the access token.
func tokenFromOAuth2(ot *oauth2.Token, requested []string, now time.Time) (Token, error) {
	exp, ok := seconds(ot.Extra("expires_in"))
	if !ok || exp <= 0 || ot.AccessToken == "" {
		return Token{}, errNoExpiry()
	}
	t := Token{
		AccessToken: ot.AccessToken,
		TokenType:   ot.TokenType,
		IssuedAt:    now,
		ExpiresAt:   now.Add(exp),
		Scopes:      append([]string(nil), requested...),
	}
	if t.TokenType == "" {
		t.TokenType = "Bearer"
	}
	if r, ok := seconds(ot.Extra("refresh_in")); ok && r > 0 && r < exp {
		t.RefreshAt = now.Add(r)
	}
	if s, _ := ot.Extra("scope").(string); s != "" {
		t.Scopes = grantedScopes(strings.Split(s, " "), requested)
	}
	return t, nil
}

// Bounds on the granted scopes kept for the status, as on requested ones.
const (
	maxGrantedScopes   = 64
	maxGrantedScopeLen = 1024
)

// grantedScopes keeps the scope-tokens of a service's answer, bounded, or
// the requested scopes when none is left: the service chooses this text.
func grantedScopes(granted, requested []string) []string {
	var kept []string
	for _, s := range granted {
		if len(kept) < maxGrantedScopes && len(s) <= maxGrantedScopeLen && ScopeToken(s) {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		return append([]string(nil), requested...)
	}
	return kept
}

// seconds reads a JSON number or a numeric string; x/oauth2 hands over
// form-encoded answers' numbers as int64.
func seconds(v any) (time.Duration, bool) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case int64:
		f = float64(v)
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return 0, false
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if f != f || f > 1e9 || f < -1e9 {
		return 0, false
	}
	return time.Duration(f) * time.Second, true
}

func (e *Engine) classifyOAuth2(err error, secrets []string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return httpError(re.Response.StatusCode, re.Response.Header, re.Body, e.clock.Now(), secrets)
	}
	if ne, ok := e.networkError(err, secrets); ok {
		return ne
	}
	// x/oauth2 reports an unreadable 2xx answer as a plain error.
	return &Error{Retryable: true, StatusCode: http.StatusOK, Code: "malformed_response", Description: "the token response could not be read"}
}
