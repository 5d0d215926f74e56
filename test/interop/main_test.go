// Package interop_test runs the whole operator (manager, reconciler, token
// cache and engine) against a real API server (envtest) and a real,
// certified OAuth2 server (Ory Hydra over TLS on loopback), and checks the
// tokens it writes with Hydra's own introspection; zitadelop_test.go does the
// same against a second server built on zitadel/oidc's op package.
package interop_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/hydra"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/syncbuf"
	"github.com/token-operator/token-operator/internal/testing/testcert"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

var (
	k8s *kube.Cluster
	srv *hydra.Server
	// hydraHost is Hydra's public host:port, the value of the consent
	// annotation on every credential Secret.
	hydraHost string
	// operatorLogs holds everything the operator logged, shown when a test fails.
	operatorLogs syncbuf.Buffer
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// V(1) too: the reconciler logs each decision there, which explains a failure.
	ctrl.SetLogger(zap.New(zap.WriteTo(&operatorLogs), zap.Level(zapcore.Level(-1))))
	// No Hydra is a failure, never a skip: this package is the proof that
	// the operator gets tokens from a real OAuth2 server.
	bin, err := hydra.BinaryPath()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: no Hydra binary:", err)
		return 1
	}
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = &kube.Cluster{Client: env.Client, NamespacePrefix: "interop-", Wait: 30 * time.Second}

	startCtx, cancelStart := context.WithTimeout(context.Background(), time.Minute)
	defer cancelStart()
	srv, err = hydra.Start(startCtx, bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting Hydra:", err)
		return 1
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping Hydra:", err)
		}
	}()
	u, err := url.Parse(srv.PublicURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	hydraHost = u.Host
	stopZ, err := startZitadelOP(startCtx, env.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting zitadelop:", err)
		return 1
	}
	defer stopZ()

	stop, err := startOperator(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting the operator:", err)
		return 1
	}
	defer stop()
	return m.Run()
}

// startOperator runs the operator in this process, trusting Hydra's CA, as
// cmd/manager would with the documented defaults.
func startOperator(env *testenv.Env) (stop func(), err error) {
	o := operator.Defaults()
	o.MetricsBindAddress = "0"
	o.HealthProbeBindAddress = "0"
	o.RootCAs = operatorRoots()
	o.SkipNameValidation = true
	// Hydra's 15 s tokens are shorter than the default floor of 2 m, which
	// would refresh them at half their life; 3 s keeps the usual schedule.
	o.MinRemainingLifetime = 3 * time.Second
	o.TokenRequestTimeout = 10 * time.Second
	o.ClusterResourceNamespace = testenv.OperatorNamespace
	ctx, cancel := context.WithCancel(context.Background())
	// As its service account, bound to the generated roles only.
	cfg, err := env.OperatorConfig(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	mgr, err := operator.NewManager(ctx, cfg, o)
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}, nil
}

// endpoint is how a TokenRequest names Hydra.
type endpoint struct {
	name string
	set  func(*v1.TokenRequestSpec)
}

func endpoints() []endpoint {
	return []endpoint{
		{"through the issuer URL and discovery", func(s *v1.TokenRequestSpec) { s.IssuerURL = srv.IssuerURL() }},
		{"through the token URL", func(s *v1.TokenRequestSpec) { s.TokenURL = srv.TokenURL() }},
	}
}

// consent is the annotation that lets a credential go to Hydra.
func consent() map[string]string {
	return map[string]string{v1.AnnotationAllowedIssuers: hydraHost}
}

// clientSecretCredential creates a Secret holding a client secret.
func clientSecretCredential(t *testing.T, ns, name, secret string) {
	t.Helper()
	k8s.MustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: consent()},
		StringData: map[string]string{"clientSecret": secret},
	})
}

// certificateCredential creates a kubernetes.io/tls Secret with a
// self-signed certificate for key, and returns the JWK Hydra needs to verify
// the operator's assertions: the engine names the key (kid) by the
// certificate's SHA-256 thumbprint.
func certificateCredential(t *testing.T, ns, name string, key crypto.Signer, alg string) jose.JSONWebKey {
	t.Helper()
	cert := testcert.SelfSigned(t, key, "token-operator interop client", testcert.WithKeyUsage(x509.KeyUsageDigitalSignature))
	k8s.MustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: consent()},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       testcert.CertPEM(cert),
			corev1.TLSPrivateKeyKey: testcert.PKCS8PEM(t, key),
		},
	})
	return hydra.VerificationKey(cert, alg)
}

// tokenRequest is a TokenRequest for clientID with a client-secret credential.
func tokenRequest(ns, name, clientID string, scopes []string, ep endpoint) *v1.TokenRequest {
	tr := &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.TokenRequestSpec{
			ClientID:   clientID,
			Scopes:     scopes,
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name + "-cred"}},
		},
	}
	ep.set(&tr.Spec)
	return tr
}

// createTokenRequest creates tr and deletes it when the test ends, so that
// its refreshes stop and cannot show up in a later test's request count.
func createTokenRequest(t *testing.T, tr *v1.TokenRequest) {
	t.Helper()
	k8s.MustCreate(t, tr)
	t.Cleanup(func() {
		if err := k8s.Delete(context.Background(), tr); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting TokenRequest: %v", err)
		}
		if t.Failed() {
			t.Logf("operator log about %s:\n%s", tr.Name, logsAbout(tr.Name, 40))
			t.Logf("hydra log tail:\n%s", tail(srv.Logs(), 3000))
		}
	})
}

// assertActiveFor checks with Hydra's admin introspection that token is an
// active access token of clientID.
func assertActiveFor(t *testing.T, token, clientID string) {
	t.Helper()
	if token == "" {
		t.Fatal("the Secret holds no access_token")
	}
	active, got, err := srv.Introspect(context.Background(), token)
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	if !active || got != clientID {
		t.Fatalf("Hydra says active=%v client_id=%q, want an active token of %q", active, got, clientID)
	}
}

// tokenCalls counts the token requests Hydra has started handling.
func tokenCalls() int {
	n := 0
	for _, line := range strings.Split(srv.Logs(), "\n") {
		if strings.Contains(line, "started handling request") &&
			strings.Contains(line, "method:POST") && strings.Contains(line, "path:/oauth2/token ") {
			n++
		}
	}
	return n
}

// logsAbout returns the last n lines the operator logged about the
// TokenRequest name.
func logsAbout(name string, n int) string {
	var lines []string
	for _, l := range strings.Split(operatorLogs.String(), "\n") {
		if strings.Contains(l, `"name":"`+name+`"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
