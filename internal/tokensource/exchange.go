package tokensource

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// RFC 8693 token exchange.
const (
	tokenExchangeGrantType = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeJWT and TokenTypeAccessToken are RFC 8693 §3 token type
	// identifiers.
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	maxExchangeResources = 16
)

// Exchange asks for a token in exchange for a subject token (RFC 8693). The
// client authenticates with Request.Credential as for client credentials.
type Exchange struct {
	Subject SubjectToken
	// RequestedTokenType defaults to TokenTypeAccessToken.
	RequestedTokenType string
	Audience           string
	Resources          []string
	// Actor, when set, is sent as the actor token (RFC 8693 actor_token).
	Actor *SubjectToken
	// NoClientAuth: the client does not authenticate (a public client);
	// Request.Credential is nil, and ClientID, when set, is sent as client_id.
	NoClientAuth bool
	// ClientAllowed and SubjectAllowed are the client credential's and
	// the subject's consent; the request's AllowedHosts hold only what
	// both allow. They name, in a refusal, the one that does not consent.
	ClientAllowed, SubjectAllowed, ActorAllowed []string
}

// SubjectToken is where the subject token comes from.
type SubjectToken struct {
	// ID names the source (for example namespace/name/uid/audience of a
	// service account), never the token: it is part of the cache key.
	ID string
	// Type is its RFC 8693 token type identifier.
	Type string
	// Provide returns a subject token and when it expires (zero: unknown).
	Provide func(ctx context.Context) (token string, expires time.Time, err error)
	// Expires is the subject token's expiry when it is known before the
	// call (another TokenRequest's token); zero for one minted per call.
	Expires time.Time
}

// tokenExchangeGrant is RFC 8693 token exchange at TokenURL or at the token
// endpoint IssuerURL's discovery document names, through x/oauth2's client
// credentials request with grant_type replaced, so client authentication,
// answer parsing and error classification are the generic grant's.
type tokenExchangeGrant struct{}

func (tokenExchangeGrant) endpoints(r Request) []endpoint {
	return clientCredentialsGrant{}.endpoints(r)
}

func (tokenExchangeGrant) keyParts(r Request) []string {
	x := r.Exchange
	res := append([]string(nil), x.Resources...)
	sort.Strings(res)
	parts := []string{"exchange", strings.TrimRight(r.IssuerURL, "/"), r.TokenURL,
		x.Subject.ID, x.Subject.Type, x.requestedType(), x.Audience, strings.Join(res, " ")}
	if x.NoClientAuth {
		parts = append(parts, "client-authentication:none") // only then, so existing hashes stay
	}
	if a := x.Actor; a != nil {
		parts = append(parts, "actor", a.ID, a.Type)
	}
	return parts
}

func (x *Exchange) requestedType() string {
	if x.RequestedTokenType == "" {
		return TokenTypeAccessToken
	}
	return x.RequestedTokenType
}

func (g tokenExchangeGrant) validate(r Request) *ConfigError {
	return firstProblem(
		r.checkExchangeExtras,
		r.checkOneEndpoint,
		func() *ConfigError { return r.checkEndpoints(g) },
		r.checkExchangeClient,
		func() *ConfigError { return r.checkScopes(nil) },
		r.checkExtras,
		r.refuseRegion,
		r.Exchange.check,
	)
}

// checkExchangeExtras: authority is MSAL's, and the exchange's own form
// fields come from tokenExchange, never from extraParameters.
func (r Request) checkExchangeExtras() *ConfigError {
	if r.Authority != "" {
		return &ConfigError{Field: "authority", Message: "token exchange needs issuerURL or tokenURL"}
	}
	for _, k := range exchangeParams {
		if _, ok := r.ExtraParameters[k]; ok {
			return &ConfigError{Field: "extraParameters", Message: fmt.Sprintf("%q is set by the token exchange and cannot be overridden", k)}
		}
	}
	return nil
}

// checkExchangeClient: a client that authenticates needs its ID and
// credential, one that does not must have no credential.
func (r Request) checkExchangeClient() *ConfigError {
	if r.Exchange == nil || !r.Exchange.NoClientAuth {
		return firstProblem(r.checkClient, func() *ConfigError { return r.checkCredential(signableKey) })
	}
	if r.Credential != nil {
		return &ConfigError{Field: "credential", Message: "a token exchange without client authentication takes no credential"}
	}
	return nil
}

var exchangeParams = []string{"subject_token", "subject_token_type", "requested_token_type", "audience", "resource", "actor_token", "actor_token_type"}

func (x *Exchange) check() *ConfigError {
	switch {
	case x.Subject.Provide == nil || x.Subject.ID == "":
		return &ConfigError{Field: "tokenExchange.subjectToken", Message: "names no subject token"}
	case !uriLike(x.Subject.Type):
		return &ConfigError{Field: "tokenExchange.subjectTokenType", Message: "must be a token type URI such as " + TokenTypeJWT}
	case x.Actor != nil && (x.Actor.Provide == nil || x.Actor.ID == ""):
		return &ConfigError{Field: "tokenExchange.actorToken", Message: "names no actor token"}
	case x.Actor != nil && !uriLike(x.Actor.Type):
		return &ConfigError{Field: "tokenExchange.actorTokenType", Message: "must be a token type URI such as " + TokenTypeJWT}
	case !uriLike(x.requestedType()):
		return &ConfigError{Field: "tokenExchange.requestedTokenType", Message: "must be a token type URI such as " + TokenTypeAccessToken}
	case len(x.Resources) > maxExchangeResources:
		return &ConfigError{Field: "tokenExchange.resource", Message: fmt.Sprintf("at most %d resources", maxExchangeResources)}
	}
	for _, res := range x.Resources {
		if u, err := url.Parse(res); err != nil || !u.IsAbs() || u.Fragment != "" {
			return &ConfigError{Field: "tokenExchange.resource", Message: "each resource must be an absolute URI without fragment (RFC 8693 §2.1)"}
		}
	}
	return nil
}

// uriLike: a token type is a URI; control characters and spaces are refused.
func uriLike(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && ScopeToken(s)
}

func (tokenExchangeGrant) fetch(ctx context.Context, c *call) (Token, error) {
	req, x := c.req, c.req.Exchange
	tokenURL := req.TokenURL
	if req.IssuerURL != "" {
		var err error
		if tokenURL, err = c.e.tokenEndpoint(ctx, req.IssuerURL, c.key, c.st); err != nil {
			return Token{}, err
		}
	}
	subject, subjectExpires, err := provideToken(ctx, c.st, &x.Subject, "subject")
	if err != nil {
		return Token{}, err
	}
	var actor string
	if x.Actor != nil {
		if actor, _, err = provideToken(ctx, c.st, x.Actor, "actor"); err != nil {
			return Token{}, err
		}
	}
	cfg, err := c.e.exchangeClientConfig(ctx, req, c.st, tokenURL)
	if err != nil {
		return Token{}, err
	}
	cfg.EndpointParams.Set("grant_type", tokenExchangeGrantType)
	cfg.EndpointParams.Set("subject_token", subject)
	cfg.EndpointParams.Set("subject_token_type", x.Subject.Type)
	cfg.EndpointParams.Set("requested_token_type", x.requestedType())
	if x.Audience != "" {
		cfg.EndpointParams.Set("audience", x.Audience)
	}
	if x.Actor != nil {
		cfg.EndpointParams.Set("actor_token", actor)
		cfg.EndpointParams.Set("actor_token_type", x.Actor.Type)
	}
	for _, res := range x.Resources {
		cfg.EndpointParams.Add("resource", res)
	}
	ot, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, c.e.client))
	if err != nil {
		return Token{}, err
	}
	tok, err := tokenFromOAuth2(ot, req.Scopes, c.e.clock.Now())
	if err != nil {
		return Token{}, err
	}
	return capBySubject(tok, subjectExpires), nil
}

// exchangeClientConfig is the client credentials configuration, or for a
// client that does not authenticate one that sends client_id (if any) in
// the form and no secret.
func (e *Engine) exchangeClientConfig(ctx context.Context, req Request, st *callState, tokenURL string) (*clientcredentials.Config, error) {
	if !req.Exchange.NoClientAuth {
		return e.clientConfig(ctx, req, st, tokenURL)
	}
	cfg := &clientcredentials.Config{ClientID: req.ClientID, TokenURL: tokenURL, Scopes: req.Scopes, EndpointParams: url.Values{}, AuthStyle: oauth2.AuthStyleInParams}
	for k, v := range req.ExtraParameters {
		cfg.EndpointParams.Set(k, v)
	}
	return cfg, nil
}

// provideToken gets the subject or actor token, recording it as a secret
// and a failure as the exchange's own.
func provideToken(ctx context.Context, st *callState, src *SubjectToken, role string) (string, time.Time, error) {
	token, expires, err := src.Provide(ctx)
	if err == nil && token == "" {
		err = errors.New("the " + role + " token source returned nothing")
	}
	if err != nil {
		st.mu.Lock()
		st.assertionEr = subjectTokenError{err, role}
		st.mu.Unlock()
		return "", time.Time{}, err
	}
	st.addSecret(token)
	return token, expires, nil
}

// subjectTokenError marks a failure to get the subject (or actor) token,
// so that its message names it, not the client's assertion.
type subjectTokenError struct {
	error
	role string
}

func (e subjectTokenError) Unwrap() error { return e.error }

// capBySubject keeps the exchanged token from outliving its subject: a
// server that does not bound it would otherwise have refresh wait past the
// moment a new subject token is needed.
func capBySubject(t Token, subjectExpires time.Time) Token {
	if !subjectExpires.IsZero() && subjectExpires.Before(t.ExpiresAt) {
		t.ExpiresAt = subjectExpires
		if !t.RefreshAt.IsZero() && t.RefreshAt.After(subjectExpires) {
			t.RefreshAt = time.Time{}
		}
	}
	return t
}

func (tokenExchangeGrant) classify(e *Engine, err error, secrets []string) error {
	return e.classifyOAuth2(err, secrets)
}

func (tokenExchangeGrant) keepsTokens() bool { return false }
