package awssts_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/token-operator/token-operator/internal/testing/awssts"
	"github.com/token-operator/token-operator/internal/testing/testcert"
)

const (
	roleARN     = "arn:aws:iam::111122223333:role/workloads/reader"
	audience    = "sts.amazonaws.com"
	subject     = "system:serviceaccount:team-a:workload"
	sessionName = "token-operator"
)

// issuer is a local OpenID Connect issuer: discovery and JWKS over TLS,
// served only to a client presenting its bearer credential, as a
// Kubernetes API server serves its service account issuer documents.
type issuer struct {
	URL    string
	key    crypto.Signer
	kid    string
	client *http.Client
	// editDiscovery changes the discovery document before it is sent.
	editDiscovery func(map[string]any)
}

type bearer struct{ next http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer reader")
	return b.next.RoundTrip(r)
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	iss := &issuer{key: testcert.RSA(t, 2048), kid: "sa-key"}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer reader" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			doc := map[string]any{"issuer": iss.URL, "jwks_uri": iss.URL + "/openid/v1/jwks"}
			if iss.editDiscovery != nil {
				iss.editDiscovery(doc)
			}
			_ = json.NewEncoder(w).Encode(doc)
		case "/openid/v1/jwks":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: iss.key.Public(), KeyID: iss.kid, Algorithm: "RS256", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	ts.StartTLS()
	t.Cleanup(ts.Close)
	iss.URL = ts.URL
	iss.client = &http.Client{Transport: bearer{ts.Client().Transport}}
	return iss
}

// claims are a valid service account token's claims; edit changes them.
func (iss *issuer) claims() jwt.Claims {
	now := time.Now()
	return jwt.Claims{Issuer: iss.URL, Subject: subject, Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
}

func (iss *issuer) token(t *testing.T, edit func(*jwt.Claims)) string {
	t.Helper()
	c := iss.claims()
	if edit != nil {
		edit(&c)
	}
	return sign(t, iss.key, iss.kid, c)
}

func sign(t *testing.T, key crypto.Signer, kid string, c jwt.Claims) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fixture is an STS with one provider and one role trusting it.
type fixture struct {
	srv *awssts.Server
	iss *issuer
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	srv := awssts.New()
	t.Cleanup(srv.Close)
	iss := newIssuer(t)
	srv.AddProvider(awssts.Provider{Issuer: iss.URL, Keys: awssts.DiscoveredKeys(iss.URL, iss.client)})
	srv.AddRole(awssts.Role{ARN: roleARN, Issuer: iss.URL, Audiences: []string{audience}, Subjects: []string{"system:serviceaccount:team-a:*"}})
	return fixture{srv: srv, iss: iss}
}

func httpClient(srv *awssts.Server) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool()}}}
}

// client is the AWS SDK's STS client at srv, with anonymous credentials
// and no retries unless attempts says otherwise.
func client(srv *awssts.Server, attempts int) *sts.Client {
	return sts.NewFromConfig(aws.Config{Region: awssts.DefaultRegion, HTTPClient: httpClient(srv), Credentials: aws.AnonymousCredentials{}},
		func(o *sts.Options) {
			o.BaseEndpoint = aws.String(srv.URL)
			o.RetryMaxAttempts = attempts
		})
}

func input(token string) *sts.AssumeRoleWithWebIdentityInput {
	return &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String(sessionName), WebIdentityToken: aws.String(token)}
}

func assume(t *testing.T, f fixture, in *sts.AssumeRoleWithWebIdentityInput) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	t.Helper()
	return client(f.srv, 1).AssumeRoleWithWebIdentity(context.Background(), in)
}

// wantAPIError checks the SDK surfaced STS's code and HTTP status.
func wantAPIError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if api.ErrorCode() != code {
		t.Fatalf("want %s, got %s: %s", code, api.ErrorCode(), api.ErrorMessage())
	}
	var resp *awshttp.ResponseError
	if !errors.As(err, &resp) || resp.HTTPStatusCode() != status {
		t.Fatalf("%s: want HTTP %d, got %v", code, status, err)
	}
	if resp.ServiceRequestID() == "" {
		t.Errorf("%s: no request ID", code)
	}
}

func TestAServiceAccountTokenAssumesTheRole(t *testing.T) {
	f := newFixture(t)
	before := time.Now()
	out, err := assume(t, f, input(f.iss.token(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	if id := aws.ToString(c.AccessKeyId); !strings.HasPrefix(id, "ASIA") || len(id) != 20 {
		t.Errorf("access key ID %q is not a temporary key's", id)
	}
	if aws.ToString(c.SecretAccessKey) == "" || aws.ToString(c.SessionToken) == "" {
		t.Error("no secret key or session token")
	}
	if exp := aws.ToTime(c.Expiration); exp.Before(before.Add(time.Hour-2*time.Second)) || exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("expiration %s is not an hour away (the default duration)", exp)
	}
	if got := aws.ToString(out.SubjectFromWebIdentityToken); got != subject {
		t.Errorf("subject %q", got)
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::111122223333:assumed-role/reader/"+sessionName {
		t.Errorf("assumed role ARN %q", got)
	}
	if got := aws.ToString(out.AssumedRoleUser.AssumedRoleId); !strings.HasPrefix(got, "AROA") || !strings.HasSuffix(got, ":"+sessionName) {
		t.Errorf("assumed role ID %q", got)
	}
	if got := aws.ToString(out.Audience); got != audience {
		t.Errorf("audience %q", got)
	}
	if got := aws.ToString(out.Provider); got != "arn:aws:iam::111122223333:oidc-provider/"+strings.TrimPrefix(f.iss.URL, "https://") {
		t.Errorf("provider %q", got)
	}
	issued := f.srv.Issued()
	if len(issued) != 1 || issued[0].SecretAccessKey != aws.ToString(c.SecretAccessKey) {
		t.Errorf("the server does not remember what it issued: %+v", issued)
	}
	calls := f.srv.Calls()
	if len(calls) != 1 || calls[0].Signed || calls[0].ErrorCode != "" || f.srv.AssumeCalls(roleARN) != 1 {
		t.Errorf("calls: %+v", calls)
	}
}

func TestTheSDKCallsUnsignedEvenWithCredentialsConfigured(t *testing.T) {
	f := newFixture(t)
	c := sts.NewFromConfig(aws.Config{Region: awssts.DefaultRegion, HTTPClient: httpClient(f.srv),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIAUNKNOWN", SecretAccessKey: "x"}, nil
		}))}, func(o *sts.Options) { o.BaseEndpoint = aws.String(f.srv.URL) })
	if _, err := c.AssumeRoleWithWebIdentity(context.Background(), input(f.iss.token(t, nil))); err != nil {
		t.Fatal(err)
	}
	if calls := f.srv.Calls(); calls[0].Signed {
		t.Error("AssumeRoleWithWebIdentity was signed")
	}
}

func TestTheTokenIsCheckedLikeSTSDoes(t *testing.T) {
	f := newFixture(t)
	other := testcert.RSA(t, 2048)
	for _, tc := range []struct {
		name   string
		token  string
		code   string
		status int
	}{
		{"wrong audience", f.iss.token(t, func(c *jwt.Claims) { c.Audience = jwt.Audience{"api://AzureADTokenExchange"} }), "InvalidIdentityToken", 400},
		{"unknown issuer", f.iss.token(t, func(c *jwt.Claims) { c.Issuer = "https://issuer.example" }), "InvalidIdentityToken", 400},
		{"subject not trusted", f.iss.token(t, func(c *jwt.Claims) { c.Subject = "system:serviceaccount:team-b:workload" }), "AccessDenied", 403},
		{"expired", f.iss.token(t, func(c *jwt.Claims) {
			c.NotBefore, c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-2*time.Hour)), jwt.NewNumericDate(time.Now().Add(-2*time.Hour))
			c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour))
		}), "ExpiredTokenException", 400},
		{"not yet valid", f.iss.token(t, func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), "InvalidIdentityToken", 400},
		{"issued in the future", f.iss.token(t, func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), "InvalidIdentityToken", 400},
		{"no expiry", f.iss.token(t, func(c *jwt.Claims) { c.Expiry = nil }), "InvalidIdentityToken", 400},
		{"signed by another key", sign(t, other, f.iss.kid, f.iss.claims()), "InvalidIdentityToken", 400},
		{"signed by another key without kid", sign(t, other, "", f.iss.claims()), "InvalidIdentityToken", 400},
		{"not a JWT", "an-opaque-access-token", "InvalidIdentityToken", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := assume(t, f, input(tc.token))
			wantAPIError(t, err, tc.code, tc.status)
		})
	}
	if n := len(f.srv.Issued()); n != 0 {
		t.Errorf("%d credentials issued for refused tokens", n)
	}
	skewed := f.iss.token(t, func(c *jwt.Claims) {
		c.NotBefore, c.IssuedAt = jwt.NewNumericDate(time.Now().Add(time.Minute)), jwt.NewNumericDate(time.Now().Add(time.Minute))
	})
	if _, err := assume(t, f, input(skewed)); err != nil {
		t.Errorf("a minute of clock skew is refused: %v", err)
	}
}

func TestTypedErrorsReachTheSDK(t *testing.T) {
	f := newFixture(t)
	_, err := assume(t, f, input(f.iss.token(t, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour)) })))
	var expired *types.ExpiredTokenException
	if !errors.As(err, &expired) {
		t.Errorf("not an ExpiredTokenException: %v", err)
	}
	_, err = assume(t, f, input(f.iss.token(t, func(c *jwt.Claims) { c.Audience = jwt.Audience{"other"} })))
	var invalid *types.InvalidIdentityTokenException
	if !errors.As(err, &invalid) || !strings.Contains(invalid.ErrorMessage(), "Incorrect token audience") {
		t.Errorf("not an InvalidIdentityTokenException about the audience: %v", err)
	}
}

func TestARoleTrustsOneIssuerAndItsSubjects(t *testing.T) {
	f := newFixture(t)
	second := newIssuer(t)
	f.srv.AddProvider(awssts.Provider{Issuer: second.URL, Keys: awssts.DiscoveredKeys(second.URL, second.client)})
	_, err := assume(t, f, input(second.token(t, nil)))
	wantAPIError(t, err, "AccessDenied", 403)

	in := input(f.iss.token(t, nil))
	in.RoleArn = aws.String("arn:aws:iam::111122223333:role/unknown")
	_, err = assume(t, f, in)
	wantAPIError(t, err, "AccessDenied", 403)

	f.srv.AddRole(awssts.Role{ARN: roleARN, Issuer: f.iss.URL, Audiences: []string{audience}, Subjects: []string{"system:serviceaccount:team-?:workload"}})
	if _, err := assume(t, f, input(f.iss.token(t, func(c *jwt.Claims) { c.Subject = "system:serviceaccount:team-b:workload" }))); err != nil {
		t.Errorf("? matches one character: %v", err)
	}
	_, err = assume(t, f, input(f.iss.token(t, func(c *jwt.Claims) { c.Subject = "system:serviceaccount:team-bb:workload" })))
	wantAPIError(t, err, "AccessDenied", 403)
}

func TestDurationBounds(t *testing.T) {
	f := newFixture(t)
	long := "arn:aws:iam::111122223333:role/long"
	f.srv.AddRole(awssts.Role{ARN: long, Issuer: f.iss.URL, Audiences: []string{audience}, Subjects: []string{subject}, MaxSessionDuration: 12 * time.Hour})
	for _, tc := range []struct {
		role     string
		duration int32
		code     string
		message  string
	}{
		{roleARN, 900, "", ""},
		{roleARN, 899, "ValidationError", "greater than or equal to 900"},
		{roleARN, 3600, "", ""},
		{roleARN, 3601, "ValidationError", "exceeds the MaxSessionDuration"}, // the role's default 1 h
		{long, 43200, "", ""},
		{long, 43201, "ValidationError", "less than or equal to 43200"},
	} {
		t.Run(fmt.Sprint(tc.duration), func(t *testing.T) {
			in := input(f.iss.token(t, nil))
			in.RoleArn, in.DurationSeconds = aws.String(tc.role), aws.Int32(tc.duration)
			out, err := assume(t, f, in)
			if tc.code != "" {
				wantAPIError(t, err, tc.code, 400)
				if !strings.Contains(err.Error(), tc.message) {
					t.Errorf("message %v, want %q", err, tc.message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if left := time.Until(aws.ToTime(out.Credentials.Expiration)); left > time.Duration(tc.duration)*time.Second || left < time.Duration(tc.duration-5)*time.Second {
				t.Errorf("credentials last %s, asked for %ds", left, tc.duration)
			}
		})
	}
}

func TestParametersAreValidated(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.token(t, nil)
	for _, tc := range []struct {
		name string
		edit func(*sts.AssumeRoleWithWebIdentityInput)
		code string
	}{
		{"session name too short", func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("a") }, "ValidationError"},
		{"session name too long", func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String(strings.Repeat("a", 65)) }, "ValidationError"},
		{"session name with a space", func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("token operator") }, "ValidationError"},
		{"session name with a colon", func(in *sts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("team-a:workload") }, "ValidationError"},
		{"not a role ARN", func(in *sts.AssumeRoleWithWebIdentityInput) {
			in.RoleArn = aws.String("arn:aws:iam::111122223333:user/reader")
		}, "ValidationError"},
		{"policy not JSON", func(in *sts.AssumeRoleWithWebIdentityInput) { in.Policy = aws.String("{not json") }, "MalformedPolicyDocument"},
		{"provider ID with an OIDC token", func(in *sts.AssumeRoleWithWebIdentityInput) { in.ProviderId = aws.String("www.amazon.com") }, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tok)
			tc.edit(in)
			_, err := assume(t, f, in)
			wantAPIError(t, err, tc.code, 400)
		})
	}
	in := input(tok)
	in.RoleSessionName = aws.String("a+b=c,d.e@f_g-h")
	in.Policy = aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)
	in.PolicyArns = []types.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")}}
	if _, err := assume(t, f, in); err != nil {
		t.Errorf("every character of the session name pattern, a policy and a policy ARN: %v", err)
	}
}

func TestForcedErrors(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.token(t, nil)
	f.srv.DisableRegion(true)
	_, err := assume(t, f, input(tok))
	wantAPIError(t, err, "RegionDisabledException", 403)
	var disabled *types.RegionDisabledException
	if !errors.As(err, &disabled) {
		t.Errorf("not a RegionDisabledException: %v", err)
	}
	f.srv.DisableRegion(false)

	f.srv.InjectFaults(awssts.IDPRejectedClaim(), awssts.IDPCommunicationError(), awssts.Throttling(), awssts.ServiceUnavailable())
	_, err = assume(t, f, input(tok))
	wantAPIError(t, err, "IDPRejectedClaim", 403)
	_, err = assume(t, f, input(tok))
	wantAPIError(t, err, "IDPCommunicationError", 400)
	_, err = assume(t, f, input(tok))
	wantAPIError(t, err, "Throttling", 400)
	_, err = assume(t, f, input(tok))
	wantAPIError(t, err, "ServiceUnavailable", 503)
	if _, err := assume(t, f, input(tok)); err != nil {
		t.Errorf("a fault outlived its one call: %v", err)
	}
	if n := f.srv.AssumeCalls(roleARN); n != 6 {
		t.Errorf("%d calls counted, want 6", n)
	}
}

// An API server advertises a jwks_uri the test cannot reach (envtest's
// names 192.0.2.x); the keys are fetched at the issuer's own host instead.
func TestTheKeysAreFetchedAtTheIssuersHost(t *testing.T) {
	f := newFixture(t)
	f.iss.editDiscovery = func(doc map[string]any) {
		doc["jwks_uri"] = strings.Replace(f.iss.URL, "127.0.0.1", "127.0.0.2", 1) + "/openid/v1/jwks"
	}
	if _, err := assume(t, f, input(f.iss.token(t, nil))); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableKeysAreAnIDPCommunicationError(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.token(t, nil)
	f.iss.editDiscovery = func(doc map[string]any) { doc["issuer"] = "https://impostor.example" }
	_, err := assume(t, f, input(tok))
	wantAPIError(t, err, "IDPCommunicationError", 400)

	f.iss.editDiscovery = nil
	f.srv.AddProvider(awssts.Provider{Issuer: f.iss.URL, Keys: awssts.DiscoveredKeys(f.iss.URL, http.DefaultClient)})
	_, err = assume(t, f, input(tok))
	wantAPIError(t, err, "IDPCommunicationError", 400)

	f.srv.AddProvider(awssts.Provider{Issuer: f.iss.URL, Keys: awssts.DiscoveredKeys(f.iss.URL, f.iss.client)})
	f.iss.editDiscovery = func(doc map[string]any) {
		doc["jwks_uri"] = strings.Replace(f.iss.URL, "https:", "http:", 1) + "/openid/v1/jwks"
	}
	_, err = assume(t, f, input(tok))
	wantAPIError(t, err, "IDPCommunicationError", 400)
	f.iss.editDiscovery = nil

	// The SDK retries this code (and no other token error) on its own.
	f.srv.AddProvider(awssts.Provider{Issuer: f.iss.URL, Keys: func(context.Context) (jose.JSONWebKeySet, error) {
		return jose.JSONWebKeySet{}, errors.New("issuer down")
	}})
	before := len(f.srv.Calls())
	_, err = client(f.srv, 3).AssumeRoleWithWebIdentity(context.Background(), input(tok))
	wantAPIError(t, err, "IDPCommunicationError", 400)
	if n := len(f.srv.Calls()) - before; n != 3 {
		t.Errorf("the SDK made %d attempts, want 3", n)
	}
	f.srv.AddProvider(awssts.Provider{Issuer: f.iss.URL, Keys: awssts.DiscoveredKeys(f.iss.URL, f.iss.client)})
	before = len(f.srv.Calls())
	_, err = client(f.srv, 3).AssumeRoleWithWebIdentity(context.Background(), input(f.iss.token(t, func(c *jwt.Claims) { c.Audience = jwt.Audience{"x"} })))
	if n := len(f.srv.Calls()) - before; n != 1 || err == nil {
		t.Errorf("InvalidIdentityToken: %d attempts, want 1 (%v)", n, err)
	}
}

// post sends a raw Query API request.
func post(t *testing.T, srv *awssts.Server, form url.Values) (int, []byte) {
	t.Helper()
	resp, err := httpClient(srv).PostForm(srv.URL+"/", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestTheWireFormatIsSTSs(t *testing.T) {
	f := newFixture(t)
	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {roleARN},
		"RoleSessionName": {sessionName}, "WebIdentityToken": {f.iss.token(t, func(c *jwt.Claims) { c.Audience = jwt.Audience{"x"} })}}
	status, body := post(t, f.srv, form)
	var e struct {
		XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
		Error     struct{ Type, Code, Message string }
		RequestID string `xml:"RequestId"`
	}
	if err := xml.Unmarshal(body, &e); err != nil || status != 400 || e.Error.Type != "Sender" || e.Error.Code != "InvalidIdentityToken" || e.Error.Message == "" || e.RequestID == "" {
		t.Errorf("error answer %d %s (%v)", status, body, err)
	}

	form.Set("WebIdentityToken", f.iss.token(t, nil))
	resp, err := httpClient(f.srv).Get(f.srv.URL + "/?" + form.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var ok struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
		Result  struct {
			SubjectFromWebIdentityToken, Audience, Provider string
			AssumedRoleUser                                 struct{ Arn, AssumedRoleId string }
			Credentials                                     struct{ AccessKeyId, SecretAccessKey, SessionToken, Expiration string }
		} `xml:"AssumeRoleWithWebIdentityResult"`
		Metadata struct{ RequestId string } `xml:"ResponseMetadata"`
	}
	if err := xml.Unmarshal(body, &ok); err != nil || resp.StatusCode != 200 || ok.Metadata.RequestId == "" || ok.Metadata.RequestId != resp.Header.Get("x-amzn-RequestId") {
		t.Fatalf("GET answer %d %s (%v)", resp.StatusCode, body, err)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", ok.Result.Credentials.Expiration); err != nil {
		t.Errorf("expiration is not ISO 8601 UTC: %v", err)
	}

	form.Set("Version", "2011-06-16")
	if status, body := post(t, f.srv, form); status != 400 || !strings.Contains(string(body), "<Code>InvalidAction</Code>") {
		t.Errorf("wrong version: %d %s", status, body)
	}
	form.Set("Version", "2011-06-15")
	form.Del("RoleArn")
	if status, body := post(t, f.srv, form); status != 400 || !strings.Contains(string(body), "Value null at &#39;roleArn&#39;") {
		t.Errorf("missing RoleArn: %d %s", status, body)
	}
}
