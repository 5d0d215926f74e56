package googlests_test

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/google/externalaccount"

	"github.com/token-operator/token-operator/internal/testing/googlests"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

const (
	issuer  = "https://kubernetes.example.test"
	subject = "system:serviceaccount:team-a:app"
	saEmail = "app@project-a.iam.gserviceaccount.com"
)

// env is a server with one provider trusting a local signing key and one
// service account the provider's subject may impersonate.
type env struct {
	srv      *googlests.Server
	key      crypto.Signer
	provider googlests.Provider
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := googlests.New()
	t.Cleanup(srv.Close)
	key := testcert.RSA(t, 2048)
	e := &env{srv: srv, key: key, provider: googlests.Provider{
		ProjectNumber: "123456789012", Pool: "clusters", Provider: "cluster-a",
		Issuer: issuer, Keys: googlests.StaticKeys(publicJWKS(key, "k1")),
		SubjectCondition: "system:serviceaccount:team-a:*",
	}}
	srv.AddProvider(e.provider)
	srv.AddServiceAccount(googlests.ServiceAccount{Email: saEmail, WorkloadIdentityUsers: []string{e.provider.PrincipalFor(subject)}})
	return e
}

func publicJWKS(key crypto.Signer, kid string) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: "RS256", Use: "sig"}}}
}

// claims are a valid subject token's claims; tests edit them.
func (e *env) claims() jwt.Claims {
	now := time.Now()
	return jwt.Claims{
		Issuer: issuer, Subject: subject, Audience: jwt.Audience{e.provider.DefaultAudience()},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
	}
}

func sign(t *testing.T, key crypto.Signer, kid string, c jwt.Claims) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// supplier hands the external-account client a fixed subject token.
type supplier string

func (s supplier) SubjectToken(context.Context, externalaccount.SupplierOptions) (string, error) {
	return string(s), nil
}

// ctx carries an HTTP client that trusts the server, for golang.org/x/oauth2.
func (e *env) ctx() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, e.srv.Client())
}

// config is what the operator will give the external-account client.
func (e *env) config(subjectToken, impersonate string) externalaccount.Config {
	c := externalaccount.Config{
		Audience:             e.provider.Audience(),
		SubjectTokenType:     googlests.TokenTypeJWT,
		TokenURL:             e.srv.TokenURL(),
		Scopes:               []string{googlests.CloudPlatformScope},
		SubjectTokenSupplier: supplier(subjectToken),
	}
	if impersonate != "" {
		c.ServiceAccountImpersonationURL = e.srv.ImpersonationURL(impersonate)
	}
	return c
}

func (e *env) token(t *testing.T, c externalaccount.Config) (*oauth2.Token, error) {
	t.Helper()
	ts, err := externalaccount.NewTokenSource(e.ctx(), c)
	if err != nil {
		t.Fatal(err)
	}
	return ts.Token()
}

// whoami calls the stand-in Google API with tok.
func (e *env) whoami(t *testing.T, tok string) (int, googlests.WhoAmI) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.APIURL(), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var w googlests.WhoAmI
	_ = json.NewDecoder(resp.Body).Decode(&w)
	return resp.StatusCode, w
}

func near(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got > want || got < want-10*time.Second {
		t.Errorf("%s is %v, want %v", what, got, want)
	}
}

func TestExchangeAlone(t *testing.T) {
	e := newEnv(t)
	tok, err := e.token(t, e.config(sign(t, e.key, "k1", e.claims()), ""))
	if err != nil {
		t.Fatal(err)
	}
	near(t, "federated token lifetime", time.Until(tok.Expiry), time.Hour)
	if n, m := e.srv.Calls(googlests.STS), e.srv.Calls(googlests.GenerateAccessToken); n != 1 || m != 0 {
		t.Errorf("STS calls %d, generateAccessToken calls %d; want 1 and 0", n, m)
	}
	got := e.srv.LastExchange()
	want := map[string]string{
		"grant_type": googlests.GrantTypeExchange, "audience": e.provider.Audience(), "scope": googlests.CloudPlatformScope,
		"requested_token_type": googlests.TokenTypeAccessToken, "subject_token_type": googlests.TokenTypeJWT,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if status, _ := e.whoami(t, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("the API took a federated token by default: %d", status)
	}
	e.srv.AcceptFederatedTokens(true)
	status, who := e.whoami(t, tok.AccessToken)
	if status != http.StatusOK || who.Principal != e.provider.PrincipalFor(subject) {
		t.Errorf("API answered %d %+v, want 200 for %s", status, who, e.provider.PrincipalFor(subject))
	}
}

func TestExchangeAndImpersonation(t *testing.T) {
	e := newEnv(t)
	tok, err := e.token(t, e.config(sign(t, e.key, "k1", e.claims()), saEmail))
	if err != nil {
		t.Fatal(err)
	}
	near(t, "service account token lifetime", time.Until(tok.Expiry), time.Hour)
	if n, m := e.srv.Calls(googlests.STS), e.srv.Calls(googlests.GenerateAccessToken); n != 1 || m != 1 {
		t.Errorf("STS calls %d, generateAccessToken calls %d; want 1 each", n, m)
	}
	status, who := e.whoami(t, tok.AccessToken)
	if status != http.StatusOK || who.Principal != "serviceAccount:"+saEmail {
		t.Errorf("API answered %d %+v, want 200 for the service account", status, who)
	}
	if status, _ := e.whoami(t, "ya29.forged"); status != http.StatusUnauthorized {
		t.Errorf("the API took an unknown token: %d", status)
	}
}

func TestPoolMembersMayImpersonate(t *testing.T) {
	e := newEnv(t)
	e.srv.AddServiceAccount(googlests.ServiceAccount{Email: "pool@p.iam.gserviceaccount.com", WorkloadIdentityUsers: []string{e.provider.PoolMembers()}})
	if _, err := e.token(t, e.config(sign(t, e.key, "k1", e.claims()), "pool@p.iam.gserviceaccount.com")); err != nil {
		t.Fatal(err)
	}
	other := e.provider
	other.Pool = "other-pool"
	e.srv.AddServiceAccount(googlests.ServiceAccount{Email: "other@p.iam.gserviceaccount.com", WorkloadIdentityUsers: []string{other.PoolMembers()}})
	_, err := e.token(t, e.config(sign(t, e.key, "k1", e.claims()), "other@p.iam.gserviceaccount.com"))
	wantGoogleError(t, err, http.StatusForbidden, "PERMISSION_DENIED", "iam.serviceAccounts.getAccessToken")
}

// TestConsumerReadsCredentialsFile is a Go program reading an
// external_account file as the operator will write it, with a 15-minute
// impersonated token.
func TestConsumerReadsCredentialsFile(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(sign(t, e.key, "k1", e.claims())), 0o600); err != nil {
		t.Fatal(err)
	}
	file, _ := json.Marshal(map[string]any{
		"type":                              "external_account",
		"audience":                          e.provider.Audience(),
		"subject_token_type":                googlests.TokenTypeJWT,
		"token_url":                         e.srv.TokenURL(),
		"service_account_impersonation_url": e.srv.ImpersonationURL(saEmail),
		"service_account_impersonation":     map[string]any{"token_lifetime_seconds": 900},
		"credential_source":                 map[string]any{"file": tokenFile, "format": map[string]any{"type": "text"}},
	})
	creds, err := google.CredentialsFromJSONWithTypeAndParams(e.ctx(), file, google.ExternalAccount, google.CredentialsParams{Scopes: []string{googlests.CloudPlatformScope}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := oauth2.NewClient(e.ctx(), creds.TokenSource).Get(e.srv.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var who googlests.WhoAmI
	_ = json.NewDecoder(resp.Body).Decode(&who)
	if resp.StatusCode != http.StatusOK || who.Principal != "serviceAccount:"+saEmail {
		t.Fatalf("API answered %d %+v", resp.StatusCode, who)
	}
	near(t, "impersonated token lifetime", time.Duration(who.ExpiresIn)*time.Second, 15*time.Minute)
}

// googleErr splits "oauth2/google: status code N: BODY" into N and BODY.
var googleErr = regexp.MustCompile(`status code (\d+): (.*)$`)

func errorBody(t *testing.T, err error) (int, map[string]any) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	m := googleErr.FindStringSubmatch(strings.TrimSpace(err.Error()))
	if m == nil {
		t.Fatalf("error without the server's answer: %v", err)
	}
	status, _ := strconv.Atoi(m[1])
	var body map[string]any
	if json.Unmarshal([]byte(m[2]), &body) != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return status, body
}

func wantSTSError(t *testing.T, err error, status int, code, text string) {
	t.Helper()
	got, body := errorBody(t, err)
	desc, _ := body["error_description"].(string)
	if got != status || body["error"] != code || !strings.Contains(desc, text) {
		t.Fatalf("got %d %v %q, want %d %s %q", got, body["error"], desc, status, code, text)
	}
}

func wantGoogleError(t *testing.T, err error, status int, rpc, text string) {
	t.Helper()
	got, body := errorBody(t, err)
	e, _ := body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	code, _ := e["code"].(float64)
	if got != status || int(code) != status || e["status"] != rpc || !strings.Contains(msg, text) {
		t.Fatalf("got %d %v, want %d %s %q", got, body, status, rpc, text)
	}
}

func TestExchangeRefusals(t *testing.T) {
	other := testcert.RSA(t, 2048)
	for _, tc := range []struct {
		name string
		edit func(e *env, c *jwt.Claims, cfg *externalaccount.Config)
		key  crypto.Signer // signs instead of the trusted key
		code string
		text string
	}{
		{name: "wrong audience", code: "invalid_grant", text: "does not match the expected audience",
			edit: func(_ *env, c *jwt.Claims, _ *externalaccount.Config) {
				c.Audience = jwt.Audience{"https://kubernetes.default.svc"}
			}},
		{name: "untrusted issuer", code: "invalid_grant", text: "The issuer in ID Token https://evil.test",
			edit: func(_ *env, c *jwt.Claims, _ *externalaccount.Config) { c.Issuer = "https://evil.test" }},
		{name: "expired subject token", code: "invalid_grant", text: "is stale to sign-in",
			edit: func(_ *env, c *jwt.Claims, _ *externalaccount.Config) {
				c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Hour))
				c.NotBefore = c.IssuedAt
				c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour))
			}},
		{name: "subject token too long-lived", code: "invalid_grant", text: "24 hours",
			edit: func(_ *env, c *jwt.Claims, _ *externalaccount.Config) {
				c.Expiry = jwt.NewNumericDate(time.Now().Add(25 * time.Hour))
			}},
		{name: "signed by another key", key: other, code: "invalid_grant", text: "signature"},
		{name: "attribute condition", code: "unauthorized_client", text: "rejected by the attribute condition",
			edit: func(_ *env, c *jwt.Claims, _ *externalaccount.Config) { c.Subject = "system:serviceaccount:team-b:app" }},
		{name: "unknown provider", code: "invalid_target", text: "pool or provider is disabled or deleted",
			edit: func(e *env, _ *jwt.Claims, cfg *externalaccount.Config) {
				cfg.Audience = strings.Replace(cfg.Audience, "cluster-a", "cluster-b", 1)
			}},
		{name: "disabled provider", code: "invalid_target", text: "pool or provider is disabled or deleted",
			edit: func(e *env, _ *jwt.Claims, _ *externalaccount.Config) {
				p := e.provider
				p.Disabled = true
				e.srv.AddProvider(p)
			}},
		{name: "audience not a provider name", code: "invalid_request", text: `Invalid value for "audience"`,
			edit: func(e *env, _ *jwt.Claims, cfg *externalaccount.Config) { cfg.Audience = e.provider.DefaultAudience() }},
		{name: "SAML subject token type", code: "invalid_request", text: `"subject_token_type"`,
			edit: func(e *env, _ *jwt.Claims, cfg *externalaccount.Config) {
				cfg.SubjectTokenType = "urn:ietf:params:oauth:token-type:saml2"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.claims()
			cfg := e.config("", saEmail)
			if tc.edit != nil {
				tc.edit(e, &c, &cfg)
			}
			key := e.key
			if tc.key != nil {
				key = tc.key
			}
			cfg.SubjectTokenSupplier = supplier(sign(t, key, "k1", c))
			_, err := e.token(t, cfg)
			wantSTSError(t, err, http.StatusBadRequest, tc.code, tc.text)
			if n := e.srv.Calls(googlests.GenerateAccessToken); n != 0 {
				t.Errorf("impersonation was tried after a refused exchange: %d calls", n)
			}
			if strings.Contains(err.Error(), string(cfg.SubjectTokenSupplier.(supplier))) {
				t.Error("the error repeats the subject token")
			}
		})
	}
}

func TestImpersonationRefusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		email    string
		lifetime int
		extended bool
		status   int
		rpc      string
		text     string
	}{
		{name: "principal not allowed", email: "admin@project-a.iam.gserviceaccount.com", status: 403, rpc: "PERMISSION_DENIED", text: "Permission 'iam.serviceAccounts.getAccessToken' denied"},
		{name: "unknown service account", email: "ghost@project-a.iam.gserviceaccount.com", status: 404, rpc: "NOT_FOUND", text: "Gaia id not found"},
		{name: "lifetime over an hour", email: saEmail, lifetime: 7200, status: 400, rpc: "INVALID_ARGUMENT", text: "lifetime"},
		{name: "lifetime over 12 hours though extended", email: saEmail, lifetime: 43201, extended: true, status: 400, rpc: "INVALID_ARGUMENT", text: "lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.AddServiceAccount(googlests.ServiceAccount{Email: "admin@project-a.iam.gserviceaccount.com", WorkloadIdentityUsers: []string{e.provider.PrincipalFor("system:serviceaccount:team-a:admin")}})
			e.srv.AddServiceAccount(googlests.ServiceAccount{Email: saEmail, WorkloadIdentityUsers: []string{e.provider.PrincipalFor(subject)}, ExtendedLifetime: tc.extended})
			cfg := e.config(sign(t, e.key, "k1", e.claims()), tc.email)
			cfg.ServiceAccountImpersonationLifetimeSeconds = tc.lifetime
			_, err := e.token(t, cfg)
			wantGoogleError(t, err, tc.status, tc.rpc, tc.text)
			if n := e.srv.Calls(googlests.STS); n != 1 {
				t.Errorf("STS calls %d, want 1", n)
			}
		})
	}
}

func TestExtendedLifetime(t *testing.T) {
	e := newEnv(t)
	e.srv.AddServiceAccount(googlests.ServiceAccount{Email: saEmail, WorkloadIdentityUsers: []string{e.provider.PrincipalFor(subject)}, ExtendedLifetime: true})
	cfg := e.config(sign(t, e.key, "k1", e.claims()), saEmail)
	cfg.ServiceAccountImpersonationLifetimeSeconds = 43200
	tok, err := e.token(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "extended token lifetime", time.Until(tok.Expiry), 12*time.Hour)
}

func TestFederatedLifetimeCappedBySubjectToken(t *testing.T) {
	e := newEnv(t)
	c := e.claims()
	c.Expiry = jwt.NewNumericDate(time.Now().Add(10 * time.Minute))
	tok, err := e.token(t, e.config(sign(t, e.key, "k1", c), ""))
	if err != nil {
		t.Fatal(err)
	}
	near(t, "federated token lifetime", time.Until(tok.Expiry), 10*time.Minute)

	// A short federated lifetime wins over a longer subject token.
	e.srv.SetLifetimes(15*time.Minute, 0)
	tok, err = e.token(t, e.config(sign(t, e.key, "k1", e.claims()), ""))
	if err != nil {
		t.Fatal(err)
	}
	near(t, "short federated token lifetime", time.Until(tok.Expiry), 15*time.Minute)
}

func TestServiceAccountLifetimeCap(t *testing.T) {
	e := newEnv(t)
	e.srv.SetLifetimes(time.Hour, 15*time.Minute)
	tok, err := e.token(t, e.config(sign(t, e.key, "k1", e.claims()), saEmail))
	if err != nil {
		t.Fatal(err)
	}
	near(t, "capped service account token lifetime", time.Until(tok.Expiry), 15*time.Minute)
}

func TestFaults(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectFaults(
		googlests.Fault{Endpoint: googlests.STS, Status: http.StatusServiceUnavailable},
		googlests.Fault{Endpoint: googlests.GenerateAccessToken, Status: http.StatusTooManyRequests, Message: "Quota exceeded"},
	)
	cfg := e.config(sign(t, e.key, "k1", e.claims()), saEmail)
	_, err := e.token(t, cfg)
	wantGoogleError(t, err, http.StatusServiceUnavailable, "UNAVAILABLE", "Service Unavailable")
	_, err = e.token(t, cfg)
	wantGoogleError(t, err, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded")
	if _, err := e.token(t, cfg); err != nil {
		t.Fatalf("faults outlived their call: %v", err)
	}
	if n, m := e.srv.Calls(googlests.STS), e.srv.Calls(googlests.GenerateAccessToken); n != 3 || m != 2 {
		t.Errorf("STS calls %d, generateAccessToken calls %d; want 3 and 2", n, m)
	}
}

// TestDiscoveryKeys verifies subject tokens with keys found through the
// issuer's OIDC discovery, as for a kube-apiserver's issuer.
func TestDiscoveryKeys(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	idp := httptest.NewTLSServer(mux)
	t.Cleanup(idp.Close)
	docIssuer := idp.URL
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": docIssuer, "jwks_uri": idp.URL + "/openid/v1/jwks"})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(publicJWKS(e.key, "k1"))
	})
	p := e.provider
	p.Issuer, p.Keys = idp.URL, googlests.DiscoveryKeys(idp.URL, idp.Client())
	e.srv.AddProvider(p)
	c := e.claims()
	c.Issuer = idp.URL
	cfg := e.config(sign(t, e.key, "k1", c), saEmail)
	if _, err := e.token(t, cfg); err != nil {
		t.Fatal(err)
	}
	docIssuer = "https://other.test"
	_, err := e.token(t, cfg)
	wantSTSError(t, err, http.StatusBadRequest, "invalid_grant", "`issuer` claim in OIDC discovery document does not match")
}
