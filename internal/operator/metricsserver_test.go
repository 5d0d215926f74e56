package operator

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/token-operator/token-operator/internal/testing/testcert"
)

// tlsConfigOf applies opts to the config controller-runtime starts from.
func tlsConfigOf(opts []func(*tls.Config)) *tls.Config {
	c := &tls.Config{NextProtos: []string{"h2"}} //nolint:gosec // only inspected
	for _, o := range opts {
		o(c)
	}
	return c
}

func TestMetricsServerDefaultsAreSecureAndHTTP1Only(t *testing.T) {
	o := Defaults()
	opts, watcher, err := metricsServerOptions(o)
	if err != nil || watcher != nil {
		t.Fatalf("defaults: watcher %v, error %v", watcher, err)
	}
	if opts.BindAddress != ":8443" || !opts.SecureServing || opts.FilterProvider == nil {
		t.Errorf("defaults: bind %q, secure %v, filter %v; want :8443, HTTPS, the token filter", opts.BindAddress, opts.SecureServing, opts.FilterProvider != nil)
	}
	if c := tlsConfigOf(opts.TLSOpts); !slices.Equal(c.NextProtos, []string{"http/1.1"}) || c.GetCertificate != nil {
		t.Errorf("defaults: ALPN %v, own certificate %v; want http/1.1 only and the self-signed one", c.NextProtos, c.GetCertificate != nil)
	}

	o.EnableHTTP2 = true
	opts, _, _ = metricsServerOptions(o)
	if c := tlsConfigOf(opts.TLSOpts); !slices.Contains(c.NextProtos, "h2") {
		t.Errorf("--enable-http2: ALPN %v, want h2 offered", c.NextProtos)
	}

	o.MetricsSecure = false
	opts, _, err = metricsServerOptions(o)
	if err != nil || opts.SecureServing || opts.FilterProvider != nil {
		t.Errorf("--metrics-secure=false: secure %v, filter %v, error %v; want plain HTTP", opts.SecureServing, opts.FilterProvider != nil, err)
	}
}

func TestMetricsCertPathIsReadAtStart(t *testing.T) {
	dir := t.TempDir()
	o := Defaults()
	o.MetricsCertPath = dir
	if _, _, err := metricsServerOptions(o); err == nil || !strings.Contains(err.Error(), "--metrics-cert-path") {
		t.Errorf("an empty --metrics-cert-path: %v, want an error naming the flag", err)
	}
	ca, err := testcert.NewCA("metrics-ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server("localhost")
	if err != nil {
		t.Fatal(err)
	}
	o.MetricsCertName, o.MetricsCertKey = "cert.pem", "key.pem"
	for name, data := range map[string][]byte{"cert.pem": testcert.CertPEM(leaf.Cert), "key.pem": testcert.PKCS8PEM(t, leaf.Key)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, watcher, err := metricsServerOptions(o)
	if err != nil || watcher == nil {
		t.Fatalf("a certificate in --metrics-cert-path: watcher %v, error %v", watcher, err)
	}
	got, err := tlsConfigOf(opts.TLSOpts).GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Certificate[0], leaf.Cert.Raw) {
		t.Error("served certificate is not the one in --metrics-cert-path")
	}

	o.MetricsSecure = false
	if _, _, err := metricsServerOptions(o); err == nil || !strings.Contains(err.Error(), "needs --metrics-secure") {
		t.Errorf("--metrics-cert-path with plain HTTP: %v, want refused", err)
	}
}
