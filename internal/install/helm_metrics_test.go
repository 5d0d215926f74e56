package install_test

import (
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// serviceMonitorEndpoint is the ServiceMonitor's only endpoint.
func serviceMonitorEndpoint(t *testing.T, r rendered, name string) map[string]any {
	t.Helper()
	endpoints, _, _ := unstructured.NestedSlice(find(t, r.objects, "ServiceMonitor", name).Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints: %v", endpoints)
	}
	return endpoints[0].(map[string]any)
}

func TestChartMetricsDefaults(t *testing.T) {
	r := renderChart(t, "token-operator", "token-operator-system", map[string]any{
		"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
	})
	_, c := chartDeployment(t, r, "token-operator")
	containsAll(t, "chart Deployment", c.Args, "--metrics-secure")
	containsNone(t, "chart Deployment", c.Args, "--metrics-secure=false", "--enable-http2", "--metrics-cert-path")
	for _, kind := range []string{"Certificate", "Issuer"} {
		if got := ofKind(r.objects, kind); len(got) != 0 {
			t.Errorf("a %s by default", kind)
		}
	}
	// The self-signed certificate cannot be verified; the token is
	// Prometheus' own.
	ep := serviceMonitorEndpoint(t, r, "token-operator")
	if ep["scheme"] != "https" || !reflect.DeepEqual(ep["tlsConfig"], map[string]any{"insecureSkipVerify": true}) ||
		ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" || ep["authorization"] != nil {
		t.Errorf("ServiceMonitor endpoint: %v", ep)
	}
	// Without honorLabels Prometheus renames the series' namespace label and
	// the alerts and dashboard group by the operator's namespace instead.
	if ep["honorLabels"] != true {
		t.Errorf("ServiceMonitor endpoint without honorLabels: true: %v", ep)
	}
}

func TestChartMetricsWithCertManager(t *testing.T) {
	const ns = "platform-metrics"
	ensureNamespace(t, ns, restricted)
	installCertManagerCRDs(t)

	t.Run("self-signed Issuer, verified by the ServiceMonitor", func(t *testing.T) {
		r := renderChart(t, "tokens", ns, map[string]any{"metrics": map[string]any{
			"certManager":    map[string]any{"enabled": true, "duration": "2160h", "renewBefore": "360h"},
			"serviceMonitor": map[string]any{"enabled": true},
		}})
		applyDryRun(t, "chart with metrics.certManager", r.objects, ns)
		const full = "tokens-token-operator"
		svc := convert[corev1.Service](t, find(t, r.objects, "Service", full+"-metrics"))
		host := svc.Name + "." + ns + ".svc"
		cert := find(t, r.objects, "Certificate", full+"-metrics")
		dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		if !slices.Equal(dnsNames, []string{host, host + ".cluster.local"}) {
			t.Errorf("Certificate dnsNames %v, want the metrics Service's %s", dnsNames, host)
		}
		issuerRef, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "issuerRef")
		issuer := find(t, r.objects, "Issuer", issuerRef["name"])
		if selfSigned, ok, _ := unstructured.NestedMap(issuer.Object, "spec", "selfSigned"); !ok || selfSigned == nil || issuerRef["kind"] != "Issuer" {
			t.Errorf("issuerRef %v, Issuer %v: want the chart's self-signed Issuer", issuerRef, issuer.Object["spec"])
		}
		if d, _, _ := unstructured.NestedString(cert.Object, "spec", "duration"); d != "2160h" {
			t.Errorf("Certificate duration %q", d)
		}
		secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")

		d, c := chartDeployment(t, r, full)
		checkArgsAreFlags(t, "chart Deployment", c.Args)
		checkMountsCertSecret(t, "chart Deployment", d.Spec.Template.Spec, *c, secret)
		containsAll(t, "chart Deployment", c.Args, "--metrics-secure")
		checkVerifiesWithSecretCA(t, "chart ServiceMonitor", find(t, r.objects, "ServiceMonitor", full), host, secret)
	})

	t.Run("a ClusterIssuer of the platform", func(t *testing.T) {
		r := renderChart(t, "tokens", ns, map[string]any{"metrics": map[string]any{
			"certManager": map[string]any{"enabled": true, "issuerRef": map[string]any{"name": "corporate-ca"}},
		}})
		applyDryRun(t, "chart with metrics.certManager.issuerRef", r.objects, ns)
		if got := ofKind(r.objects, "Issuer"); len(got) != 0 {
			t.Errorf("an Issuer with issuerRef set: %s", describe(got[0]))
		}
		issuerRef, _, _ := unstructured.NestedStringMap(find(t, r.objects, "Certificate", "tokens-token-operator-metrics").Object, "spec", "issuerRef")
		if want := map[string]string{"name": "corporate-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}; !reflect.DeepEqual(issuerRef, want) {
			t.Errorf("issuerRef %v, want %v", issuerRef, want)
		}
	})
}

func TestChartMetricsWithAnExistingSecretAuthorizationAndHTTP2(t *testing.T) {
	const ns = "platform-metrics"
	ensureNamespace(t, ns, restricted)
	authorization := map[string]any{"type": "Bearer", "credentials": map[string]any{"name": "prometheus-metrics-token", "key": "token"}}
	r := renderChart(t, "tokens", ns, map[string]any{"metrics": map[string]any{
		"certSecret":     "metrics-tls",
		"enableHTTP2":    true,
		"serviceMonitor": map[string]any{"enabled": true, "authorization": authorization},
	}})
	applyDryRun(t, "chart with metrics.certSecret", r.objects, ns)
	if got := ofKind(r.objects, "Certificate"); len(got) != 0 {
		t.Errorf("a Certificate with certSecret")
	}
	d, c := chartDeployment(t, r, "tokens-token-operator")
	checkArgsAreFlags(t, "chart Deployment", c.Args)
	checkMountsCertSecret(t, "chart Deployment", d.Spec.Template.Spec, *c, "metrics-tls")
	containsAll(t, "chart Deployment", c.Args, "--enable-http2")
	sm := find(t, r.objects, "ServiceMonitor", "tokens-token-operator")
	checkVerifiesWithSecretCA(t, "chart ServiceMonitor", sm, "tokens-token-operator-metrics."+ns+".svc", "metrics-tls")
	ep := serviceMonitorEndpoint(t, r, "tokens-token-operator")
	if !reflect.DeepEqual(ep["authorization"], authorization) || ep["bearerTokenFile"] != nil {
		t.Errorf("ServiceMonitor endpoint: authorization %v, bearerTokenFile %v; want %v alone", ep["authorization"], ep["bearerTokenFile"], authorization)
	}
}

func TestChartMetricsServiceMonitorTLSConfigValue(t *testing.T) {
	tlsConfig := map[string]any{"serverName": "metrics.example.com", "ca": map[string]any{"configMap": map[string]any{"name": "corporate-ca", "key": "ca.crt"}}}
	r := renderChart(t, "tokens", "platform-metrics", map[string]any{"metrics": map[string]any{
		"certManager":    map[string]any{"enabled": true},
		"serviceMonitor": map[string]any{"enabled": true, "tlsConfig": tlsConfig},
	}})
	if ep := serviceMonitorEndpoint(t, r, "tokens-token-operator"); !reflect.DeepEqual(ep["tlsConfig"], tlsConfig) {
		t.Errorf("ServiceMonitor tlsConfig %v, want the value %v", ep["tlsConfig"], tlsConfig)
	}
}
