//go:build linux

// Package metrics_test runs the manager built from this tree as a process
// against a real API server (envtest) and scrapes its metrics endpoint as
// Prometheus does: the flag defaults serve HTTPS only, over HTTP/1.1 only,
// to bearer tokens allowed to get /metrics; --metrics-cert-path serves a
// mounted certificate and picks up its rotation; --enable-http2 allows h2.
package metrics_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/token-operator/token-operator/internal/testing/managerproc"
	"github.com/token-operator/token-operator/internal/testing/testcert"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

var (
	env *testenv.Env
	// bin is the manager binary, kubeconfig acts as its service account.
	bin, kubeconfig string
	// scraper is a token of a service account bound to metrics-reader,
	// stranger one of a service account bound to nothing.
	scraper, stranger string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	work, err := os.MkdirTemp("", "metrics-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(work) }()
	if err := setup(context.Background(), work); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: setting up:", err)
		return 1
	}
	return m.Run()
}

// setup builds the manager, binds its service account to the generated
// roles and metrics_auth_role.yaml, as a deployment does, and makes the
// scraper's and the stranger's tokens.
func setup(ctx context.Context, work string) error {
	var err error
	if bin, err = managerproc.Build(work); err != nil {
		return err
	}
	if kubeconfig, err = env.WriteOperatorKubeconfig(ctx, work); err != nil {
		return err
	}
	operator := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: testenv.OperatorServiceAccount, Namespace: testenv.OperatorNamespace}
	if err := bind(ctx, "metrics_auth_role.yaml", operator); err != nil {
		return err
	}
	const ns = "monitoring"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if scraper, err = serviceAccountToken(ctx, ns, "prometheus"); err != nil {
		return err
	}
	if stranger, err = serviceAccountToken(ctx, ns, "stranger"); err != nil {
		return err
	}
	return bind(ctx, "metrics_reader_role.yaml", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "prometheus", Namespace: ns})
}

// bind creates the ClusterRole of config/rbac/file and binds it to subject.
func bind(ctx context.Context, file string, subject rbacv1.Subject) error {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", file))
	if err != nil {
		return err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{subject},
	}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// serviceAccountToken creates a service account and returns a token for the
// API server's audience, as a Prometheus pod's projected token is.
func serviceAccountToken(ctx context.Context, ns, name string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if err := env.Client.Create(ctx, sa); err != nil {
		return "", err
	}
	req := &authenticationv1.TokenRequest{}
	if err := env.Client.SubResource("token").Create(ctx, sa, req); err != nil {
		return "", err
	}
	return req.Status.Token, nil
}

// startManager runs the manager as its service account with the metrics
// flags at their defaults plus args.
func startManager(t *testing.T, args ...string) *managerproc.Process {
	t.Helper()
	p, err := managerproc.StartSecure(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- manager log (last 50 lines) ---\n%s", p.LogTail(50))
		}
		for _, token := range []string{scraper, stranger} {
			if strings.Contains(p.Log.String(), token) {
				t.Error("the manager logged a bearer token")
			}
		}
	})
	return p
}

// answer is what a GET on /metrics got.
type answer struct {
	status int
	proto  string
	body   string
}

// get fetches /metrics from addr with the scheme, TLS settings and bearer
// token given ("" for none); h2 lets the client negotiate HTTP/2.
func get(scheme, addr string, tlsConfig *tls.Config, h2 bool, token string) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, scheme+"://"+addr+"/metrics", nil)
	if err != nil {
		return answer{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	tr := &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: h2, DisableKeepAlives: true}
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Proto, string(b)}, err
}

// insecure trusts any server certificate, as a scraper of the self-signed
// default does.
func insecure() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the self-signed default certificate
}

// handshake makes a TLS handshake offering protos and returns its state.
func handshake(addr string, cfg *tls.Config, protos ...string) (tls.ConnectionState, error) {
	cfg = cfg.Clone()
	cfg.NextProtos = protos
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState(), nil
}

func TestDefaultMetricsAreHTTPSOnlyHTTP1OnlyAndNeedAToken(t *testing.T) {
	p := startManager(t)
	addr := p.MetricsAddr

	// Plain HTTP gets the TLS server's refusal, never the metrics.
	if a, err := get("http", addr, nil, false, scraper); err == nil && (a.status == http.StatusOK || strings.Contains(a.body, "token_operator_")) {
		t.Errorf("plain HTTP was answered %d with the metrics", a.status)
	}
	for _, c := range []struct {
		what, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a token without metrics-reader", stranger, http.StatusForbidden},
		{"the scraper's token", scraper, http.StatusOK},
	} {
		a, err := get("https", addr, insecure(), true, c.token)
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if a.status != c.want {
			t.Errorf("%s: status %d, want %d", c.what, a.status, c.want)
		}
		if a.proto != "HTTP/1.1" {
			t.Errorf("%s: a client that offers h2 was answered over %s, want HTTP/1.1", c.what, a.proto)
		}
		if c.want == http.StatusOK && !strings.Contains(a.body, "token_operator_build_info") {
			t.Errorf("%s: no token_operator_build_info in the metrics", c.what)
		}
	}

	// ALPN: offered both, the server picks http/1.1; offered h2 alone, it
	// refuses the handshake or picks no protocol, never h2.
	if s, err := handshake(addr, insecure(), "h2", "http/1.1"); err != nil || s.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN offering h2 and http/1.1: %q (%v), want http/1.1", s.NegotiatedProtocol, err)
	}
	if s, err := handshake(addr, insecure(), "h2"); err == nil && s.NegotiatedProtocol == "h2" {
		t.Error("ALPN offering h2 alone negotiated h2")
	}
	// Without --metrics-cert-path the certificate is controller-runtime's,
	// made at start for localhost by a throwaway CA.
	s, err := handshake(addr, insecure())
	if err != nil {
		t.Fatal(err)
	}
	if leaf := s.PeerCertificates[0]; leaf.VerifyHostname("localhost") != nil || !strings.HasPrefix(leaf.Issuer.CommonName, "localhost-ca@") {
		t.Errorf("default certificate for %v issued by %s, want a generated one for localhost", leaf.DNSNames, leaf.Issuer)
	}
}

// certDir lays out a directory as kubelet mounts a Secret volume: the files
// are links through ..data to a timestamped directory, and an update swaps
// ..data at once.
type certDir struct {
	t    *testing.T
	path string
	n    int
}

// write puts leaf's certificate and key under the names given, atomically.
func (d *certDir) write(leaf *testcert.Leaf, certName, keyName string) {
	d.t.Helper()
	d.n++
	ts := fmt.Sprintf("..2026_01_01_%03d", d.n)
	if err := os.Mkdir(filepath.Join(d.path, ts), 0o700); err != nil {
		d.t.Fatal(err)
	}
	for name, data := range map[string][]byte{certName: testcert.CertPEM(leaf.Cert), keyName: testcert.PKCS8PEM(d.t, leaf.Key)} {
		if err := os.WriteFile(filepath.Join(d.path, ts, name), data, 0o600); err != nil {
			d.t.Fatal(err)
		}
		link := filepath.Join(d.path, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				d.t.Fatal(err)
			}
		}
	}
	old, _ := os.Readlink(filepath.Join(d.path, "..data"))
	tmp := filepath.Join(d.path, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.path, "..data")); err != nil {
		d.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(d.path, old)); err != nil {
			d.t.Fatal(err)
		}
	}
}

// servedCert is the leaf the server at addr presents to a client that
// verifies it against pool as serverName.
func servedCert(addr string, pool *x509.CertPool, serverName string) (*x509.Certificate, error) {
	s, err := handshake(addr, &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	return s.PeerCertificates[0], nil
}

func newCA(t *testing.T, cn string) *testcert.CA {
	t.Helper()
	ca, err := testcert.NewCA(cn)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func newLeaf(t *testing.T, ca *testcert.CA) *testcert.Leaf {
	t.Helper()
	leaf, err := ca.Server("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestMetricsCertPathIsServedAndItsRotationPickedUp(t *testing.T) {
	dir := &certDir{t: t, path: t.TempDir()}
	ca := newCA(t, "metrics-ca")
	first := newLeaf(t, ca)
	dir.write(first, "tls.crt", "tls.key")
	p := startManager(t, "--metrics-cert-path", dir.path)
	addr := p.MetricsAddr

	// A scraper that verifies the certificate against the CA, by name.
	verifying := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	got, err := servedCert(addr, ca.Pool(), "localhost")
	if err != nil {
		t.Fatalf("verifying the served certificate against the CA: %v", err)
	}
	if !bytes.Equal(got.Raw, first.Cert.Raw) {
		t.Errorf("served certificate %v, want the one in --metrics-cert-path (serial %v)", got.SerialNumber, first.Cert.SerialNumber)
	}
	if a, err := get("https", addr, verifying, true, scraper); err != nil || a.status != http.StatusOK || a.proto != "HTTP/1.1" {
		t.Errorf("a verifying scraper: %+v (%v), want 200 over HTTP/1.1", a.status, err)
	}

	// cert-manager renews into the Secret, kubelet swaps the volume's
	// files: the server presents the new certificate, without a restart.
	rotated := newCA(t, "rotated-ca")
	second := newLeaf(t, rotated)
	dir.write(second, "tls.crt", "tls.key")
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := servedCert(addr, rotated.Pool(), "localhost")
		if err == nil && bytes.Equal(got.Raw, second.Cert.Raw) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated certificate was not served within 30 s (last: %v)", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("rotated certificate served %s after the swap", time.Until(deadline.Add(-30*time.Second)).Abs().Round(100*time.Millisecond))
	verifying.RootCAs = rotated.Pool()
	if a, err := get("https", addr, verifying, true, scraper); err != nil || a.status != http.StatusOK {
		t.Errorf("a scraper trusting the new CA: %+v (%v), want 200", a.status, err)
	}
	if p.Cmd.ProcessState != nil {
		t.Fatal("the manager exited")
	}
}

func TestEnableHTTP2WithCustomCertFileNames(t *testing.T) {
	dir := &certDir{t: t, path: t.TempDir()}
	ca := newCA(t, "metrics-ca")
	leaf := newLeaf(t, ca)
	dir.write(leaf, "metrics.pem", "metrics-key.pem")
	p := startManager(t, "--enable-http2", "--metrics-cert-path", dir.path, "--metrics-cert-name", "metrics.pem", "--metrics-cert-key", "metrics-key.pem")

	verifying := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if s, err := handshake(p.MetricsAddr, verifying, "h2", "http/1.1"); err != nil || s.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN with --enable-http2: %q (%v), want h2", s.NegotiatedProtocol, err)
	}
	a, err := get("https", p.MetricsAddr, verifying, true, scraper)
	if err != nil || a.status != http.StatusOK || a.proto != "HTTP/2.0" {
		t.Errorf("scrape with --enable-http2: status %d over %s (%v), want 200 over HTTP/2.0", a.status, a.proto, err)
	}
	if a, err := get("https", p.MetricsAddr, verifying, true, ""); err != nil || a.status != http.StatusUnauthorized {
		t.Errorf("no token over h2: status %d (%v), want 401", a.status, err)
	}
}

func TestPlainHTTPNeedsMetricsSecureFalse(t *testing.T) {
	p := startManager(t, "--metrics-secure=false")
	if a, err := get("http", p.MetricsAddr, nil, false, ""); err != nil || a.status != http.StatusOK || !strings.Contains(a.body, "token_operator_build_info") {
		t.Errorf("plain HTTP with --metrics-secure=false: status %d (%v), want the metrics", a.status, err)
	}
	if _, err := handshake(p.MetricsAddr, insecure()); err == nil {
		t.Error("a TLS handshake succeeded with --metrics-secure=false")
	}
}

func TestBadMetricsCertSettingsStopTheStart(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		what string
		args []string
		want string
	}{
		{"no certificate in the directory", []string{"--metrics-cert-path", empty}, "--metrics-cert-path"},
		{"a certificate with plain HTTP", []string{"--metrics-cert-path", empty, "--metrics-secure=false"}, "--metrics-cert-path needs --metrics-secure"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "--metrics-bind-address", managerproc.FreeAddr(),
			"--health-probe-bind-address", managerproc.FreeAddr()}, c.args...)...).CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: exit %v, output %q; want a failed start naming %q", c.what, err, out, c.want)
		}
	}
}
