package tokensource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google/externalaccount"

	"github.com/token-operator/token-operator/internal/credential"
)

// Google workload identity federation defaults.
const (
	DefaultGoogleSTSURL            = "https://sts.googleapis.com/v1/token"
	DefaultGoogleIAMCredentialsURL = "https://iamcredentials.googleapis.com"
	// GoogleCloudPlatformScope is the scope asked for when a request names none.
	GoogleCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
	minGoogleLifetime        = 600
	maxGoogleLifetime        = 43200
)

// GoogleFederation asks Google for an access token as external_account
// credentials do: Request.Credential (an Assertion, the subject token) is
// exchanged at the Security Token Service for a federated token and, when
// ServiceAccountEmail is set, that token impersonates the service account
// (IAM Credentials generateAccessToken). Request.Scopes default to
// GoogleCloudPlatformScope.
type GoogleFederation struct {
	// Audience is the workload identity provider's full resource name,
	// //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/X.
	Audience string
	// STSURL defaults to DefaultGoogleSTSURL.
	STSURL string
	// IAMCredentialsURL is the IAM Credentials base URL, used only with
	// ServiceAccountEmail; default DefaultGoogleIAMCredentialsURL.
	IAMCredentialsURL   string
	ServiceAccountEmail string
	// LifetimeSeconds is asked of generateAccessToken; 0 means Google's
	// default of an hour.
	LifetimeSeconds int32
}

var (
	googleAudience = regexp.MustCompile(`^//iam\.googleapis\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]+/providers/[a-z0-9-]+$`)
	googleEmail    = regexp.MustCompile(`^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+$`)
)

func (g *GoogleFederation) stsURL() string {
	if g.STSURL == "" {
		return DefaultGoogleSTSURL
	}
	return g.STSURL
}

// impersonationURL is "" without impersonation.
func (g *GoogleFederation) impersonationURL() string {
	if g.ServiceAccountEmail == "" {
		return ""
	}
	base := g.IAMCredentialsURL
	if base == "" {
		base = DefaultGoogleIAMCredentialsURL
	}
	return strings.TrimRight(base, "/") + "/v1/projects/-/serviceAccounts/" + url.PathEscape(g.ServiceAccountEmail) + ":generateAccessToken"
}

// googleScopes are the requested scopes, or cloud-platform.
func googleScopes(r Request) []string {
	if len(r.Scopes) == 0 {
		return []string{GoogleCloudPlatformScope}
	}
	return r.Scopes
}

// googleGrant is workload identity federation through
// golang.org/x/oauth2/google/externalaccount, which builds both requests.
// The library flattens its errors into text holding the answer's body and
// computes the federated token's expiry with its own clock, so a recorder
// in the HTTP client keeps each answer for classification and timing.
type googleGrant struct{}

func (googleGrant) endpoints(r Request) []endpoint {
	g := r.Google
	eps := []endpoint{{"google.stsURL", g.stsURL()}}
	if u := g.impersonationURL(); u != "" {
		eps = append(eps, endpoint{"google.iamCredentialsURL", u})
	}
	return eps
}

func (googleGrant) keyParts(r Request) []string {
	g := r.Google
	return []string{"google", g.Audience, g.stsURL(), g.impersonationURL(), strconv.Itoa(int(g.LifetimeSeconds))}
}

func (gg googleGrant) validate(r Request) *ConfigError {
	return firstProblem(
		r.refuseNonGoogleFields,
		r.Google.check,
		func() *ConfigError { return r.checkEndpoints(gg) },
		func() *ConfigError { return oneScheme(gg.endpoints(r)) },
		r.checkSubjectCredential,
		func() *ConfigError { return r.checkScopes(nil) },
	)
}

// refuseNonGoogleFields: Google's STS takes no client, and nothing else
// picks the endpoint.
func (r Request) refuseNonGoogleFields() *ConfigError {
	switch {
	case r.Authority != "" || r.IssuerURL != "" || r.TokenURL != "":
		return &ConfigError{Field: "google", Message: "leave out authority, issuerURL and tokenURL: google names its endpoints"}
	case r.AzureRegion != "":
		return &ConfigError{Field: "azureRegion", Message: "only applies with authority"}
	case r.ClientID != "" || len(r.ExtraParameters) > 0 || r.Exchange != nil:
		return &ConfigError{Field: "google", Message: "leave out clientID, extraParameters and tokenExchange: workload identity federation uses none"}
	}
	return nil
}

func (g *GoogleFederation) check() *ConfigError {
	switch {
	case !googleAudience.MatchString(g.Audience):
		return &ConfigError{Field: "google.audience", Message: "must be a workload identity provider's full resource name, //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"}
	case g.ServiceAccountEmail != "" && (len(g.ServiceAccountEmail) > 320 || !googleEmail.MatchString(g.ServiceAccountEmail)):
		return &ConfigError{Field: "google.serviceAccountEmail", Message: "must be a service account's email address"}
	case g.ServiceAccountEmail == "" && (g.LifetimeSeconds != 0 || g.IAMCredentialsURL != ""):
		return &ConfigError{Field: "google.serviceAccountEmail", Message: "is required with tokenLifetimeSeconds or iamCredentialsURL: they apply to impersonation only"}
	case g.LifetimeSeconds != 0 && (g.LifetimeSeconds < minGoogleLifetime || g.LifetimeSeconds > maxGoogleLifetime):
		return &ConfigError{Field: "google.tokenLifetimeSeconds", Message: fmt.Sprintf("must be %d to %d", minGoogleLifetime, maxGoogleLifetime)}
	}
	return nil
}

// oneScheme: the engine's guard holds every request of a call to the first
// endpoint's scheme.
func oneScheme(eps []endpoint) *ConfigError {
	first, _ := url.Parse(eps[0].url)
	for _, ep := range eps[1:] {
		if u, _ := url.Parse(ep.url); u.Scheme != first.Scheme {
			return &ConfigError{Field: ep.field, Message: "must use the same URL scheme as " + eps[0].field}
		}
	}
	return nil
}

// checkSubjectCredential: the subject token comes from an assertion source
// (a ServiceAccount's token); there is no client to authenticate.
func (r Request) checkSubjectCredential() *ConfigError {
	if a, ok := r.Credential.(*credential.Assertion); !ok || a == nil || a.Provide == nil {
		return &ConfigError{Field: "credential", Message: "google takes a serviceAccount credential: its token is the subject token"}
	}
	return nil
}

func (googleGrant) fetch(ctx context.Context, c *call) (Token, error) {
	g := c.req.Google
	rec := &googleRecorder{base: c.e.client.Transport, st: c.st, clock: c.e.clock}
	rec.sts, _ = url.Parse(g.stsURL())
	client := *c.e.client
	client.Transport = rec
	scopes := googleScopes(c.req)
	cfg := externalaccount.Config{
		Audience:                       g.Audience,
		SubjectTokenType:               TokenTypeJWT,
		TokenURL:                       g.stsURL(),
		Scopes:                         scopes,
		SubjectTokenSupplier:           googleSubject{c},
		ServiceAccountImpersonationURL: g.impersonationURL(),
		ServiceAccountImpersonationLifetimeSeconds: int(g.LifetimeSeconds),
	}
	ts, err := externalaccount.NewTokenSource(context.WithValue(ctx, oauth2.HTTPClient, &client), cfg)
	if err != nil {
		return Token{}, &ConfigError{Field: "google", Message: "the external account configuration is not usable"}
	}
	ot, err := ts.Token()
	if err != nil {
		return Token{}, rec.failure()
	}
	return rec.token(ot, scopes)
}

// googleSubject hands the library the credential's token and records it as
// a secret; a failure is the engine's credential_unavailable.
type googleSubject struct{ c *call }

func (s googleSubject) SubjectToken(ctx context.Context, _ externalaccount.SupplierOptions) (string, error) {
	tok, err := s.c.req.Credential.(*credential.Assertion).Provide(ctx)
	if err == nil && tok == "" {
		err = errors.New("the service account token source returned nothing")
	}
	if err != nil {
		s.c.st.mu.Lock()
		s.c.st.assertionEr = err
		s.c.st.mu.Unlock()
		return "", err
	}
	s.c.st.addSecret(tok)
	return tok, nil
}

// googleRecorder sits between the library and the engine's guarded
// transport: it keeps the first refusal and the answers' timing, records
// the federated token as a secret before it is sent on, and follows no
// redirect (the library's impersonation client drops the engine's
// redirect rule).
type googleRecorder struct {
	base  http.RoundTripper
	st    *callState
	clock interface{ Now() time.Time }
	sts   *url.URL

	mu        sync.Mutex
	refused   *googleAnswer
	transport error
	stsAt     time.Time
	stsAnswer stsAnswer
	iamAt     time.Time
	iamDate   time.Time
}

// googleAnswer is an error answer of one step.
type googleAnswer struct {
	step   string // "sts" or "iam"
	status int
	header http.Header
	body   []byte
}

type stsAnswer struct {
	AccessToken string          `json:"access_token"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	Scope       string          `json:"scope"`
}

func (g *googleRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	step := "iam"
	if req.URL.Host == g.sts.Host && req.URL.Path == g.sts.Path {
		step = "sts"
	}
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		g.mu.Lock()
		if g.transport == nil {
			g.transport = &url.Error{Op: req.Method, URL: req.URL.String(), Err: err}
		}
		g.mu.Unlock()
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		_ = resp.Body.Close()
		return nil, g.st.fail(&Error{StatusCode: resp.StatusCode, Code: "redirect", Description: "the token service answered with a redirect, which is not followed"})
	}
	body, err := readBody(resp) // the guard caps it
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	now := g.clock.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		if g.refused == nil {
			g.refused = &googleAnswer{step: step, status: resp.StatusCode, header: resp.Header, body: body}
		}
	case step == "sts":
		var a stsAnswer
		_ = json.Unmarshal(body, &a)
		g.st.addSecret(a.AccessToken)
		g.stsAt, g.stsAnswer = now, a
	default:
		g.iamAt = now
		g.iamDate, _ = http.ParseTime(resp.Header.Get("Date"))
	}
	return resp, nil
}

// failure is what made the library fail: a refusal, a transport error, or
// an answer it could not read.
func (g *googleRecorder) failure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.refused != nil:
		return g.refused
	case g.transport != nil:
		return g.transport
	}
	return errGoogleUnread
}

// errGoogleUnread: the library failed on an answer it read, or before any
// (the subject token's source failing is the engine's to report).
var errGoogleUnread = errors.New("google: no usable answer")

func (a *googleAnswer) Error() string { return fmt.Sprintf("google %s answered %d", a.step, a.status) }

// token times the library's token by the engine's clock: the federated
// token by expires_in from when STS answered; an impersonated one by
// expireTime less the answer's Date, so a skewed clock on either side does
// not move the refresh.
func (g *googleRecorder) token(ot *oauth2.Token, requested []string) (Token, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := Token{AccessToken: ot.AccessToken, TokenType: "Bearer", Scopes: append([]string(nil), requested...)}
	switch {
	case !g.iamAt.IsZero():
		t.IssuedAt, t.ExpiresAt = g.iamAt, ot.Expiry
		if !g.iamDate.IsZero() {
			t.ExpiresAt = g.iamAt.Add(ot.Expiry.Sub(g.iamDate))
		}
	case !g.stsAt.IsZero():
		exp, ok := seconds(json.Number(strings.Trim(string(g.stsAnswer.ExpiresIn), `"`)))
		if !ok {
			return Token{}, errNoExpiry()
		}
		t.IssuedAt, t.ExpiresAt = g.stsAt, g.stsAt.Add(exp)
		if g.stsAnswer.Scope != "" {
			t.Scopes = grantedScopes(strings.Split(g.stsAnswer.Scope, " "), requested)
		}
	}
	if t.AccessToken == "" || !t.ExpiresAt.After(t.IssuedAt) {
		return Token{}, errNoExpiry()
	}
	return t, nil
}

// googleAPIError is Google's API error document; STS sends it for errors
// of its front end (5xx), IAM Credentials for every error.
type googleAPIError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

func (googleGrant) classify(e *Engine, err error, secrets []string) error {
	var a *googleAnswer
	if errors.As(err, &a) {
		return googleError(a, e.clock.Now(), secrets)
	}
	if ne, ok := e.networkError(err, secrets); ok {
		return ne
	}
	return &Error{Retryable: true, StatusCode: http.StatusOK, Code: "malformed_response", Description: "the answer of Google's token service could not be read"}
}

// googleError classifies a refusal. STS refusals are OAuth errors
// (invalid_grant, invalid_target, unauthorized_client, invalid_request),
// terminal as 400s; Google API errors keep their status (PERMISSION_DENIED,
// NOT_FOUND, INVALID_ARGUMENT, ...) as the code, and only 408, 429 and 5xx
// are retried.
func googleError(a *googleAnswer, now time.Time, secrets []string) *Error {
	var api googleAPIError
	if json.Unmarshal(a.body, &api) != nil || api.Error.Status == "" && api.Error.Message == "" {
		he := httpError(a.status, a.header, a.body, now, secrets)
		if a.step == "iam" {
			he.Description = "generateAccessToken: " + he.Description
		}
		return he
	}
	he := &Error{StatusCode: a.status, Retryable: retryableStatus(a.status), RetryAfter: retryAfter(a.header.Get("Retry-After"), now)}
	he.Code = errorCode(api.Error.Status, secrets)
	step := "Security Token Service"
	if a.step == "iam" {
		step = "generateAccessToken"
	}
	he.Description = strings.TrimSpace(step + ": " + describe(api.Error.Message, nil, secrets))
	return he
}

func (googleGrant) keepsTokens() bool { return false }
