package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// clientConfig is one registered client.
type clientConfig struct {
	ID     string `json:"id"`
	Secret string `json:"secret,omitempty"`
	// AuthMethod is client_secret_basic, client_secret_post or
	// private_key_jwt.
	AuthMethod string   `json:"auth_method"`
	Scopes     []string `json:"scopes"`
	// Keys verify private_key_jwt assertions, picked by kid.
	Keys []jose.JSONWebKey `json:"keys,omitempty"`
	// TokenLifetime is the access token lifetime in seconds (default 3600).
	TokenLifetime int `json:"token_lifetime,omitempty"`
	// Audiences, when set, are the only audience values a token exchange
	// of this client may ask for (others: invalid_target).
	Audiences []string `json:"audiences,omitempty"`
}

// subjectIssuer is an issuer whose JWTs this server takes as RFC 8693
// subject or actor tokens, such as a Kubernetes service account issuer.
type subjectIssuer struct {
	Issuer   string            `json:"issuer"`
	Audience string            `json:"audience"`
	Keys     []jose.JSONWebKey `json:"keys"`
}

// storage is op.Storage over the clients of the configuration. Only the
// client credentials grant and token exchange are served.
type storage struct {
	clients map[string]*client
	key     signingKey
	issuers []subjectIssuer
}

func newStorage(cs []clientConfig, issuers []subjectIssuer, key *rsa.PrivateKey) (*storage, error) {
	kid := make([]byte, 8)
	if _, err := rand.Read(kid); err != nil {
		return nil, err
	}
	s := &storage{clients: map[string]*client{}, key: signingKey{id: hex.EncodeToString(kid), key: key}, issuers: issuers}
	for _, c := range cs {
		m := oidc.AuthMethod(c.AuthMethod)
		switch m {
		case oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodPrivateKeyJWT:
		default:
			return nil, fmt.Errorf("client %q: unknown auth_method %q", c.ID, c.AuthMethod)
		}
		life := time.Duration(c.TokenLifetime) * time.Second
		if life == 0 {
			life = time.Hour
		}
		s.clients[c.ID] = &client{id: c.ID, secret: c.Secret, method: m, scopes: c.Scopes, keys: c.Keys, lifetime: life, audiences: c.Audiences}
	}
	return s, nil
}

func (s *storage) client(id string) (*client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	return c, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	return s.client(id)
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, err := s.client(id)
	if err != nil {
		return err
	}
	if c.secret == "" || c.secret != secret {
		return oidc.ErrInvalidClient().WithDescription("wrong client secret")
	}
	return nil
}

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	if err := s.AuthorizeClientIDSecret(ctx, id, secret); err != nil {
		return nil, err
	}
	return s.client(id)
}

// ClientCredentialsTokenRequest grants the requested scopes when the client
// has all of them.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	c, err := s.client(id)
	if err != nil {
		return nil, err
	}
	for _, sc := range scopes {
		if !c.IsScopeAllowed(sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q not allowed for this client", sc)
		}
	}
	return &tokenRequest{subject: id, scopes: scopes}, nil
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	id := r.GetSubject()
	if te, ok := r.(op.TokenExchangeRequest); ok {
		id = te.GetClientID()
	}
	c, err := s.client(id)
	if err != nil {
		return "", time.Time{}, err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, err
	}
	return hex.EncodeToString(jti), time.Now().Add(c.lifetime), nil
}

func (s *storage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	c, err := s.client(clientID)
	if err != nil {
		return nil, err
	}
	for i := range c.keys {
		if c.keys[i].KeyID == keyID {
			return &c.keys[i], nil
		}
	}
	return nil, fmt.Errorf("client %q has no key %q", clientID, keyID)
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) Health(context.Context) error { return nil }

// ValidateTokenExchangeRequest allows the client's own scopes and issues
// access tokens only.
func (s *storage) ValidateTokenExchangeRequest(_ context.Context, r op.TokenExchangeRequest) error {
	c, err := s.client(r.GetClientID())
	if err != nil {
		return err
	}
	for _, sc := range r.GetScopes() {
		if !c.IsScopeAllowed(sc) {
			return oidc.ErrInvalidScope().WithDescription("scope %q not allowed for this client", sc)
		}
	}
	if c.audiences != nil {
		for _, a := range r.GetAudience() {
			if !slices.Contains(c.audiences, a) {
				return oidc.ErrInvalidTarget().WithDescription("audience %q not allowed for this client", a)
			}
		}
	}
	switch r.GetRequestedTokenType() {
	case "":
		r.SetRequestedTokenType(oidc.AccessTokenType)
	case oidc.AccessTokenType:
	default:
		return oidc.ErrInvalidRequest().WithDescription("only access tokens are issued")
	}
	return nil
}

func (s *storage) CreateTokenExchangeRequest(context.Context, op.TokenExchangeRequest) error {
	return nil
}

func (s *storage) GetPrivateClaimsFromTokenExchangeRequest(context.Context, op.TokenExchangeRequest) (map[string]any, error) {
	return nil, nil
}

func (s *storage) SetUserinfoFromTokenExchangeRequest(context.Context, *oidc.UserInfo, op.TokenExchangeRequest) error {
	return nil
}

// VerifyExchangeSubjectToken takes a JWT of a configured issuer; op checks
// this server's own tokens before asking.
func (s *storage) VerifyExchangeSubjectToken(_ context.Context, token string, _ oidc.TokenType) (string, string, map[string]any, error) {
	return s.verifyForeign(token)
}

func (s *storage) VerifyExchangeActorToken(_ context.Context, token string, _ oidc.TokenType) (string, string, map[string]any, error) {
	return s.verifyForeign(token)
}

func (s *storage) verifyForeign(token string) (string, string, map[string]any, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256})
	if err != nil {
		return "", "", nil, err
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return "", "", nil, err
	}
	for _, is := range s.issuers {
		if is.Issuer != unverified.Issuer {
			continue
		}
		var c jwt.Claims
		all := map[string]any{}
		if err := tok.Claims(jose.JSONWebKeySet{Keys: is.Keys}, &c, &all); err != nil {
			return "", "", nil, err
		}
		if err := c.Validate(jwt.Expected{Issuer: is.Issuer, AnyAudience: jwt.Audience{is.Audience}, Time: time.Now()}); err != nil {
			return "", "", nil, err
		}
		return token, c.Subject, all, nil
	}
	return "", "", nil, fmt.Errorf("no trusted issuer %q", unverified.Issuer)
}

// The rest of op.Storage serves grants this server does not offer.

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNotSupported
}
func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotSupported
}
func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotSupported
}
func (s *storage) SaveAuthCode(context.Context, string, string) error     { return errNotSupported }
func (s *storage) DeleteAuthRequest(context.Context, string) error        { return errNotSupported }
func (s *storage) TerminateSession(context.Context, string, string) error { return errNotSupported }
func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNotSupported
}
func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errNotSupported
}
func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrUnsupportedGrantType()
}
func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", errNotSupported
}
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return errNotSupported
}
func (s *storage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errNotSupported
}
func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotSupported
}
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotSupported
}

// client is a registered client: confidential, client credentials and
// token exchange, JWT access tokens.
type client struct {
	id, secret string
	method     oidc.AuthMethod
	scopes     []string
	keys       []jose.JSONWebKey
	lifetime   time.Duration
	audiences  []string
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return nil }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return c.method }
func (c *client) ResponseTypes() []oidc.ResponseType  { return nil }
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeClientCredentials, oidc.GrantTypeTokenExchange}
}
func (c *client) LoginURL(string) string               { return "" }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration       { return 0 }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(s string) bool         { return slices.Contains(c.scopes, s) }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// tokenRequest is a client credentials grant: the client is the subject.
type tokenRequest struct {
	subject string
	scopes  []string
}

func (t *tokenRequest) GetSubject() string    { return t.subject }
func (t *tokenRequest) GetAudience() []string { return []string{t.subject} }
func (t *tokenRequest) GetScopes() []string   { return t.scopes }

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }
