// Package awssts is a fake AWS Security Token Service for tests.
//
// It speaks STS's Query API as the AWS SDKs use it, unchanged: form POST (or
// GET) with Action and Version=2011-06-15, XML answers in STS's namespace and
// STS's ErrorResponse with its codes and HTTP statuses, over TLS with its own
// CA. It serves AssumeRoleWithWebIdentity, which is unsigned, and
// GetCallerIdentity, which must carry a SigV4 signature made with
// credentials it issued, so a test can prove that what a consumer loaded
// signs requests AWS would accept.
//
// It is as strict as STS where a lenient fake would hide a client bug: the
// web identity token must verify against its issuer's keys (registered as an
// IAM OIDC identity provider), be unexpired and carry an allowed audience;
// the role must trust the issuer and the token's subject; parameters are
// validated with STS's constraints (session name pattern, 900–43200 s and
// no more than the role's MaxSessionDuration); and a signed request is
// checked against the issued secret key, session token and expiry.
//
// Left out: session tags, SourceIdentity, PackedPolicySize, policy
// evaluation (a session policy is only checked to be JSON), presigned
// (query string) SigV4, and the IAM provider's certificate thumbprints.
// Provider in the answer is the IAM OIDC provider's ARN, as answers for
// OIDC providers show it (the API reference says "the value of the iss
// field"); clients should not depend on either.
package awssts

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// DefaultRegion is the region a Server answers for unless told otherwise.
const DefaultRegion = "us-east-1"

// Provider is an IAM OpenID Connect identity provider: an issuer whose
// tokens STS accepts, and where its keys come from.
type Provider struct {
	// Issuer is the provider URL, compared with the token's iss as is.
	Issuer string
	Keys   KeySource
}

// Role is an IAM role whose trust policy lets one OIDC provider's tokens
// assume it (Action sts:AssumeRoleWithWebIdentity).
type Role struct {
	ARN    string // arn:aws:iam::<account>:role/<path/><name>
	Issuer string // the trusted provider
	// Audiences are accepted aud values (the provider's client ID list and
	// the trust policy's <issuer>:aud condition); one must be in the token.
	Audiences []string
	// Subjects are StringLike patterns (* and ?) on the token's sub; one
	// must match, so a role without any trusts no token (the fake always
	// wants the sub condition a safe trust policy has).
	Subjects []string
	// MaxSessionDuration is IAM's 1–12 h bound on DurationSeconds; 0 is 1 h.
	MaxSessionDuration time.Duration
}

// Credentials are temporary credentials as STS issues them.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// Call records one request.
type Call struct {
	Action          string
	RoleARN         string
	RoleSessionName string
	DurationSeconds string
	// Signed says whether the request carried an Authorization header.
	Signed bool
	// ErrorCode is the code answered, empty on success.
	ErrorCode string
}

// session is what STS remembers of issued credentials.
type session struct {
	creds         Credentials
	account       string
	assumedARN    string
	assumedRoleID string
}

// Server is the fake STS. All methods are safe for concurrent use.
type Server struct {
	// URL is https://127.0.0.1:<port>, the endpoint to give the SDK.
	URL string
	// Region is the signing region of SigV4 requests; set it before use.
	Region string

	srv *httptest.Server
	ca  *x509.Certificate

	mu             sync.Mutex
	clock          clock.PassiveClock
	providers      map[string]Provider
	roles          map[string]Role
	roleIDs        map[string]string
	sessions       map[string]session
	issued         []string // access key IDs, oldest first
	faults         []*Error
	regionDisabled bool
	calls          []Call
}

// New starts a server for DefaultRegion; Close it when done.
func New() *Server {
	s := &Server{
		Region:    DefaultRegion,
		clock:     clock.RealClock{},
		providers: map[string]Provider{},
		roles:     map[string]Role{},
		roleIDs:   map[string]string{},
		sessions:  map[string]session{},
	}
	ca, err := testcert.NewCA("awssts test CA")
	if err != nil {
		panic(err)
	}
	leaf, err := ca.Server("localhost", "127.0.0.1", "::1")
	if err != nil {
		panic(err)
	}
	s.ca = ca.Cert
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}}
	s.srv.StartTLS()
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// CA is the certificate authority of the server's TLS certificate.
func (s *Server) CA() *x509.Certificate { return s.ca }

// CAPEM is CA in PEM, for AWS_CA_BUNDLE.
func (s *Server) CAPEM() []byte { return testcert.CertPEM(s.ca) }

// CertPool holds CA only.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca)
	return p
}

// SetClock sets the clock that checks token times and credential expiry.
func (s *Server) SetClock(c clock.PassiveClock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = c
}

func (s *Server) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock.Now()
}

// AddProvider registers or replaces an OIDC identity provider.
func (s *Server) AddProvider(p Provider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.providers[p.Issuer] = p
}

// AddRole registers or replaces a role. It panics on an ARN or a
// MaxSessionDuration IAM would refuse: that is a bug in the test.
func (s *Server) AddRole(r Role) {
	if _, _, ok := parseRoleARN(r.ARN); !ok {
		panic("awssts: not a role ARN: " + r.ARN)
	}
	if r.MaxSessionDuration == 0 {
		r.MaxSessionDuration = time.Hour
	}
	if r.MaxSessionDuration < time.Hour || r.MaxSessionDuration > 12*time.Hour {
		panic(fmt.Sprintf("awssts: MaxSessionDuration %s is outside IAM's 1h–12h", r.MaxSessionDuration))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[r.ARN] = r
	if s.roleIDs[r.ARN] == "" {
		s.roleIDs[r.ARN] = "AROA" + randomKeyChars(17)
	}
}

// DisableRegion makes every call answer RegionDisabledException (on) or
// serves again (off).
func (s *Server) DisableRegion(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regionDisabled = on
}

// InjectFaults queues answers for the next AssumeRoleWithWebIdentity calls
// that pass parameter validation, one each.
func (s *Server) InjectFaults(e ...*Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, e...)
}

func (s *Server) nextFault() *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return nil
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f
}

// Calls lists every request received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// AssumeCalls counts AssumeRoleWithWebIdentity requests naming roleARN,
// answered or refused.
func (s *Server) AssumeCalls(roleARN string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Action == "AssumeRoleWithWebIdentity" && c.RoleARN == roleARN {
			n++
		}
	}
	return n
}

// Issued lists the credentials handed out, oldest first.
func (s *Server) Issued() []Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Credentials, 0, len(s.issued))
	for _, id := range s.issued {
		out = append(out, s.sessions[id].creds)
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	call := Call{Signed: r.Header.Get("Authorization") != ""}
	e := s.dispatch(w, r, requestID, &call)
	if e != nil {
		call.ErrorCode = e.Code
		writeError(w, requestID, e)
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
}

// dispatch reads the Query API parameters and runs the action; it returns
// the error to answer, or nil once it has answered.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, requestID string, call *Call) *Error {
	if r.URL.Path != "/" {
		return sender(http.StatusNotFound, "UnknownOperationException", "Unknown path %s", r.URL.Path)
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return sender(http.StatusMethodNotAllowed, "InvalidAction", "%s is not supported", r.Method)
	}
	body, err := readBody(r)
	if err != nil {
		return sender(http.StatusBadRequest, "MalformedQueryString", "The request body could not be read.")
	}
	params, err := queryParams(r, body)
	if err != nil {
		return sender(http.StatusBadRequest, "MalformedQueryString", "The request could not be parsed.")
	}
	call.Action = params.Get("Action")
	if params.Get("Version") != "2011-06-15" {
		return sender(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", call.Action, params.Get("Version"))
	}
	s.mu.Lock()
	disabled := s.regionDisabled
	s.mu.Unlock()
	switch call.Action {
	case "AssumeRoleWithWebIdentity":
		call.RoleARN, call.RoleSessionName, call.DurationSeconds = params.Get("RoleArn"), params.Get("RoleSessionName"), params.Get("DurationSeconds")
		if call.Signed {
			// Unsigned is allowed, not required: a signature is checked.
			if _, e := s.authenticate(r, body, "sts"); e != nil {
				return e
			}
		}
		return s.assumeRoleWithWebIdentity(w, r.Context(), requestID, params, disabled)
	case "GetCallerIdentity":
		caller, e := s.authenticate(r, body, "sts")
		if e != nil {
			return e
		}
		if disabled {
			return RegionDisabled(caller.Account, s.Region)
		}
		writeCallerIdentity(w, requestID, caller)
		return nil
	default:
		return sender(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version 2011-06-15", call.Action)
	}
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// randomKeyChars draws n characters of the alphabet of AWS key IDs.
func randomKeyChars(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return sb.String()
}
