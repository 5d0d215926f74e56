package tokenrequest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awssdksts "github.com/aws/aws-sdk-go-v2/service/sts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/testing/awssts"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// awsEnv is the test STS trusting the API server's service account issuer
// (its discovery document and keys, fetched as STS fetches them) for one
// namespace's "workload" ServiceAccount, and an operator that trusts it.
type awsEnv struct {
	srv  *awssts.Server
	role string
	ns   string
	pool *x509.CertPool
}

func newAWSEnv(t *testing.T) *awsEnv {
	t.Helper()
	srv := awssts.New()
	t.Cleanup(srv.Close)
	// The package's last test looks for these in logs, events and status.
	t.Cleanup(func() {
		for _, c := range srv.Issued() {
			secretsUsed.Store(c.SecretAccessKey, true)
			secretsUsed.Store(c.SessionToken, true)
		}
	})
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	issuer := issuerOfServiceAccountTokens(t)
	srv.AddProvider(awssts.Provider{Issuer: issuer, Keys: awssts.DiscoveredKeys(issuer, hc)})
	ns := k8s.NewNamespace(t)
	role := "arn:aws:iam::111122223333:role/" + ns
	srv.AddRole(awssts.Role{ARN: role, Issuer: issuer, Audiences: []string{"sts.amazonaws.com"}, Subjects: []string{"system:serviceaccount:" + ns + ":workload"}})
	return &awsEnv{srv: srv, role: role, ns: ns, pool: srv.CertPool()}
}

// operator runs a manager that trusts the test STS and any proxy made so far.
func (a *awsEnv) operator(t *testing.T, tweak ...func(*operator.Options)) func() {
	t.Helper()
	return startManager(t, append([]func(*operator.Options){func(o *operator.Options) { o.RootCAs = a.pool }}, tweak...)...)
}

// account creates the workload ServiceAccount; consent is the hosts it lets
// its token go to ("" for none).
func (a *awsEnv) account(t *testing.T, consent string) *corev1.ServiceAccount {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: a.ns}}
	if consent != "" {
		sa.Annotations = map[string]string{v1.AnnotationAllowedIssuers: consent}
	}
	k8s.MustCreate(t, sa)
	return sa
}

func (a *awsEnv) request(name, endpoint string) *v1.TokenRequest {
	return &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.ns}, Spec: v1.TokenRequestSpec{
		AWS:        &v1.AWSTarget{RoleARN: a.role, Endpoint: endpoint, DurationSeconds: awsPtr(int32(900))},
		Credential: &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}},
	}}
}

func awsPtr[T any](v T) *T { return &v }

func awsHostOfURL(u string) string { return strings.TrimPrefix(u, "https://") }

// shortSTS is a proxy to the test STS that shortens every Expiration it
// answers to lifetime from now, so refresh and expiry happen within a test
// (STS's own floor is 900 s), and answers ServiceUnavailable while down.
type shortSTS struct {
	URL    string
	down   atomic.Bool
	failed atomic.Int32
}

var awsExpiration = regexp.MustCompile(`<Expiration>[^<]*</Expiration>`)

func (a *awsEnv) shortLived(t *testing.T, lifetime time.Duration) *shortSTS {
	t.Helper()
	p := &shortSTS{}
	upstream := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.srv.CertPool(), MinVersion: tls.VersionTLS12}}}
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			p.failed.Add(1)
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>Service is unable to handle request.</Message></Error><RequestId>0000-down</RequestId></ErrorResponse>`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, a.srv.URL+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := upstream.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		exp := time.Now().Add(lifetime).UTC().Format(time.RFC3339)
		out = awsExpiration.ReplaceAll(out, []byte("<Expiration>"+exp+"</Expiration>"))
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
	}))
	t.Cleanup(ts.Close)
	a.pool.AddCert(ts.Certificate())
	p.URL = ts.URL
	return p
}

// awsWritten reads the credentials and expiry an AWS Secret holds.
func awsWritten(t *testing.T, s *corev1.Secret) (secretdata.AWSKeys, time.Time) {
	t.Helper()
	k := secretdata.ReadAWS(s.Data)
	if k == nil {
		t.Fatalf("Secret %s holds no AWS credentials: keys %v", s.Name, awsKeysOf(s.Data))
	}
	var p struct{ Expiration string }
	if err := json.Unmarshal(s.Data[secretdata.KeyAWSCredentialProcess], &p); err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, p.Expiration)
	if err != nil || string(s.Data[v1.KeyExpiresAt]) != p.Expiration {
		t.Fatalf("Expiration %q, expires_at %q", p.Expiration, s.Data[v1.KeyExpiresAt])
	}
	return *k, exp
}

func awsKeysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Without consent nothing reaches STS; with it the Secret holds what STS
// issued, the status says what it is and holds none of it, and the
// credentials are replaced before they expire.
func TestAWSCredentialsAreWrittenAndRefreshedBeforeTheyExpire(t *testing.T) {
	a := newAWSEnv(t)
	short := a.shortLived(t, 30*time.Second)
	a.operator(t)
	sa := a.account(t, "")
	k8s.MustCreate(t, a.request("aws", short.URL))
	k8s.WaitReason(t, a.ns, "aws", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotAllowed)
	if n := a.srv.AssumeCalls(a.role); n != 0 {
		t.Fatalf("%d calls without the ServiceAccount's consent", n)
	}
	sa.Annotations = map[string]string{v1.AnnotationAllowedIssuers: awsHostOfURL(short.URL)}
	if err := k8s.Update(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	tr := k8s.WaitReady(t, a.ns, "aws")
	s := k8s.GetSecret(t, a.ns, "aws")
	keys, exp := awsWritten(t, s)
	issued := a.srv.Issued()
	if len(issued) != 1 || issued[0].AccessKeyID != keys.AccessKeyID || issued[0].SecretAccessKey != keys.SecretAccessKey || issued[0].SessionToken != keys.SessionToken {
		t.Fatalf("the Secret does not hold what STS issued")
	}
	if len(s.Data) != 6 || s.Data[v1.KeyAccessToken] != nil {
		t.Errorf("data keys %v", awsKeysOf(s.Data))
	}
	if tr.Status.TokenType != "aws-credentials" || len(tr.Status.Scopes) != 0 || !tr.Status.ExpiresAt.Time.Equal(exp) {
		t.Errorf("status %+v, credentials expire at %s", tr.Status, exp)
	}
	calls := a.srv.Calls()
	if c := calls[len(calls)-1]; c.RoleSessionName != a.ns+".aws" || c.DurationSeconds != "900" {
		t.Errorf("call %+v", c)
	}
	noCredentialsOutsideTheSecret(t, a.ns, "aws", keys)
	size := 0
	for k, v := range s.Data {
		size += len(k) + len(v)
	}
	t.Logf("session token %d bytes; Secret data %d bytes", len(keys.SessionToken), size)

	kube.Eventually(t, 40*time.Second, "new credentials", func() bool {
		return string(k8s.GetSecret(t, a.ns, "aws").Data[secretdata.KeyAWSAccessKeyID]) != keys.AccessKeyID
	})
	if now := time.Now(); !now.Before(exp) {
		t.Errorf("the credentials were replaced at %s, after they expired at %s", now, exp)
	}
	if n := a.srv.AssumeCalls(a.role); n != 2 {
		t.Errorf("%d calls for two credentials", n)
	}
}

// noCredentialsOutsideTheSecret: status and events hold no key.
func noCredentialsOutsideTheSecret(t *testing.T, ns, name string, k secretdata.AWSKeys) {
	t.Helper()
	status, _ := json.Marshal(k8s.GetTR(t, ns, name).Status)
	events, _ := json.Marshal(eventsFor(t, ns, name))
	for _, text := range []string{string(status), string(events), logs.String()} {
		if strings.Contains(text, k.SecretAccessKey) || strings.Contains(text, k.SessionToken) {
			t.Fatal("a secret key or session token outside the Secret")
		}
	}
}

// A new operator process reads what the Secret and status hold: no STS call
// and no write while the credentials are good.
func TestAWSARestartedOperatorCallsNothingWhileCredentialsAreGood(t *testing.T) {
	a := newAWSEnv(t)
	stop := a.operator(t)
	a.account(t, awsHostOfURL(a.srv.URL))
	k8s.MustCreate(t, a.request("aws", a.srv.URL))
	k8s.WaitReady(t, a.ns, "aws")
	stop()
	trVersion, secretVersion := k8s.GetTR(t, a.ns, "aws").ResourceVersion, k8s.GetSecret(t, a.ns, "aws").ResourceVersion
	calls := a.srv.AssumeCalls(a.role)

	a.operator(t)
	kube.Eventually(t, 20*time.Second, "the new manager to reconcile", func() bool {
		return reconciledSince(t, a.ns, []string{"aws"})
	})
	time.Sleep(2 * time.Second)
	if n := a.srv.AssumeCalls(a.role) - calls; n != 0 {
		t.Errorf("the restart made %d STS calls", n)
	}
	if k8s.GetTR(t, a.ns, "aws").ResourceVersion != trVersion || k8s.GetSecret(t, a.ns, "aws").ResourceVersion != secretVersion {
		t.Error("the restart wrote the TokenRequest or its Secret")
	}
}

// While STS is down the last good credentials stay, the operator keeps
// trying, and the Secret never holds expired credentials for a second as
// long as STS is back before they expire.
func TestAWSAnOutageKeepsTheLastGoodCredentialsAndNeverAnExpiredOne(t *testing.T) {
	a := newAWSEnv(t)
	short := a.shortLived(t, 60*time.Second)
	a.operator(t)
	a.account(t, awsHostOfURL(short.URL))
	k8s.MustCreate(t, a.request("aws", short.URL))
	k8s.WaitReady(t, a.ns, "aws")
	first, _ := awsWritten(t, k8s.GetSecret(t, a.ns, "aws"))
	short.down.Store(true)

	deadline := time.Now().Add(80 * time.Second)
	var sawFailure bool
	for time.Now().Before(deadline) {
		s := k8s.GetSecret(t, a.ns, "aws")
		keys, exp := awsWritten(t, s)
		now := time.Now()
		if !now.Before(exp) {
			t.Fatalf("the Secret holds credentials that expired at %s (now %s)", exp, now)
		}
		tr := k8s.GetTR(t, a.ns, "aws")
		if c := kube.Condition(tr, v1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			t.Fatalf("Ready is %+v while the credentials are good", c)
		}
		if short.down.Load() {
			if keys != first {
				t.Fatal("the credentials changed while STS was down")
			}
			sawFailure = sawFailure || tr.Status.LastFailureReason == v1.ReasonTokenServiceUnavailable
			if short.failed.Load() >= 2 && sawFailure {
				short.down.Store(false) // the operator kept trying; STS is back
			}
		} else if keys != first {
			if !sawFailure {
				t.Error("the status never recorded the failure")
			}
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no new credentials after the outage (%d failed calls)", short.failed.Load())
}

// The AWS SDK's default configuration loads the operator's Secret as
// kubelet mounts it, in both file forms, and signs a request the test STS
// verifies with the secret key it issued.
func TestAWSSDKsLoadTheMountedSecretAndSignRequestsSTSAccepts(t *testing.T) {
	a := newAWSEnv(t)
	a.operator(t)
	a.account(t, awsHostOfURL(a.srv.URL))
	k8s.MustCreate(t, a.request("aws", a.srv.URL))
	k8s.WaitReady(t, a.ns, "aws")
	mount := awsKubeletMount(t, k8s.GetSecret(t, a.ns, "aws").Data)
	dir := awsSDKEnvironment(t, a.srv)

	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(mount, secretdata.KeyAWSCredentials))
	if arn := awsCallerIdentity(t); arn != "arn:aws:sts::111122223333:assumed-role/"+a.ns+"/"+a.ns+".aws" {
		t.Errorf("shared credentials file: caller %s", arn)
	}

	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	config := fmt.Sprintf("[default]\ncredential_process = cat %s\n", filepath.Join(mount, secretdata.KeyAWSCredentialProcess))
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if arn := awsCallerIdentity(t); !strings.HasSuffix(arn, "/"+a.ns+".aws") {
		t.Errorf("credential_process: caller %s", arn)
	}
	if calls := a.srv.Calls(); calls[len(calls)-1].Action != "GetCallerIdentity" || !calls[len(calls)-1].Signed || calls[len(calls)-1].ErrorCode != "" {
		t.Errorf("last call %+v", calls[len(calls)-1])
	}
}

// awsKubeletMount lays data out as kubelet's atomic writer does: files in a
// timestamped folder, ..data linking to it, each key a link through ..data.
func awsKubeletMount(t *testing.T, data map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	version := filepath.Join(dir, "..2026_12_06_10_00_00.000000001")
	if err := os.Mkdir(version, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(version, k), v, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(version), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// awsSDKEnvironment points the SDK at srv through environment variables
// only, as a pod spec would, and hides the machine's own AWS settings.
func awsSDKEnvironment(t *testing.T, srv *awssts.Server) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), srv.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", awssts.DefaultRegion)
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
	t.Setenv("AWS_CA_BUNDLE", filepath.Join(dir, "ca.pem"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	return dir
}

// awsCallerIdentity loads the SDK's default configuration afresh and returns
// the ARN GetCallerIdentity names.
func awsCallerIdentity(t *testing.T) string {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	out, err := awssdksts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &awssdksts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Arn)
}

// Through a TokenIssuer the issuer fixes the role and the ServiceAccount;
// each TokenRequest gets its own session, and one asking for scopes is
// refused without a call.
func TestAWSThroughATokenIssuer(t *testing.T) {
	a := newAWSEnv(t)
	a.operator(t)
	a.account(t, awsHostOfURL(a.srv.URL))
	ti := &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "aws", Namespace: a.ns}, Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
		AWS:        &v1.AWSTarget{RoleARN: a.role, Endpoint: a.srv.URL},
		Credential: v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "workload"}},
	}}}
	k8s.MustCreate(t, ti)
	waitIssuerReady(t, ti, func() []metav1.Condition { return ti.Status.Conditions })
	k8s.MustCreate(t, issuerRequest(a.ns, "scoped", v1.KindTokenIssuer, "aws", "s3"))
	k8s.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "via-issuer", Namespace: a.ns},
		Spec: v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Name: "aws"}}})
	k8s.WaitReady(t, a.ns, "via-issuer")
	tr := k8s.WaitReason(t, a.ns, "scoped", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonInvalidSpec)
	if msg := kube.Condition(tr, v1.ConditionReady).Message; !strings.Contains(msg, "takes no scopes") {
		t.Errorf("message %q", msg)
	}
	calls := a.srv.Calls()
	if len(calls) != 1 || calls[0].RoleSessionName != a.ns+".via-issuer" {
		t.Errorf("calls %+v, want one for via-issuer's session", calls)
	}
	awsWritten(t, k8s.GetSecret(t, a.ns, "via-issuer"))
}

// An outage that outlasts the credentials turns Ready to Expired when they
// expire, not later, with STS's answer in the message.
func TestAWSCredentialsOutlivedByAnOutageAreReportedExpiredOnTime(t *testing.T) {
	a := newAWSEnv(t)
	short := a.shortLived(t, 20*time.Second)
	a.operator(t)
	a.account(t, awsHostOfURL(short.URL))
	k8s.MustCreate(t, a.request("aws", short.URL))
	k8s.WaitReady(t, a.ns, "aws")
	_, exp := awsWritten(t, k8s.GetSecret(t, a.ns, "aws"))
	short.down.Store(true)
	var tr *v1.TokenRequest
	kube.Eventually(t, 40*time.Second, "Ready=False Expired", func() bool {
		tr = k8s.GetTR(t, a.ns, "aws")
		c := kube.Condition(tr, v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1.ReasonExpired
	})
	if late := time.Since(exp); late > 2*time.Second {
		t.Errorf("Expired %s after the credentials expired", late)
	}
	if msg := kube.Condition(tr, v1.ConditionReady).Message; !strings.Contains(msg, "ServiceUnavailable") {
		t.Errorf("the message lacks STS's answer: %s", msg)
	}
	if short.failed.Load() < 2 {
		t.Errorf("%d attempts during the outage", short.failed.Load())
	}
}
