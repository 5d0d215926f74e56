// Package entraserver is a fake Microsoft Entra ID token service for tests.
//
// It speaks the protocol the real MSAL Go client uses, unchanged: tenant
// discovery at /{tenant}/v2.0/.well-known/openid-configuration and the
// client credentials grant at /{tenant}/oauth2/v2.0/token, over TLS with its
// own CA. Errors have Entra's JSON shape and AADSTS codes. Where Entra's
// public code list has no specific code for a check (a missing required
// assertion claim, jti replay), the generic AADSTS50027 (invalid JWT) or
// AADSTS50012 (authentication failed) is used.
//
// It is as strict as Entra where a lenient fake would hide a client bug:
// apps live in a tenant, and other tenants neither know them nor answer
// discovery; a client authenticates before any injected fault applies; a
// client assertion needs aud, exp, iss, jti, nbf and sub; a .default scope
// must name a resource known in the tenant; and an app may trust a CA and a
// subject name instead of a thumbprint, which needs the whole chain in x5c.
package entraserver

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// DefaultTenant is the tenant of an App that names none.
const DefaultTenant = "contoso"

// App is a registered application.
type App struct {
	ClientID string
	// Tenant is where the app is registered; empty means DefaultTenant.
	Tenant string
	// IdentifierURIs are extra application ID URIs under which the app is a
	// resource; api://<ClientID> and the bare ClientID always are.
	IdentifierURIs []string
	Secrets        []string
	// Certificates are trusted by thumbprint (x5t or x5t#S256).
	Certificates []*x509.Certificate
	// TrustedSubjects are subject name and issuer (SNI) trusts: a
	// certificate with that subject issued under that CA, proven by the
	// whole chain in the assertion's x5c header.
	TrustedSubjects []TrustedSubject
	// RequireX5C asks for the certificate chain in the assertion header, as
	// Entra does for subject name + issuer authentication.
	RequireX5C bool
	// ExpiresIn is the token lifetime in seconds (default 3599).
	ExpiresIn int
	// RefreshIn is Entra's refresh hint in seconds; 0 sends none.
	RefreshIn int
	// Federated are trusted external issuers (workload identity federation).
	Federated []FederatedCredential
}

// TrustedSubject trusts any certificate with Subject (its distinguished
// name as x509.Name.String writes it, e.g. "CN=app.contoso.com") that
// chains up to CA.
type TrustedSubject struct {
	CA      *x509.Certificate
	Subject string
}

// firstParty are the resources every tenant has: Microsoft Graph and Azure
// Resource Manager, under their application ID URIs and IDs.
var firstParty = []string{
	"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000",
	"https://management.azure.com", "https://management.core.windows.net", "797f4846-ba00-4fd7-ba43-dac1f8f63013",
}

// Fault replaces the normal answer of the next authenticated token call.
type Fault struct {
	Status     int           // HTTP status; 0 means 200
	RetryAfter string        // Retry-After header value
	Delay      time.Duration // wait before answering
	// Body is sent as is; empty gives an Entra error JSON for Status >= 400
	// and a normal token answer otherwise (useful with Delay).
	Body     string
	Location string // Location header, for redirects
	// ClientID limits the fault to that client's calls; empty means any call.
	ClientID string
}

// AssertionInfo describes the last client assertion a client presented.
type AssertionInfo struct {
	Algorithm string
	KeyID     string
	X5T       bool
	X5TS256   bool
	X5C       bool
	Audience  []string
}

// Server is the fake token service. All methods are safe for concurrent use.
type Server struct {
	// URL is https://127.0.0.1:<port>.
	URL string

	srv *httptest.Server
	ca  *x509.Certificate

	mu             sync.Mutex
	clock          clock.PassiveClock
	apps           map[string]map[string]App // tenant → client ID → app
	resources      map[string][]string       // tenant → extra resource URIs
	faults         []Fault
	tokenCalls     map[string]int
	totalCalls     int
	discoveryCalls int
	jtis           map[string]time.Time
	assertions     map[string]AssertionInfo
	issued         []string
	forms          map[string]url.Values
	echo           bool
	editDiscovery  func(tenant string, doc map[string]any)
	federatedCalls map[string]int
}

// New starts a server; Close it when done.
func New() *Server {
	s := &Server{
		clock:      clock.RealClock{},
		apps:       map[string]map[string]App{},
		resources:  map[string][]string{},
		tokenCalls: map[string]int{},
		jtis:       map[string]time.Time{},
		assertions: map[string]AssertionInfo{},
		forms:      map[string]url.Values{},

		federatedCalls: map[string]int{},
	}
	ca, leaf := newTLSMaterial()
	s.ca = ca
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = leaf
	s.srv.StartTLS()
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// CA is the certificate authority of the server's TLS certificate.
func (s *Server) CA() *x509.Certificate { return s.ca }

// CertPool holds CA only.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca)
	return p
}

// Host is host:port of URL (127.0.0.1:<port>).
func (s *Server) Host() string { return strings.TrimPrefix(s.URL, "https://") }

// Port is the listening port.
func (s *Server) Port() string {
	_, port, _ := net.SplitHostPort(s.Host())
	return port
}

// LocalhostURL reaches the same server under the name localhost, which
// counts as another host for consent checks.
func (s *Server) LocalhostURL() string { return "https://localhost:" + s.Port() }

// Authority is the MSAL authority for tenant.
func (s *Server) Authority(tenant string) string { return s.URL + "/" + tenant }

// Issuer is the OIDC issuer (Entra v2) for tenant.
func (s *Server) Issuer(tenant string) string { return s.URL + "/" + tenant + "/v2.0" }

// TokenURL is the token endpoint for tenant.
func (s *Server) TokenURL(tenant string) string { return s.URL + "/" + tenant + "/oauth2/v2.0/token" }

// SetClock sets the clock used to check assertion times.
func (s *Server) SetClock(c clock.PassiveClock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = c
}

// AddApp registers or replaces an application in its tenant, creating the
// tenant if needed.
func (s *Server) AddApp(a App) {
	if a.Tenant == "" {
		a.Tenant = DefaultTenant
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps[a.Tenant] == nil {
		s.apps[a.Tenant] = map[string]App{}
	}
	s.apps[a.Tenant][a.ClientID] = a
}

// AddTenant creates an empty tenant.
func (s *Server) AddTenant(tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps[tenant] == nil {
		s.apps[tenant] = map[string]App{}
	}
}

// AddResource makes uri a resource of tenant (a service principal of an
// app registered elsewhere), creating the tenant if needed.
func (s *Server) AddResource(tenant, uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps[tenant] == nil {
		s.apps[tenant] = map[string]App{}
	}
	s.resources[tenant] = append(s.resources[tenant], uri)
}

// app looks up a tenant and an app in it.
func (s *Server) app(tenant, clientID string) (app App, tenantKnown, appKnown bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	apps, tenantKnown := s.apps[tenant]
	app, appKnown = apps[clientID]
	return app, tenantKnown, appKnown
}

func (s *Server) tenantKnown(tenant string) bool {
	_, known, _ := s.app(tenant, "")
	return known
}

// resourceKnown reports whether resource (a .default scope without its
// suffix) names a resource of tenant. Like Entra it ignores case and a
// trailing slash (ARM's ID URI is https://management.azure.com/).
func (s *Server) resourceKnown(tenant, resource string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := append([]string(nil), firstParty...)
	known = append(known, s.resources[tenant]...)
	for id, a := range s.apps[tenant] {
		known = append(known, id, "api://"+id)
		known = append(known, a.IdentifierURIs...)
	}
	want := strings.TrimSuffix(resource, "/")
	for _, k := range known {
		if strings.EqualFold(strings.TrimSuffix(k, "/"), want) {
			return true
		}
	}
	return false
}

// InjectFaults queues answers for the next authenticated token calls, one
// each: a fault never spares a client from authenticating.
func (s *Server) InjectFaults(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// EchoCredentials makes error descriptions repeat the client secret or
// assertion received, to prove clients never show what a server echoes.
func (s *Server) EchoCredentials(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echo = on
}

// EditDiscovery lets a test change discovery documents before they are sent.
func (s *Server) EditDiscovery(f func(tenant string, doc map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.editDiscovery = f
}

// TokenCalls counts token requests that named clientID.
func (s *Server) TokenCalls(clientID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls[clientID]
}

// TotalTokenCalls counts all token requests.
func (s *Server) TotalTokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.totalCalls
}

// DiscoveryCalls counts discovery document requests.
func (s *Server) DiscoveryCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discoveryCalls
}

// LastAssertion describes the last assertion clientID presented.
func (s *Server) LastAssertion(clientID string) (AssertionInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.assertions[clientID]
	return a, ok
}

// LastForm is the last token request form clientID sent, without
// client_secret and client_assertion.
func (s *Server) LastForm(clientID string) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := url.Values{}
	for k, v := range s.forms[clientID] {
		if k != "client_secret" && k != "client_assertion" {
			f[k] = append([]string(nil), v...)
		}
	}
	return f
}

// IssuedTokens lists every access token handed out.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known" && parts[3] == "openid-configuration":
		s.discovery(w, r, parts[0])
	case len(parts) == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "token":
		s.token(w, r, parts[0])
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request, tenant string) {
	s.mu.Lock()
	s.discoveryCalls++
	edit := s.editDiscovery
	s.mu.Unlock()
	if !s.tenantKnown(tenant) {
		s.writeError(w, r, tenantNotFound("invalid_tenant", tenant))
		return
	}
	base := "https://" + r.Host + "/" + tenant
	doc := map[string]any{
		"issuer":                                base + "/v2.0",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"jwks_uri":                              "https://" + r.Host + "/" + tenant + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "microsoftonline.com",
	}
	if edit != nil {
		edit(tenant, doc)
	}
	writeJSON(w, http.StatusOK, doc)
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// clientAuth reads client_id and secret from the form or, URL-decoded per
// RFC 6749 §2.3.1, from the Basic header.
func clientAuth(r *http.Request) (id, secret string, basic bool, ok bool) {
	id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	u, p, has := r.BasicAuth()
	if !has {
		return id, secret, false, true
	}
	du, err1 := url.QueryUnescape(u)
	dp, err2 := url.QueryUnescape(p)
	if err1 != nil || err2 != nil || secret != "" || (id != "" && id != du) {
		return du, dp, true, false
	}
	return du, dp, true, true
}
