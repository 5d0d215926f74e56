package tokensource

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/token-operator/token-operator/internal/credential"
	"github.com/token-operator/token-operator/internal/testing/awssts"
)

const (
	awsRoleARNTest = "arn:aws:iam::111122223333:role/workloads/reader"
	awsIssuer      = "https://issuer.cluster.example"
	awsSubject     = "system:serviceaccount:team-a:workload"
)

// awsFixture is the test STS trusting one issuer, whose tokens the
// fixture signs as an API server would sign a ServiceAccount's.
type awsFixture struct {
	srv *awssts.Server
	key *rsa.PrivateKey
	eng *Engine
}

func newAWSFixture(t *testing.T, o Options) *awsFixture {
	t.Helper()
	srv := awssts.New()
	t.Cleanup(srv.Close)
	key := testRSAKey(t, 0)
	srv.AddProvider(awssts.Provider{Issuer: awsIssuer, Keys: awssts.StaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})})
	srv.AddRole(awssts.Role{ARN: awsRoleARNTest, Issuer: awsIssuer, Audiences: []string{"sts.amazonaws.com"}, Subjects: []string{"system:serviceaccount:team-a:*"}})
	o.RootCAs = srv.CertPool()
	return &awsFixture{srv: srv, key: key, eng: New(o)}
}

// token is a ServiceAccount token; edit changes its claims.
func (f *awsFixture) token(t *testing.T, edit func(*jwt.Claims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.Claims{Issuer: awsIssuer, Subject: awsSubject, Audience: jwt.Audience{"sts.amazonaws.com"},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute))}
	if edit != nil {
		edit(&c)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: f.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *awsFixture) request(t *testing.T, edit func(*jwt.Claims)) Request {
	tok := f.token(t, edit)
	return awsRequest(f.srv.URL, tok, []string{strings.TrimPrefix(f.srv.URL, "https://")})
}

func awsRequest(endpoint, webIdentity string, allowed []string) Request {
	return Request{
		Credential:   &credential.Assertion{ID: "team-a/workload/uid/sts.amazonaws.com", Provide: func(context.Context) (string, error) { return webIdentity, nil }},
		AllowedHosts: allowed,
		AWS:          &AWSRole{RoleARN: awsRoleARNTest, SessionName: "team-a.orders", DurationSeconds: 900, Region: awssts.DefaultRegion, Endpoint: endpoint},
	}
}

func TestAWSGetsCredentialsThatSignRequestsSTSAccepts(t *testing.T) {
	f := newAWSFixture(t, Options{})
	tok, err := f.eng.Fetch(context.Background(), f.request(t, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	issued := f.srv.Issued()
	if len(issued) != 1 || tok.AWS == nil || *tok.AWS != (AWSCredentials{issued[0].AccessKeyID, issued[0].SecretAccessKey, issued[0].SessionToken}) {
		t.Fatalf("token %+v, issued %+v", tok.AWS, issued)
	}
	if !tok.ExpiresAt.Equal(issued[0].Expiration) || tok.TokenType != TokenTypeAWS || tok.AccessToken != "" || len(tok.Scopes) != 0 {
		t.Errorf("token %+v; STS said it expires at %s", tok, issued[0].Expiration)
	}
	if d := tok.ExpiresAt.Sub(tok.IssuedAt); d < 899*time.Second || d > 900*time.Second {
		t.Errorf("lifetime %s, asked for 900s", d)
	}
	calls := f.srv.Calls()
	if len(calls) != 1 || calls[0].Signed || calls[0].RoleSessionName != "team-a.orders" || calls[0].DurationSeconds != "900" {
		t.Errorf("calls %+v", calls)
	}
	// What was issued signs a request STS verifies with the issued secret key.
	c := sts.New(sts.Options{Region: awssts.DefaultRegion, BaseEndpoint: aws.String(f.srv.URL), HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: awsTLS(f.srv)}},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: tok.AWS.AccessKeyID, SecretAccessKey: tok.AWS.SecretAccessKey, SessionToken: tok.AWS.SessionToken, Source: "test"}, nil
		}), Retryer: aws.NopRetryer{}})
	who, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(who.Arn); got != "arn:aws:sts::111122223333:assumed-role/reader/team-a.orders" {
		t.Errorf("caller %s", got)
	}
	if b := tok.Bytes(); b < int64(len(tok.AWS.SessionToken)+len(tok.AWS.SecretAccessKey)) {
		t.Errorf("Bytes %d does not count the credentials", b)
	}
}

func TestAWSErrorsAreClassifiedAndMadeOnce(t *testing.T) {
	f := newAWSFixture(t, Options{})
	other := testRSAKey(t, 1)
	for _, tc := range []struct {
		name      string
		setup     func()
		edit      func(*jwt.Claims)
		duration  int32
		code      string
		status    int
		retryable bool
	}{
		{name: "a token signed by another key", code: "InvalidIdentityToken", status: 400},
		{name: "a token of an unknown issuer", edit: func(c *jwt.Claims) { c.Issuer = "https://unknown.example" }, code: "InvalidIdentityToken", status: 400},
		{name: "an expired token", edit: func(c *jwt.Claims) {
			c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour))
			c.IssuedAt, c.NotBefore = jwt.NewNumericDate(time.Now().Add(-2*time.Hour)), jwt.NewNumericDate(time.Now().Add(-2*time.Hour))
		}, code: "ExpiredTokenException", status: 400},
		{name: "a subject the role does not trust", edit: func(c *jwt.Claims) { c.Subject = "system:serviceaccount:team-b:workload" }, code: "AccessDenied", status: 403},
		{name: "longer than the role allows", duration: 7200, code: "ValidationError", status: 400},
		{name: "a disabled region", setup: func() { f.srv.DisableRegion(true) }, code: "RegionDisabledException", status: 403},
		{name: "a rejected claim", setup: func() { f.srv.InjectFaults(awssts.IDPRejectedClaim()) }, code: "IDPRejectedClaim", status: 403},
		{name: "unreachable issuer keys", setup: func() { f.srv.InjectFaults(awssts.IDPCommunicationError()) }, code: "IDPCommunicationError", status: 400, retryable: true},
		{name: "throttling", setup: func() { f.srv.InjectFaults(awssts.Throttling()) }, code: "Throttling", status: 400, retryable: true},
		{name: "STS unavailable", setup: func() { f.srv.InjectFaults(awssts.ServiceUnavailable()) }, code: "ServiceUnavailable", status: 503, retryable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer f.srv.DisableRegion(false)
			if tc.setup != nil {
				tc.setup()
			}
			req := f.request(t, tc.edit)
			if tc.name == "a token signed by another key" {
				req = awsRequest(f.srv.URL, (&awsFixture{key: other}).token(t, nil), req.AllowedHosts)
			}
			if tc.duration != 0 {
				req.AWS.DurationSeconds = tc.duration
			}
			before := f.srv.AssumeCalls(awsRoleARNTest)
			_, err := f.eng.Fetch(context.Background(), req, nil)
			te := asError(t, err)
			if te.Code != tc.code || te.StatusCode != tc.status || te.Retryable != tc.retryable {
				t.Errorf("got %+v, want %s %d retryable=%v", te, tc.code, tc.status, tc.retryable)
			}
			if te.CorrelationID == "" {
				t.Errorf("no request ID in %v", te)
			}
			if n := f.srv.AssumeCalls(awsRoleARNTest) - before; n != 1 {
				t.Errorf("%d calls, want 1: retries are the operator's", n)
			}
		})
	}
}

// awsEchoSTS answers every call with an STS error document whose message
// repeats the web identity token, as a careless server might.
func awsEchoSTS(t *testing.T, status int, code string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>token %s was refused</Message></Error><RequestId>c0ffee-1</RequestId></ErrorResponse>`,
			code, r.PostForm.Get("WebIdentityToken"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAWSErrorTextNeverHoldsTheWebIdentityToken(t *testing.T) {
	const webIdentity = "not-a-jwt-but-secret-7a1f9c"
	srv := awsEchoSTS(t, http.StatusBadRequest, "InvalidIdentityToken")
	eng := New(Options{AllowHTTPLoopback: true})
	_, err := eng.Fetch(context.Background(), awsRequest(srv.URL, webIdentity, []string{hostOf(srv)}), nil)
	te := asError(t, err)
	if strings.Contains(err.Error(), webIdentity) || !strings.Contains(te.Description, "[redacted]") || te.Retryable {
		t.Errorf("error %q (%+v)", err, te)
	}
}

func TestAWSSendsNothingToAHostWithoutConsent(t *testing.T) {
	f := newAWSFixture(t, Options{})
	req := f.request(t, nil)
	req.AllowedHosts = []string{"sts.eu-west-1.amazonaws.com"}
	var he *HostNotAllowedError
	if _, err := f.eng.Fetch(context.Background(), req, nil); !errors.As(err, &he) || he.ByOperator {
		t.Fatalf("want a refused host, got %v", err)
	}
	ceiling := newAWSFixture(t, Options{AllowedIssuerHosts: []string{"*.amazonaws.com"}})
	if _, err := ceiling.eng.Fetch(context.Background(), ceiling.request(t, nil), nil); !errors.As(err, &he) || !he.ByOperator {
		t.Fatalf("want the operator's ceiling to refuse, got %v", err)
	}
	if n := f.srv.AssumeCalls(awsRoleARNTest) + ceiling.srv.AssumeCalls(awsRoleARNTest); n != 0 {
		t.Errorf("%d calls reached STS", n)
	}
}

func TestAWSAnswersAreCapped(t *testing.T) {
	var calls atomic.Int32
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><SessionToken>"))
		_, _ = w.Write([]byte(strings.Repeat("A", 4<<10)))
		_, _ = w.Write([]byte("</SessionToken></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"))
	}))
	defer huge.Close()
	eng := New(Options{AllowHTTPLoopback: true, MaxResponseBytes: 1 << 10})
	_, err := eng.Fetch(context.Background(), awsRequest(huge.URL, "web-identity-token", []string{hostOf(huge)}), nil)
	if te := asError(t, err); !strings.Contains(te.Error(), "1 KiB") || calls.Load() != 1 {
		t.Errorf("a 4 KiB answer under a 1 KiB cap: %v", err)
	}

	f := newAWSFixture(t, Options{MaxTokenBytes: 200})
	var large *TokenTooLargeError
	if _, err := f.eng.Fetch(context.Background(), f.request(t, nil), nil); !errors.As(err, &large) {
		t.Errorf("credentials above --max-token-bytes: %v", err)
	}
}

// An unreadable answer may be a proxy's and passes; a readable one without
// complete credentials is the service's, as a token answer without
// expires_in is.
func TestAWSGarbageIsClassified(t *testing.T) {
	for _, tc := range []struct {
		status    int
		body      string
		retryable bool
	}{
		{200, "<html>not STS</html>", true},
		{200, `<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`, false},
		{502, "bad gateway", true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		eng := New(Options{AllowHTTPLoopback: true})
		_, err := eng.Fetch(context.Background(), awsRequest(srv.URL, "web-identity-token", []string{hostOf(srv)}), nil)
		srv.Close()
		if te := asError(t, err); te.Retryable != tc.retryable || te.Code != "malformed_response" {
			t.Errorf("HTTP %d %q: %+v", tc.status, tc.body, te)
		}
	}
}

func TestAWSEndpointFollowsTheRegion(t *testing.T) {
	for _, tc := range []struct {
		role AWSRole
		want string
	}{
		{AWSRole{}, "https://sts.amazonaws.com"},
		{AWSRole{Region: "eu-west-1"}, "https://sts.eu-west-1.amazonaws.com"},
		{AWSRole{Region: "cn-north-1"}, "https://sts.cn-north-1.amazonaws.com.cn"},
		{AWSRole{Region: "eu-west-1", Endpoint: "https://sts-fips.us-east-1.amazonaws.com"}, "https://sts-fips.us-east-1.amazonaws.com"},
	} {
		if got := tc.role.URL(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.role, got, tc.want)
		}
	}
}

func TestAWSRequestsAreValidated(t *testing.T) {
	base := func() Request { return awsRequest("", "t", nil) }
	for name, edit := range map[string]func(*Request){
		"scopes":           func(r *Request) { r.Scopes = []string{"s3"} },
		"a client ID":      func(r *Request) { r.ClientID = "app" },
		"a token URL":      func(r *Request) { r.TokenURL = "https://login.example/token" },
		"a client secret":  func(r *Request) { r.Credential = &credential.ClientSecret{Secret: "s3cret"} },
		"a long session":   func(r *Request) { r.AWS.SessionName = strings.Repeat("a", 65) },
		"a session space":  func(r *Request) { r.AWS.SessionName = "team a" },
		"a short duration": func(r *Request) { r.AWS.DurationSeconds = 600 },
		"a user ARN":       func(r *Request) { r.AWS.RoleARN = "arn:aws:iam::111122223333:user/app" },
		"a bad region":     func(r *Request) { r.AWS.Region = "Europe" },
		"an http endpoint": func(r *Request) { r.AWS.Endpoint = "http://sts.example" },
	} {
		r := base()
		edit(&r)
		var ce *ConfigError
		if err := r.Validate(); !errors.As(err, &ce) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := base().Validate(); err != nil {
		t.Errorf("a valid request: %v", err)
	}
	a, b := base(), base()
	b.AWS.SessionName = "other"
	if a.CacheKey() == b.CacheKey() || a.InputHash("v") == b.InputHash("v") {
		t.Error("the session name does not tell tokens apart")
	}
}

func awsTLS(s *awssts.Server) *tls.Config {
	return &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12}
}

// An Expiration past the duration asked for is not believed.
func TestAWSExpirationIsCappedByTheDurationAskedFor(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials>`+
			`<AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>secret-key-value</SecretAccessKey><SessionToken>session-token-value</SessionToken>`+
			`<Expiration>2036-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`)
	}))
	defer srv.Close()
	eng := New(Options{AllowHTTPLoopback: true})
	tok, err := eng.Fetch(context.Background(), awsRequest(srv.URL, "web-identity-token", []string{hostOf(srv)}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.ExpiresAt.Sub(tok.IssuedAt); got != 900*time.Second {
		t.Errorf("lifetime %s, want the 900s asked for", got)
	}
}
