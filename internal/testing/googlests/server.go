// Package googlests is a fake Google Security Token Service and IAM Service
// Account Credentials API for tests of workload identity federation.
//
// It speaks the protocol golang.org/x/oauth2/google's external-account
// credentials use, unchanged: the token exchange at POST /v1/token
// (sts.googleapis.com) and POST
// /v1/projects/-/serviceAccounts/{email}:generateAccessToken
// (iamcredentials.googleapis.com), over TLS with its own CA. A third
// endpoint, GET /v1/whoami, stands for any Google API: it accepts only a
// live access token with the cloud-platform scope.
//
// It checks what Google checks: the audience names a registered
// workload identity pool provider; the subject token is a JWT from the
// provider's issuer, signed by one of the issuer's keys (uploaded JWKS or
// OIDC discovery), for one of the provider's allowed audiences, unexpired,
// and passing the provider's attribute condition; the federated token's
// lifetime never outlives the subject token; impersonation needs the
// principal to hold roles/iam.workloadIdentityUser on the service account,
// scopes, and a lifetime of at most 3600 s (43200 s where the organisation
// allows it).
//
// STS refusals have the OAuth shape {"error","error_description"} with
// status 400, as Google sends them: invalid_request (malformed request or
// audience), invalid_target (unknown, disabled or workforce provider),
// invalid_grant (subject token refused) and unauthorized_client (attribute
// condition). IAM and the whoami API answer Google's
// {"error":{"code","message","status"}}: 401 UNAUTHENTICATED for a missing,
// unknown or expired bearer token, 403 PERMISSION_DENIED for a missing role
// or scope, 404 NOT_FOUND for an unknown service account, 400
// INVALID_ARGUMENT for a bad body. Messages quote Google's where they are
// public; the others are marked "wording not public" in the code.
//
// Left out: attribute mappings other than google.subject=assertion.sub
// (the condition is a glob on sub), delegation chains, workforce pools,
// SAML and AWS subject tokens, and clock skew leeway on exp.
package googlests

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// CloudPlatformScope is the scope the federated token carries and the
// whoami API requires.
const CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// Token types of RFC 8693 that Google STS accepts for OIDC providers.
const (
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	GrantTypeExchange    = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Endpoint names an endpoint for call counts and faults.
type Endpoint string

// The server's endpoints.
const (
	STS                 Endpoint = "sts"
	GenerateAccessToken Endpoint = "generateAccessToken"
	API                 Endpoint = "api"
)

// Fault replaces the normal answer of the next call to Endpoint.
type Fault struct {
	Endpoint Endpoint
	Status   int           // HTTP status; 0 means 500
	Delay    time.Duration // wait before answering
	// Error is the OAuth error code (STS, 4xx) or the Google status
	// (e.g. UNAVAILABLE); empty picks one from Status.
	Error   string
	Message string
	// Body is sent as is instead of an error document.
	Body string
}

// ServiceAccount is a Google service account that principals may impersonate.
type ServiceAccount struct {
	Email string
	// WorkloadIdentityUsers are the members bound to
	// roles/iam.workloadIdentityUser on the account, as IAM writes them:
	// principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/subject/S,
	// principalSet://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/*,
	// or serviceAccount:EMAIL.
	WorkloadIdentityUsers []string
	// ExtendedLifetime mirrors the organisation policy
	// constraints/iam.allowServiceAccountCredentialLifetimeExtension: tokens
	// up to 12 h instead of 1 h.
	ExtendedLifetime bool
}

// token is an access token the server issued.
type token struct {
	principal string // principal://… for federated, serviceAccount:… for impersonated
	federated bool
	scopes    []string
	expiry    time.Time
}

// Server is the fake STS and IAM Credentials service. All methods are safe
// for concurrent use.
type Server struct {
	// URL is https://127.0.0.1:<port>.
	URL string

	srv *httptest.Server
	ca  *testcert.CA

	mu              sync.Mutex
	clock           clock.PassiveClock
	providers       map[string]Provider // audience → provider
	accounts        map[string]ServiceAccount
	tokens          map[string]token
	calls           map[Endpoint]int
	faults          []Fault
	federatedTTL    time.Duration
	saTTLCap        time.Duration
	acceptFederated bool
	lastExchange    map[string]string
	echo            bool
}

// New starts a server; Close it when done.
func New() *Server {
	ca, err := testcert.NewCA("googlests test CA")
	if err != nil {
		panic(err)
	}
	leaf, err := ca.Server("localhost", "127.0.0.1", "::1")
	if err != nil {
		panic(err)
	}
	s := &Server{
		ca:           ca,
		clock:        clock.RealClock{},
		providers:    map[string]Provider{},
		accounts:     map[string]ServiceAccount{},
		tokens:       map[string]token{},
		calls:        map[Endpoint]int{},
		federatedTTL: time.Hour,
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = tlsConfig(leaf)
	s.srv.StartTLS()
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// CA is the certificate authority of the server's TLS certificate.
func (s *Server) CA() *x509.Certificate { return s.ca.Cert }

// CertPool holds CA only.
func (s *Server) CertPool() *x509.CertPool { return s.ca.Pool() }

// Client is an HTTP client that trusts the server.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(s.CertPool())}}
}

// TokenURL is the STS token endpoint (external_account's token_url).
func (s *Server) TokenURL() string { return s.URL + "/v1/token" }

// ImpersonationURL is the generateAccessToken endpoint for email
// (external_account's service_account_impersonation_url).
func (s *Server) ImpersonationURL(email string) string {
	return s.URL + "/v1/projects/-/serviceAccounts/" + email + ":generateAccessToken"
}

// APIURL is the whoami endpoint that stands for a Google API.
func (s *Server) APIURL() string { return s.URL + "/v1/whoami" }

// SetClock sets the clock for token times.
func (s *Server) SetClock(c clock.PassiveClock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = c
}

// SetLifetimes sets the federated token lifetime (default 1 h; the subject
// token's expiry still caps it) and a cap on impersonated tokens (0: the
// requested lifetime), e.g. 15 minutes as some Google services hand out.
func (s *Server) SetLifetimes(federated, serviceAccountCap time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.federatedTTL = federated
	s.saTTLCap = serviceAccountCap
}

// AcceptFederatedTokens lets the whoami API accept federated tokens, as
// Google APIs that support direct resource access do.
func (s *Server) AcceptFederatedTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acceptFederated = on
}

// EchoCredentials makes refusals repeat the subject token (STS) or the
// bearer token (IAM, API) received, as a hostile or careless token service
// might, to prove clients never show what a server echoes.
func (s *Server) EchoCredentials(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echo = on
}

func (s *Server) echoing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.echo
}

// Host is host:port of URL (127.0.0.1:<port>).
func (s *Server) Host() string { return strings.TrimPrefix(s.URL, "https://") }

// LocalhostURL reaches the same server under the name localhost, which
// counts as another host for consent checks.
func (s *Server) LocalhostURL() string {
	_, port, _ := net.SplitHostPort(s.Host())
	return "https://localhost:" + port
}

// AddServiceAccount registers or replaces a service account.
func (s *Server) AddServiceAccount(a ServiceAccount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[a.Email] = a
}

// InjectFaults queues answers for the next calls to their endpoints, one each.
func (s *Server) InjectFaults(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// Calls counts requests to e, including refused ones.
func (s *Server) Calls(e Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[e]
}

// LastExchange is the last STS request's parameters without subject_token.
func (s *Server) LastExchange() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.lastExchange {
		out[k] = v
	}
	return out
}

// IssuedTokens lists every access token handed out, expired ones too.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.tokens))
	for t := range s.tokens {
		out = append(out, t)
	}
	return out
}

func (s *Server) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock.Now()
}

// issue records and returns a new opaque access token. Google's start
// with ya29.; federated ones are longer but the prefix is the same.
func (s *Server) issue(t token) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := "ya29." + base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[v] = t
	return v
}

// lookup finds a live token.
func (s *Server) lookup(v string) (token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[v]
	if !ok || !s.clock.Now().Before(t.expiry) {
		return token{}, false
	}
	return t, true
}

// count records a call and pops the endpoint's next fault, if any.
func (s *Server) count(e Endpoint) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[e]++
	for i, f := range s.faults {
		if f.Endpoint == e {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			return &f
		}
	}
	return nil
}

// pause waits d or until the client gives up.
func pause(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/v1/token":
		s.exchange(w, r)
	case strings.HasPrefix(p, "/v1/projects/") && strings.HasSuffix(p, ":generateAccessToken"):
		s.generateAccessToken(w, r)
	case p == "/v1/whoami":
		s.whoami(w, r)
	default:
		writeGoogleError(w, http.StatusNotFound, "", "The requested URL "+p+" was not found on this server.")
	}
}
