package tokensource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/token-operator/token-operator/internal/credential"
)

// entraGrant is Microsoft Entra ID client credentials through MSAL Go,
// chosen by Authority.
type entraGrant struct{}

func (entraGrant) endpoints(r Request) []endpoint {
	return []endpoint{{"authority", strings.TrimRight(r.Authority, "/")}}
}

func (entraGrant) keyParts(r Request) []string {
	return []string{"authority", strings.TrimRight(r.Authority, "/"), r.AzureRegion}
}

func (g entraGrant) validate(r Request) *ConfigError {
	return firstProblem(
		r.checkOneEndpoint,
		func() *ConfigError { return r.checkEndpoints(g) },
		r.checkAuthority,
		r.checkClient,
		func() *ConfigError { return r.checkCredential(entraKey) },
		func() *ConfigError { return r.checkScopes(entraScopes) },
		r.checkNoExtras,
		r.checkRegion,
	)
}

func (entraGrant) fetch(ctx context.Context, c *call) (Token, error) {
	return c.e.fetchEntra(ctx, c.req, c.key, c.st, c.fresh)
}

func (entraGrant) classify(e *Engine, err error, secrets []string) error {
	return e.classifyMSAL(err, secrets)
}

// keepsTokens: MSAL's cache and keyState.last hold tokens.
func (entraGrant) keepsTokens() bool { return true }

// checkAuthority: an authority is always https and names a tenant.
func (r Request) checkAuthority() *ConfigError {
	u, err := url.Parse(r.Authority)
	if err != nil || u.Scheme != "https" {
		return badEndpoint("authority")
	}
	if strings.Trim(u.Path, "/") == "" || u.RawQuery != "" {
		return &ConfigError{Field: "authority", Message: "must name a tenant, like https://login.microsoftonline.com/<tenant>, without a query"}
	}
	return nil
}

// entraKey: MSAL Go signs client assertions with RSA only.
func entraKey(c *credential.Certificate) *ConfigError {
	if _, ok := c.Key.(*rsa.PrivateKey); !ok {
		return &ConfigError{Field: "credential", Message: fmt.Sprintf("Microsoft Entra ID through MSAL Go accepts RSA keys only, this certificate has a %s key; use an RSA certificate", keyKind(c.Key))}
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

func entraScopes(scopes []string) *ConfigError {
	if len(scopes) != 1 || !entraResourceScope(scopes[0]) {
		return &ConfigError{Field: "scopes", Message: fmt.Sprintf("%s; got %q", entraScopeRule, scopes)}
	}
	return nil
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

func (r Request) checkNoExtras() *ConfigError {
	if len(r.ExtraParameters) > 0 {
		return &ConfigError{Field: "extraParameters", Message: "not supported with authority: MSAL Go sends no extra form fields for client credentials"}
	}
	return nil
}

func (r Request) checkRegion() *ConfigError {
	if r.AzureRegion != "" && !regionRE.MatchString(r.AzureRegion) {
		return &ConfigError{Field: "azureRegion", Message: "must be a short lowercase Azure region name such as westeurope (automatic detection is not supported)"}
	}
	return nil
}

// msalClient is one MSAL confidential client with a cache we can empty.
type msalClient struct {
	client confidential.Client
	cache  *clearableCache
}

// clearableCache lets Fetch empty MSAL's in-memory token cache: MSAL calls
// Replace before every cache read, and unmarshalling "{}" resets it.
type clearableCache struct {
	mu    sync.Mutex
	clear bool
}

func (c *clearableCache) Replace(_ context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.clear {
		return nil
	}
	c.clear = false
	return u.Unmarshal([]byte("{}"))
}

func (c *clearableCache) Export(context.Context, cache.Marshaler, cache.ExportHints) error {
	return nil
}

func (c *clearableCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clear = true
}

func (e *Engine) fetchEntra(ctx context.Context, req Request, key string, st *callState, fresh func(Token) bool) (Token, error) {
	if s, ok := req.Credential.(*credential.ClientSecret); ok {
		st.addSecret(s.Secret)
	}
	ks := e.state(key)
	mc, err := ks.msalClient(req, e.client)
	if err != nil {
		return Token{}, err
	}
	tok, err := e.acquire(ctx, ks, mc, req)
	if err == nil && tok.FromCache && fresh != nil && !fresh(tok) {
		mc.cache.drop()
		tok, err = e.acquire(ctx, ks, mc, req)
	}
	return tok, err
}

func (e *Engine) acquire(ctx context.Context, ks *keyState, mc *msalClient, req Request) (Token, error) {
	res, err := mc.client.AcquireTokenByCredential(ctx, req.Scopes)
	if err != nil {
		return Token{}, err
	}
	return ks.token(res, e.clock.Now(), time.Now())
}

// msalClient returns the key's MSAL client, creating it once.
func (ks *keyState) msalClient(req Request, hc *http.Client) (*msalClient, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.msal != nil {
		return ks.msal, nil
	}
	cred, sendX5C, err := msalCredential(req.Credential)
	if err != nil {
		return nil, err
	}
	cc := &clearableCache{}
	// Instance discovery is off for every cloud: it would call
	// login.microsoftonline.com for any authority host, and without it MSAL
	// reads the tenant's own discovery document on the authority host, so
	// all traffic stays on the host the user consented to.
	opts := []confidential.Option{
		confidential.WithHTTPClient(hc),
		confidential.WithInstanceDiscovery(false),
		confidential.WithCache(cc),
		confidential.WithAzureRegion(req.AzureRegion),
	}
	if sendX5C {
		opts = append(opts, confidential.WithX5C())
	}
	client, err := confidential.New(req.Authority, req.ClientID, cred, opts...)
	if err != nil {
		return nil, &ConfigError{Field: "authority", Message: "MSAL refused the configuration: " + scrub(err.Error(), nil)}
	}
	ks.msal = &msalClient{client: client, cache: cc}
	return ks.msal, nil
}

func msalCredential(c credential.Credential) (confidential.Credential, bool, error) {
	switch c := c.(type) {
	case *credential.ClientSecret:
		cred, err := confidential.NewCredFromSecret(c.Secret)
		return cred, false, err
	case *credential.Certificate:
		cred, err := confidential.NewCredFromCert(c.Chain, c.Key)
		if err != nil {
			return cred, false, &ConfigError{Field: "credential", Message: "MSAL refused the certificate: " + err.Error()}
		}
		return cred, c.SendX5C, nil
	case *credential.Assertion:
		return confidential.NewCredFromAssertionCallback(provideAssertion), false, nil
	}
	return confidential.Credential{}, false, &ConfigError{Field: "credential", Message: fmt.Sprintf("unsupported credential type %T", c)}
}

// provideAssertion asks the current Fetch's assertion source, so a client
// reused across calls always uses the caller's latest source.
func provideAssertion(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
	st := stateFrom(ctx)
	if st == nil || st.provide == nil {
		return "", errNoCallState
	}
	a, err := st.provide(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.assertionEr = err
		return "", err
	}
	if a == "" {
		st.assertionEr = errors.New("the assertion source returned nothing")
		return "", st.assertionEr
	}
	st.secrets = append(st.secrets, a)
	return a, nil
}

// token maps an MSAL result onto the engine clock. MSAL computes times with
// the real clock, so lifetimes are taken relative to realNow.
func (ks *keyState) token(res confidential.AuthResult, now, realNow time.Time) (Token, error) {
	fromCache := res.Metadata.TokenSource == confidential.TokenSourceCache
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if fromCache && ks.last.AccessToken == res.AccessToken {
		t := ks.last
		t.FromCache = true
		return t, nil
	}
	t := Token{
		AccessToken: res.AccessToken,
		TokenType:   "Bearer",
		IssuedAt:    now,
		ExpiresAt:   now.Add(res.ExpiresOn.Sub(realNow).Round(time.Second)),
		Scopes:      grantedScopes(res.GrantedScopes, nil),
		FromCache:   fromCache,
	}
	if !res.Metadata.RefreshOn.IsZero() {
		t.RefreshAt = now.Add(res.Metadata.RefreshOn.Sub(realNow).Round(time.Second))
	}
	if t.AccessToken == "" || !t.ExpiresAt.After(now) {
		return Token{}, errNoExpiry()
	}
	if !fromCache {
		ks.last = t
	}
	return t, nil
}

// errNoExpiry: a token without a usable lifetime cannot be renewed on time,
// and asking again will not change the server's answer, so it is terminal.
func errNoExpiry() *Error {
	return &Error{StatusCode: http.StatusOK, Code: "malformed_response", Description: "the token response has no access_token or no positive expires_in"}
}

func (e *Engine) classifyMSAL(err error, secrets []string) error {
	var callErr msalerrors.CallErr
	if errors.As(err, &callErr) && callErr.Resp != nil {
		body, _ := readBody(callErr.Resp) // MSAL buffered it through the guard
		return httpError(callErr.Resp.StatusCode, callErr.Resp.Header, body, e.clock.Now(), secrets)
	}
	var jsonErr msalerrors.InvalidJsonErr
	if errors.As(err, &jsonErr) {
		// MSAL reports a missing lifetime as a decode error; match its text
		// so that this case stays terminal as in the generic flow.
		if strings.Contains(jsonErr.Error(), "expires_in and expires_on are both missing") {
			return errNoExpiry()
		}
		return &Error{Retryable: true, Code: "malformed_response", StatusCode: http.StatusOK, Description: "the answer is not valid JSON"}
	}
	if ne, ok := e.networkError(err, secrets); ok {
		return ne
	}
	// MSAL's own checks (discovery document, issuer): texts without bodies,
	// though they may quote a server-chosen issuer.
	return &Error{Retryable: true, Code: "malformed_response", Description: truncate(describe(err.Error(), nil, secrets), 300)}
}
