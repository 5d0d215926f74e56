package tokensource

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/token-operator/token-operator/internal/credential"
)

// Request says which token to get and with which credential. Exactly one
// of Authority, IssuerURL and TokenURL is set.
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
	// ScopesLater skips the scope rules: an issuer is checked on its own,
	// before any TokenRequest names scopes.
	ScopesLater bool
}

// CacheKey identifies the token a request yields: issuer, client, credential
// material, sorted scopes and extra parameters. It changes when any of them
// changes, such as after a credential rotation.
func (r Request) CacheKey() string {
	h := sha256.New()
	kind, endpoint := r.endpoint()
	scopes := append([]string(nil), r.Scopes...)
	sort.Strings(scopes)
	parts := []string{"v1", kind, endpoint, r.AzureRegion, r.ClientID, fingerprint(r.Credential), strings.Join(scopes, " ")}
	keys := make([]string, 0, len(r.ExtraParameters))
	for k := range r.ExtraParameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k, r.ExtraParameters[k])
	}
	for _, p := range parts {
		_ = binary.Write(h, binary.BigEndian, uint32(len(p)))
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (r Request) endpoint() (kind, u string) {
	switch {
	case r.Authority != "":
		return "authority", strings.TrimRight(r.Authority, "/")
	case r.IssuerURL != "":
		return "issuer", strings.TrimRight(r.IssuerURL, "/")
	default:
		return "token", r.TokenURL
	}
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
	for _, check := range []func() *ConfigError{r.checkEndpoint, r.checkClient, r.checkCredential, r.checkScopes, r.checkExtras, r.checkRegion, r.checkAllowedHosts} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (r Request) entra() bool { return r.Authority != "" }

func (r Request) checkEndpoint() *ConfigError {
	set := 0
	for _, v := range []string{r.Authority, r.IssuerURL, r.TokenURL} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return &ConfigError{Field: "authority", Message: "exactly one of authority, issuerURL and tokenURL must be set"}
	}
	kind, raw := r.endpoint()
	field := endpointField(kind)
	u, err := url.Parse(raw)
	if err != nil || !secureScheme(u) || (kind == "authority" && u.Scheme != "https") || u.User != nil || u.Fragment != "" {
		return &ConfigError{Field: field, Message: "must be an https URL with a host (plain http only for localhost, 127.0.0.1 or [::1] when the operator allows it; an authority always https), without user info or fragment"}
	}
	if kind == "authority" && (strings.Trim(u.Path, "/") == "" || u.RawQuery != "") {
		return &ConfigError{Field: field, Message: "must name a tenant, like https://login.microsoftonline.com/<tenant>, without a query"}
	}
	return nil
}

func (r Request) checkClient() *ConfigError {
	if strings.TrimSpace(r.ClientID) == "" {
		return &ConfigError{Field: "clientID", Message: "is required"}
	}
	return nil
}

func (r Request) checkCredential() *ConfigError {
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
		return r.checkCertificate(c)
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

func (r Request) checkCertificate(c *credential.Certificate) *ConfigError {
	if c == nil || len(c.Chain) == 0 || c.Chain[0] == nil || c.Key == nil {
		return &ConfigError{Field: "credential", Message: "the certificate needs a chain and a private key"}
	}
	if pub, ok := c.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(c.Chain[0].PublicKey) {
		return &ConfigError{Field: "credential", Message: "the private key does not match the first certificate"}
	}
	if r.entra() {
		if _, ok := c.Key.(*rsa.PrivateKey); !ok {
			return &ConfigError{Field: "credential", Message: fmt.Sprintf("Microsoft Entra ID through MSAL Go accepts RSA keys only, this certificate has a %s key; use an RSA certificate", keyKind(c.Key))}
		}
		return nil
	}
	if _, err := signingAlgorithm(c); err != nil {
		return &ConfigError{Field: "credential", Message: err.Error()}
	}
	return nil
}

func keyKind(k any) string {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return "EC P-256"
		}
		return "EC"
	}
	return fmt.Sprintf("%T", k)
}

var (
	guidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	regionRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// entraScopeRule is the client credentials rule of Microsoft Entra ID.
const entraScopeRule = `Microsoft Entra ID client credentials take exactly one scope "<resource>/.default", where <resource> is an application ID URI (https://graph.microsoft.com, api://<app-id>, https://management.core.windows.net/) or an application ID (GUID)`

func (r Request) checkScopes() *ConfigError {
	if r.ScopesLater {
		return nil
	}
	if err := CheckScopes(r.Scopes); err != nil {
		return err
	}
	if !r.entra() {
		return nil
	}
	if len(r.Scopes) != 1 || !entraResourceScope(r.Scopes[0]) {
		return &ConfigError{Field: "scopes", Message: fmt.Sprintf("%s; got %q", entraScopeRule, r.Scopes)}
	}
	return nil
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

func entraResourceScope(s string) bool {
	res, ok := strings.CutSuffix(s, "/.default")
	if !ok || res == "" {
		return false
	}
	if guidRE.MatchString(res) {
		return true
	}
	u, err := url.Parse(res)
	return err == nil && u.Scheme != "" && u.Host != ""
}

var reservedParams = map[string]bool{
	"grant_type": true, "scope": true, "client_id": true, "client_secret": true,
	"client_assertion": true, "client_assertion_type": true,
}

func (r Request) checkExtras() *ConfigError {
	if len(r.ExtraParameters) == 0 {
		return nil
	}
	if r.entra() {
		return &ConfigError{Field: "extraParameters", Message: "not supported with authority: MSAL Go sends no extra form fields for client credentials"}
	}
	for k := range r.ExtraParameters {
		if k == "" || reservedParams[k] {
			return &ConfigError{Field: "extraParameters", Message: fmt.Sprintf("%q is set by the token engine and cannot be overridden", k)}
		}
	}
	return nil
}

func (r Request) checkRegion() *ConfigError {
	if r.AzureRegion == "" {
		return nil
	}
	if !r.entra() {
		return &ConfigError{Field: "azureRegion", Message: "only applies with authority"}
	}
	if !regionRE.MatchString(r.AzureRegion) {
		return &ConfigError{Field: "azureRegion", Message: "must be a short lowercase Azure region name such as westeurope (automatic detection is not supported)"}
	}
	return nil
}

func (r Request) checkAllowedHosts() *ConfigError {
	for _, h := range r.AllowedHosts {
		if _, _, ok := parseHostEntry(h); !ok {
			return &ConfigError{Field: "allowedHosts", Message: fmt.Sprintf("%q is not a host or host:port", h)}
		}
	}
	return nil
}
