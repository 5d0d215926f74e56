package awssts_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/token-operator/token-operator/internal/testing/awssts"
)

// issue assumes the role through the SDK and returns what STS issued.
func issue(t *testing.T, f fixture, duration int32) awssts.Credentials {
	t.Helper()
	in := input(f.iss.token(t, nil))
	in.DurationSeconds = aws.Int32(duration)
	out, err := assume(t, f, in)
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	return awssts.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken: aws.ToString(c.SessionToken), Expiration: aws.ToTime(c.Expiration)}
}

// sdkEnvironment points the SDK's default configuration at files in a
// fresh folder and at srv, through environment variables only (what a pod
// spec sets), and hides any AWS settings of the machine running the test.
func sdkEnvironment(t *testing.T, srv *awssts.Server) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	write(t, filepath.Join(dir, "ca.pem"), string(srv.CAPEM()))
	write(t, filepath.Join(dir, "config"), "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", awssts.DefaultRegion)
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
	t.Setenv("AWS_CA_BUNDLE", filepath.Join(dir, "ca.pem"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	return dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func sharedCredentials(c awssts.Credentials) string {
	return fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n", c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

// callerIdentity loads the SDK's default configuration afresh and calls
// GetCallerIdentity, SigV4-signed with whatever credentials it found.
func callerIdentity(t *testing.T) (*sts.GetCallerIdentityOutput, error) {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
}

func TestASharedCredentialsFileSignsRequestsTheServerAccepts(t *testing.T) {
	f := newFixture(t)
	creds := issue(t, f, 3600)
	dir := sdkEnvironment(t, f.srv)
	file := filepath.Join(dir, "credentials")

	write(t, file, sharedCredentials(creds))
	out, err := callerIdentity(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Arn); got != "arn:aws:sts::111122223333:assumed-role/reader/"+sessionName {
		t.Errorf("caller %q", got)
	}
	if aws.ToString(out.Account) != "111122223333" || !strings.HasSuffix(aws.ToString(out.UserId), ":"+sessionName) {
		t.Errorf("account %q, user ID %q", aws.ToString(out.Account), aws.ToString(out.UserId))
	}
	calls := f.srv.Calls()
	if last := calls[len(calls)-1]; last.Action != "GetCallerIdentity" || !last.Signed || last.ErrorCode != "" {
		t.Errorf("last call %+v", last)
	}

	wrongSecret := creds
	wrongSecret.SecretAccessKey = strings.Repeat("A", len(creds.SecretAccessKey))
	write(t, file, sharedCredentials(wrongSecret))
	_, err = callerIdentity(t)
	wantAPIError(t, err, "SignatureDoesNotMatch", 403)

	noToken := creds
	noToken.SessionToken = ""
	write(t, file, strings.Replace(sharedCredentials(noToken), "aws_session_token = \n", "", 1))
	_, err = callerIdentity(t)
	wantAPIError(t, err, "InvalidClientTokenId", 403)

	unknown := creds
	unknown.AccessKeyID = "ASIAUNKNOWNKEY000000"
	write(t, file, sharedCredentials(unknown))
	_, err = callerIdentity(t)
	wantAPIError(t, err, "InvalidClientTokenId", 403)
}

func TestTheCredentialProcessFormSignsRequestsAndCarriesTheExpiry(t *testing.T) {
	f := newFixture(t)
	creds := issue(t, f, 900)
	dir := sdkEnvironment(t, f.srv)
	doc, err := json.Marshal(map[string]any{"Version": 1, "AccessKeyId": creds.AccessKeyID, "SecretAccessKey": creds.SecretAccessKey,
		"SessionToken": creds.SessionToken, "Expiration": creds.Expiration.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "credentials.json"), string(doc))
	write(t, filepath.Join(dir, "config"), "[default]\ncredential_process = cat "+filepath.Join(dir, "credentials.json")+"\n")

	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "ProcessProvider" || !got.CanExpire || !got.Expires.Equal(creds.Expiration) {
		t.Errorf("loaded %s credentials, expiring %v at %s; want %s", got.Source, got.CanExpire, got.Expires, creds.Expiration)
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(aws.ToString(out.Arn), "assumed-role/reader/"+sessionName) {
		t.Errorf("caller %q", aws.ToString(out.Arn))
	}
}

// staticClient signs with c as given.
func staticClient(srv *awssts.Server, c awssts.Credentials) *sts.Client {
	return sts.NewFromConfig(aws.Config{Region: awssts.DefaultRegion, HTTPClient: httpClient(srv),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
		})}, func(o *sts.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.RetryMaxAttempts = 1
	})
}

func TestIssuedCredentialsExpire(t *testing.T) {
	f := newFixture(t)
	clock := clocktesting.NewFakePassiveClock(time.Now())
	f.srv.SetClock(clock)
	creds := issue(t, f, 900)
	c := staticClient(f.srv, creds)
	clock.SetTime(creds.Expiration.Add(-time.Second))
	if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	clock.SetTime(creds.Expiration)
	_, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "ExpiredToken", 403)
}

func TestAnOldSignatureIsRefused(t *testing.T) {
	f := newFixture(t)
	clock := clocktesting.NewFakePassiveClock(time.Now())
	f.srv.SetClock(clock)
	creds := issue(t, f, 3600)
	clock.SetTime(time.Now().Add(20 * time.Minute))
	_, err := staticClient(f.srv, creds).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "SignatureDoesNotMatch", 403)
}

func TestGetCallerIdentityNeedsASignature(t *testing.T) {
	f := newFixture(t)
	status, body := post(t, f.srv, url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}})
	if status != 403 || !strings.Contains(string(body), "<Code>MissingAuthenticationToken</Code>") {
		t.Errorf("unsigned: %d %s", status, body)
	}
}

// signedRequest signs a request the way the SDK does, for service.
func signedRequest(t *testing.T, c awssts.Credentials, method, target, service string, body []byte) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken},
		r, hex.EncodeToString(sum[:]), service, awssts.DefaultRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestASignedAssumeRoleCallNeedsKnownCredentials(t *testing.T) {
	f := newFixture(t)
	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {roleARN},
		"RoleSessionName": {sessionName}, "WebIdentityToken": {f.iss.token(t, nil)}}
	r := signedRequest(t, awssts.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		http.MethodPost, f.srv.URL+"/", "sts", []byte(form.Encode()))
	resp, err := httpClient(f.srv).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || len(f.srv.Issued()) != 0 {
		t.Errorf("signed with unknown credentials: %d, %d issued", resp.StatusCode, len(f.srv.Issued()))
	}
}

// An S3-like endpoint guarded by Authenticate: what a consumer test puts
// behind the credentials.
func TestAuthenticateGuardsAnyEndpoint(t *testing.T) {
	f := newFixture(t)
	creds := issue(t, f, 3600)
	bucket := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := f.srv.Authenticate(r, "s3")
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = fmt.Fprint(w, caller.ARN)
	}))
	defer bucket.Close()
	body := []byte("object body")
	do := func(r *http.Request) (int, string) {
		resp, err := bucket.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if status, got := do(signedRequest(t, creds, http.MethodPut, bucket.URL+"/bucket/key?versionId=1", "s3", body)); status != 200 || !strings.Contains(got, "assumed-role/reader") {
		t.Errorf("signed PUT: %d %s", status, got)
	}
	tampered := signedRequest(t, creds, http.MethodPut, bucket.URL+"/bucket/key", "s3", body)
	tampered.Body = io.NopCloser(strings.NewReader("other body!")) // same length, other bytes
	if status, got := do(tampered); status != 403 || !strings.Contains(got, "SignatureDoesNotMatch") {
		t.Errorf("tampered body: %d %s", status, got)
	}
	if status, got := do(signedRequest(t, creds, http.MethodPut, bucket.URL+"/bucket/key", "sts", body)); status != 403 || !strings.Contains(got, "correct service") {
		t.Errorf("scoped to another service: %d %s", status, got)
	}
}
