package entraserver_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

const graph = "https://graph.microsoft.com/.default"

// answer is a decoded token endpoint or discovery answer.
type answer struct {
	status int
	body   map[string]any
}

// code is the first AADSTS code of an error answer, 0 if none.
func (a answer) code() int {
	codes, _ := a.body["error_codes"].([]any)
	if len(codes) == 0 {
		return 0
	}
	n, _ := codes[0].(float64)
	return int(n)
}

func (a answer) want(t *testing.T, status int, errCode string, aadsts int) {
	t.Helper()
	if a.status != status || a.body["error"] != errCode || a.code() != aadsts {
		t.Fatalf("got %d %v AADSTS%d, want %d %s AADSTS%d: %v", a.status, a.body["error"], a.code(), status, errCode, aadsts, a.body["error_description"])
	}
	for _, k := range []string{"error_description", "timestamp", "trace_id", "correlation_id"} {
		if s, _ := a.body[k].(string); s == "" {
			t.Errorf("no %s in the error answer", k)
		}
	}
}

func (a answer) ok(t *testing.T) {
	t.Helper()
	if a.status != http.StatusOK || a.body["access_token"] == nil {
		t.Fatalf("got %d %v: %v", a.status, a.body["error"], a.body["error_description"])
	}
}

func client(srv *entraserver.Server) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool()}}}
}

func decode(t *testing.T, resp *http.Response, err error) answer {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, body: map[string]any{}}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return a
}

func post(t *testing.T, srv *entraserver.Server, tenant string, form url.Values) answer {
	t.Helper()
	resp, err := client(srv).PostForm(srv.TokenURL(tenant), form)
	return decode(t, resp, err)
}

func withSecret(id, secret, scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {scope}}
}

func withAssertion(id, assertion, scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
}

func newServer(t *testing.T) *entraserver.Server {
	srv := entraserver.New()
	t.Cleanup(srv.Close)
	return srv
}

func TestDiscoveryAndTokensNeedAKnownTenant(t *testing.T) {
	srv := newServer(t)
	srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"s"}})
	resp, err := client(srv).Get(srv.Issuer("contoso") + "/.well-known/openid-configuration")
	if a := decode(t, resp, err); a.status != http.StatusOK || a.body["issuer"] != srv.Issuer("contoso") {
		t.Fatalf("discovery of the app's tenant: %d %v", a.status, a.body)
	}
	resp, err = client(srv).Get(srv.Issuer("fabrikam") + "/.well-known/openid-configuration")
	decode(t, resp, err).want(t, http.StatusBadRequest, "invalid_tenant", 90002)
	a := post(t, srv, "fabrikam", withSecret("app", "s", graph))
	a.want(t, http.StatusBadRequest, "invalid_request", 90002)
	if d, _ := a.body["error_description"].(string); !strings.Contains(d, "Tenant 'fabrikam' not found") {
		t.Errorf("description: %s", d)
	}
	post(t, srv, "contoso", withSecret("app", "s", graph)).ok(t)
}

func TestAnAppIsKnownOnlyInItsTenant(t *testing.T) {
	srv := newServer(t)
	srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"s"}})
	srv.AddApp(entraserver.App{ClientID: "other", Tenant: "fabrikam", Secrets: []string{"s"}})
	a := post(t, srv, "fabrikam", withSecret("app", "s", graph))
	a.want(t, http.StatusBadRequest, "unauthorized_client", 700016)
	if d, _ := a.body["error_description"].(string); !strings.Contains(d, "Application with identifier 'app' was not found in the directory 'fabrikam'") {
		t.Errorf("description: %s", d)
	}
	post(t, srv, "contoso", withSecret("other", "s", graph)).want(t, http.StatusBadRequest, "unauthorized_client", 700016)
	post(t, srv, "fabrikam", withSecret("other", "s", graph)).ok(t)
}

func TestFaultsApplyOnlyToAuthenticatedCalls(t *testing.T) {
	srv := newServer(t)
	srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"s"}})
	srv.InjectFaults(entraserver.Fault{Status: http.StatusServiceUnavailable})
	post(t, srv, "contoso", withSecret("app", "wrong", graph)).want(t, http.StatusUnauthorized, "invalid_client", 7000215)
	post(t, srv, "contoso", withSecret("nobody", "s", graph)).want(t, http.StatusBadRequest, "unauthorized_client", 700016)
	post(t, srv, "fabrikam", withSecret("app", "s", graph)).want(t, http.StatusBadRequest, "invalid_request", 90002)
	post(t, srv, "contoso", withSecret("app", "s", "api://unknown/.default")).want(t, http.StatusBadRequest, "invalid_resource", 500011)
	// A fault that answers 200 still hands a token only to an authenticated client.
	post(t, srv, "contoso", withSecret("app", "s", graph)).want(t, http.StatusServiceUnavailable, "temporarily_unavailable", 90033)
	srv.InjectFaults(entraserver.Fault{Delay: time.Millisecond})
	post(t, srv, "contoso", withSecret("app", "wrong", graph)).want(t, http.StatusUnauthorized, "invalid_client", 7000215)
	post(t, srv, "contoso", withSecret("app", "s", graph)).ok(t)
}

func TestFaultsAnswerTheirOwnCodes(t *testing.T) {
	srv := newServer(t)
	srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"s"}})
	for _, tc := range []struct {
		status int
		code   string
		aadsts int
	}{
		{400, "invalid_request", 9002313},
		{401, "invalid_client", 50012},
		{403, "unauthorized_client", 7000112},
		{429, "temporarily_unavailable", 90055},
		{500, "temporarily_unavailable", 90033},
		{503, "temporarily_unavailable", 90033},
	} {
		srv.InjectFaults(entraserver.Fault{Status: tc.status})
		post(t, srv, "contoso", withSecret("app", "s", graph)).want(t, tc.status, tc.code, tc.aadsts)
	}
}

func TestOnlyResourcesOfTheTenantAreGranted(t *testing.T) {
	srv := newServer(t)
	srv.AddApp(entraserver.App{ClientID: "app", Secrets: []string{"s"}, IdentifierURIs: []string{"api://orders"}})
	srv.AddApp(entraserver.App{ClientID: "elsewhere", Tenant: "fabrikam"})
	srv.AddResource("contoso", "api://shared")
	for _, scope := range []string{graph, "https://management.azure.com//.default", "https://management.core.windows.net//.default",
		"api://app/.default", "app/.default", "api://orders/.default", "API://Orders/.default", "api://shared/.default"} {
		post(t, srv, "contoso", withSecret("app", "s", scope)).ok(t)
	}
	for _, scope := range []string{"api://unknown/.default", "api://elsewhere/.default", "https://vault.example/.default"} {
		a := post(t, srv, "contoso", withSecret("app", "s", scope))
		a.want(t, http.StatusBadRequest, "invalid_resource", 500011)
		if d, _ := a.body["error_description"].(string); !strings.Contains(d, "The resource principal named "+strings.TrimSuffix(scope, "/.default")+" was not found in the tenant named contoso") {
			t.Errorf("description: %s", d)
		}
	}
}

// signer signs assertions with a key, naming cert by thumbprint and
// optionally sending chain as x5c.
type signer struct {
	key   crypto.Signer
	cert  *x509.Certificate
	chain []*x509.Certificate
}

func (s signer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	x5t := sha1.Sum(s.cert.Raw) //nolint:gosec // thumbprint
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("x5t", base64.RawURLEncoding.EncodeToString(x5t[:]))
	if s.chain != nil {
		var x5c []string
		for _, c := range s.chain {
			x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
		}
		opts = opts.WithHeader("x5c", x5c)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	a, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// claims are valid assertion claims for clientID at srv's contoso tenant.
func claims(srv *entraserver.Server, clientID string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": clientID, "sub": clientID, "aud": srv.TokenURL("contoso"),
		"jti": rand.Text(),
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix()}
}

func TestAssertionsNeedEveryRequiredClaim(t *testing.T) {
	srv := newServer(t)
	key := testcert.RSA(t, 2048)
	cert := testcert.SelfSigned(t, key, "app")
	srv.AddApp(entraserver.App{ClientID: "app", Certificates: []*x509.Certificate{cert}})
	s := signer{key: key, cert: cert}
	now := time.Now()
	for _, tc := range []struct {
		name   string
		edit   func(map[string]any)
		aadsts int
	}{
		{"no jti", func(c map[string]any) { delete(c, "jti") }, 50027},
		{"no nbf", func(c map[string]any) { delete(c, "nbf") }, 50027},
		{"no exp", func(c map[string]any) { delete(c, "exp") }, 50027},
		{"no aud", func(c map[string]any) { delete(c, "aud") }, 50027},
		{"no iss", func(c map[string]any) { delete(c, "iss") }, 50027},
		{"no sub", func(c map[string]any) { delete(c, "sub") }, 50027},
		// An issuer other than the client is read as a federated token.
		{"another issuer", func(c map[string]any) { c["iss"] = "other" }, 700211},
		{"another subject", func(c map[string]any) { c["sub"] = "other" }, 700021},
		{"another audience", func(c map[string]any) { c["aud"] = srv.URL + "/fabrikam/oauth2/v2.0/token" }, 700023},
		{"expired", func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }, 700024},
		{"not yet valid", func(c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() }, 700024},
		{"valid for too long", func(c map[string]any) { c["exp"] = now.Add(48 * time.Hour).Unix() }, 700024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claims(srv, "app")
			tc.edit(c)
			status, code := http.StatusUnauthorized, "invalid_client"
			if tc.aadsts == 700211 {
				status, code = http.StatusBadRequest, "invalid_request"
			}
			post(t, srv, "contoso", withAssertion("app", s.sign(t, c), graph)).want(t, status, code, tc.aadsts)
		})
	}
	a := s.sign(t, claims(srv, "app"))
	post(t, srv, "contoso", withAssertion("app", a, graph)).ok(t)
	post(t, srv, "contoso", withAssertion("app", a, graph)).want(t, http.StatusUnauthorized, "invalid_client", 50012)
}

func TestSubjectNameAndIssuerNeedsTheWholeChain(t *testing.T) {
	srv := newServer(t)
	root, err := testcert.NewCA("test root CA")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.Intermediate("test issuing CA")
	if err != nil {
		t.Fatal(err)
	}
	key := testcert.RSA(t, 2048)
	leaf, err := inter.Client(key, "sni-app.contoso.example")
	if err != nil {
		t.Fatal(err)
	}
	strangerCA, err := testcert.NewCA("test root CA")
	if err != nil {
		t.Fatal(err)
	}
	strangerInter, _ := strangerCA.Intermediate("test issuing CA")
	stranger, _ := strangerInter.Client(key, "sni-app.contoso.example")
	otherName, _ := inter.Client(key, "other.contoso.example")
	srv.AddApp(entraserver.App{ClientID: "app", TrustedSubjects: []entraserver.TrustedSubject{{CA: root.Cert, Subject: "CN=sni-app.contoso.example"}}})
	for _, tc := range []struct {
		name   string
		s      signer
		aadsts int
	}{
		{"leaf and intermediate", signer{key: key, cert: leaf, chain: []*x509.Certificate{leaf, inter.Cert}}, 0},
		{"leaf, intermediate and root", signer{key: key, cert: leaf, chain: []*x509.Certificate{leaf, inter.Cert, root.Cert}}, 0},
		{"without the intermediate", signer{key: key, cert: leaf, chain: []*x509.Certificate{leaf}}, 700027},
		{"without x5c", signer{key: key, cert: leaf}, 700027},
		{"intermediate first", signer{key: key, cert: leaf, chain: []*x509.Certificate{inter.Cert, leaf}}, 700027},
		{"the same names under another root", signer{key: key, cert: stranger, chain: []*x509.Certificate{stranger, strangerInter.Cert}}, 700027},
		{"another subject under the trusted root", signer{key: key, cert: otherName, chain: []*x509.Certificate{otherName, inter.Cert}}, 700027},
		{"a thumbprint naming another certificate", signer{key: key, cert: otherName, chain: []*x509.Certificate{leaf, inter.Cert}}, 700027},
		{"signed by another key", signer{key: testcert.RSA(t, 2048), cert: leaf, chain: []*x509.Certificate{leaf, inter.Cert}}, 700027},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, srv, "contoso", withAssertion("app", tc.s.sign(t, claims(srv, "app")), graph))
			if tc.aadsts == 0 {
				a.ok(t)
				return
			}
			a.want(t, http.StatusUnauthorized, "invalid_client", tc.aadsts)
		})
	}
}
