package tokensource

import (
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/token-operator/token-operator/internal/credential"
)

// Request says which token to get and with which credential. Exactly one
// of Authority, IssuerURL and TokenURL is set, or none with AWS or Google.
type Request struct {
	// Authority is a Microsoft Entra ID authority such as
	// https://login.microsoftonline.com/<tenant>, handled through MSAL Go.
	Authority string
	// IssuerURL is a generic OIDC issuer; the token endpoint comes from
	// <issuer>/.well-known/openid-configuration.
	IssuerURL string
	// TokenURL is a generic OAuth2 token endpoint.
	TokenURL string
	// AzureRegion is an optional Azure region (MSAL WithAzureRegion). The
	// regional host it implies must be in AllowedHosts when those are set.
	AzureRegion     string
	ClientID        string
	Scopes          []string
	ExtraParameters map[string]string // extra form fields, generic issuers only
	Credential      credential.Credential
	// AllowedHosts are the token-endpoint hosts ("host" or "host:port") the
	// credential may be sent to; nil means no restriction. An entry without
	// a port matches only the scheme's default port.
	AllowedHosts []string
	// Exchange, when set, asks for the token by RFC 8693 token exchange.
	Exchange *Exchange
	// AWS, when set, asks AWS STS for temporary credentials instead.
	AWS *AWSRole
	// Google, when set, asks Google for the token by workload identity
	// federation; Credential is the subject token's source.
	Google *GoogleFederation
	// ScopesLater skips the scope rules: an issuer is checked on its own,
	// before any TokenRequest names scopes.
	ScopesLater bool
}

// CacheKey identifies the token a request yields: grant, issuer, client,
// credential material, sorted scopes and extra parameters. It changes when
// any of them changes, such as after a credential rotation.
func (r Request) CacheKey() string {
	return r.cacheKey(r.grant())
}

func (r Request) cacheKey(g grant) string {
	h := sha256.New()
	parts := append([]string{"v1"}, g.keyParts(r)...)
	parts = append(parts, r.commonParts(fingerprint(r.Credential))...)
	for _, p := range parts {
		_ = binary.Write(h, binary.BigEndian, uint32(len(p)))
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// InputHash identifies what produces the token: grant, issuer, client,
// scopes, parameters, and credentialVersion (the credential's source and
// version) in place of the credential. It is published on the Secret and in
// status, so it holds names and versions only, no digest of credential
// material. The two client credentials grants keep the layout status
// already holds, so an upgrade renews nothing; any other grant's inputs are
// its keyParts.
func (r Request) InputHash(credentialVersion string) string {
	return r.inputHash(r.grant(), credentialVersion)
}

func (r Request) inputHash(g grant, credentialVersion string) string {
	var parts []string
	switch g.(type) {
	case entraGrant, clientCredentialsGrant:
		parts = []string{"v2", r.Authority, r.IssuerURL, r.TokenURL, r.AzureRegion}
	default:
		parts = append([]string{"v3"}, g.keyParts(r)...)
	}
	parts = append(parts, r.commonParts(credentialVersion)...)
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// commonParts end every grant's key and hash: the client, what stands for
// the credential, the sorted scopes and the extra parameters.
func (r Request) commonParts(cred string) []string {
	scopes := append([]string(nil), r.Scopes...)
	sort.Strings(scopes)
	parts := []string{r.ClientID, cred, strings.Join(scopes, " ")}
	keys := make([]string, 0, len(r.ExtraParameters))
	for k := range r.ExtraParameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k, r.ExtraParameters[k])
	}
	return parts
}

// fingerprint tolerates nil and typed-nil credentials.
func fingerprint(c credential.Credential) string {
	switch c := c.(type) {
	case *credential.ClientSecret:
		if c != nil {
			return c.Fingerprint()
		}
	case *credential.Certificate:
		if c != nil {
			return c.Fingerprint()
		}
	case *credential.Assertion:
		if c != nil {
			return c.Fingerprint()
		}
	case nil:
	default:
		return c.Fingerprint()
	}
	return ""
}

// Validate checks the request without any call. Problems are *ConfigError.
// It allows plain http to loopback hosts; Engine.Validate applies the
// operator's scheme and host policy on top.
func (r Request) Validate() error {
	return r.validate(r.grant())
}

func (r Request) validate(g grant) error {
	if err := g.validate(r); err != nil {
		return err
	}
	if len(g.endpoints(r)) == 0 {
		return &ConfigError{Message: "the request names no token service endpoint"}
	}
	if err := r.checkAllowedHosts(); err != nil {
		return err
	}
	return nil
}

// firstProblem runs checks in order and returns the first problem.
func firstProblem(checks ...func() *ConfigError) *ConfigError {
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkOneEndpoint: the client credentials grants take exactly one of
// Authority, IssuerURL and TokenURL.
func (r Request) checkOneEndpoint() *ConfigError {
	set := 0
	for _, v := range []string{r.Authority, r.IssuerURL, r.TokenURL} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return &ConfigError{Field: "authority", Message: "exactly one of authority, issuerURL and tokenURL must be set"}
	}
	return nil
}

// checkEndpoints refuses an endpoint that is not https (or plain http to a
// loopback host), or that has user info or a fragment.
func (r Request) checkEndpoints(g grant) *ConfigError {
	for _, ep := range g.endpoints(r) {
		u, err := url.Parse(ep.url)
		if err != nil || !secureScheme(u) || u.User != nil || u.Fragment != "" {
			return badEndpoint(ep.field)
		}
	}
	return nil
}

func badEndpoint(field string) *ConfigError {
	return &ConfigError{Field: field, Message: "must be an https URL with a host (plain http only for localhost, 127.0.0.1 or [::1] when the operator allows it; an authority always https), without user info or fragment"}
}

func (r Request) checkClient() *ConfigError {
	if strings.TrimSpace(r.ClientID) == "" {
		return &ConfigError{Field: "clientID", Message: "is required"}
	}
	return nil
}

// checkCredential checks the credential; keyRule is the grant's rule on a
// certificate's key.
func (r Request) checkCredential(keyRule func(*credential.Certificate) *ConfigError) *ConfigError {
	switch c := r.Credential.(type) {
	case *credential.ClientSecret:
		if c == nil || c.Secret == "" {
			return &ConfigError{Field: "credential", Message: "the client secret is empty"}
		}
		switch c.AuthMethod {
		case "", credential.ClientSecretBasic, credential.ClientSecretPost:
			return nil
		}
		return &ConfigError{Field: "credential", Message: fmt.Sprintf("unknown client authentication method %q", c.AuthMethod)}
	case *credential.Certificate:
		if err := checkCertificate(c); err != nil {
			return err
		}
		return keyRule(c)
	case *credential.Assertion:
		if c == nil || c.Provide == nil {
			return &ConfigError{Field: "credential", Message: "the assertion source is missing"}
		}
		return nil
	case nil:
		return &ConfigError{Field: "credential", Message: "is required"}
	default:
		return &ConfigError{Field: "credential", Message: fmt.Sprintf("unsupported credential type %T", c)}
	}
}

func checkCertificate(c *credential.Certificate) *ConfigError {
	if c == nil || len(c.Chain) == 0 || c.Chain[0] == nil || c.Key == nil {
		return &ConfigError{Field: "credential", Message: "the certificate needs a chain and a private key"}
	}
	if pub, ok := c.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(c.Chain[0].PublicKey) {
		return &ConfigError{Field: "credential", Message: "the private key does not match the first certificate"}
	}
	return nil
}

// checkScopes applies RFC 6749's scope-token grammar, then the grant's own
// rule if any, unless ScopesLater.
func (r Request) checkScopes(rule func([]string) *ConfigError) *ConfigError {
	if r.ScopesLater {
		return nil
	}
	if err := CheckScopes(r.Scopes); err != nil {
		return err
	}
	if rule == nil {
		return nil
	}
	return rule(r.Scopes)
}

// ScopeTokenRule names RFC 6749 §3.3's scope-token grammar in messages; the
// CRDs' validation message says the same.
const ScopeTokenRule = "each scope must be an RFC 6749 scope-token: printable ASCII without space, double quote or backslash"

// ScopeToken reports whether s is an RFC 6749 scope-token,
// 1*( %x21 / %x23-5B / %x5D-7E ). Token services split the scope parameter
// differently (on spaces only, or on any Unicode white space), so anything
// else could smuggle a second scope past allowedScopes.
func ScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// CheckScopes refuses, as a *ConfigError, the first scope that is not an
// RFC 6749 scope-token.
func CheckScopes(scopes []string) *ConfigError {
	for i, s := range scopes {
		if !ScopeToken(s) {
			return &ConfigError{Field: "scopes", Message: fmt.Sprintf("scope %d (%s) is not allowed: %s", i+1, quoteShort(s), ScopeTokenRule)}
		}
	}
	return nil
}

// quoteShort quotes a spec value for a message: ASCII only, at most about
// 64 bytes.
func quoteShort(s string) string {
	return strconv.QuoteToASCII(truncate(s, 64))
}

func (r Request) checkAllowedHosts() *ConfigError {
	for _, h := range r.AllowedHosts {
		if _, _, ok := parseHostEntry(h); !ok {
			return &ConfigError{Field: "allowedHosts", Message: fmt.Sprintf("%q is not a host or host:port", h)}
		}
	}
	return nil
}
