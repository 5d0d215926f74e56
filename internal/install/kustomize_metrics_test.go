package install_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// certManagerCRDs are minimal definitions of cert-manager's Certificate and
// Issuer, enough to apply those objects.
const certManagerCRDs = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: certificates.cert-manager.io
spec:
  group: cert-manager.io
  names: {kind: Certificate, listKind: CertificateList, plural: certificates, singular: certificate}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            required: [secretName, issuerRef]
            x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: issuers.cert-manager.io
spec:
  group: cert-manager.io
  names: {kind: Issuer, listKind: IssuerList, plural: issuers, singular: issuer}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
`

func installCertManagerCRDs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	objs, err := decodeObjects([]byte(certManagerCRDs))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if err := k8s.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, kind := range []string{"Certificate", "Issuer"} {
		for {
			_, err := k8s.RESTMapper().RESTMapping(schema.GroupKind{Group: "cert-manager.io", Kind: kind}, "v1")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became known: %v", kind, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// uncommentMarked uncomments the YAML of the comment blocks that begin with
// a line holding marker, as a user does: "#- x" and "#  x: y" lose their
// "#", while prose ("# text") stays. A block ends at the first line that is not a comment.
func uncommentMarked(t *testing.T, text, marker string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	in, changed := false, 0
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "#") && strings.Contains(l, marker):
			in = true
		case !strings.HasPrefix(l, "#"):
			in = false
		case in && (len(l) > 1 && l[1] != ' ' || strings.HasPrefix(l, "#  ")):
			lines[i] = l[1:]
			changed++
		}
	}
	if changed == 0 {
		t.Fatalf("no commented-out YAML after %s", marker)
	}
	return strings.Join(lines, "\n")
}

// configWithMetricsCerts is configWithOptionalParts with [METRICS-WITH-CERTS]
// commented in too.
func configWithMetricsCerts(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := configWithOptionalParts(t)
	k, err := mem.ReadFile("/config/default/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteFile("/config/default/kustomization.yaml", []byte(uncommentMarked(t, string(k), "[METRICS-WITH-CERTS]"))); err != nil {
		t.Fatal(err)
	}
	return mem
}

func TestKustomizeMetricsSecureByDefault(t *testing.T) {
	objs := kustomize(t, filesys.MakeFsOnDisk(), repoPath("config", "default"))
	d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "token-operator-controller-manager"))
	c := d.Spec.Template.Spec.Containers[0]
	// The flag defaults serve HTTPS with authentication: no flag needed, and
	// none may turn it off.
	containsAll(t, "kustomize Deployment", c.Args, "--metrics-bind-address=:8443")
	containsNone(t, "kustomize Deployment", c.Args, "--metrics-secure", "--metrics-cert-path", "--enable-http2")
	for _, kind := range []string{"Certificate", "Issuer"} {
		if len(ofKind(objs, kind)) != 0 {
			t.Errorf("a %s by default: it needs commenting in", kind)
		}
	}
}

func TestKustomizeMetricsWithCertManager(t *testing.T) {
	installCertManagerCRDs(t)
	objs := kustomize(t, configWithMetricsCerts(t), "/config/default")
	applyDryRun(t, "kustomize config/default with [METRICS-WITH-CERTS]", objs, "default")

	svc := convert[corev1.Service](t, find(t, objs, "Service", "token-operator-controller-manager-metrics-service"))
	host := svc.Name + "." + svc.Namespace + ".svc"
	cert := find(t, objs, "Certificate", "token-operator-metrics-certs")
	dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if !slices.Equal(dnsNames, []string{host, host + ".cluster.local"}) {
		t.Errorf("Certificate dnsNames %v, want the metrics Service's %s", dnsNames, host)
	}
	issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
	find(t, objs, "Issuer", issuer)
	secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")

	d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "token-operator-controller-manager"))
	c := d.Spec.Template.Spec.Containers[0]
	checkArgsAreFlags(t, "kustomize Deployment", c.Args)
	checkMountsCertSecret(t, "kustomize Deployment", d.Spec.Template.Spec, c, secret)
	checkRestricted(t, "kustomize Deployment", d.Spec.Template.Spec)

	sm := find(t, objs, "ServiceMonitor", "token-operator-controller-manager-metrics-monitor")
	checkVerifiesWithSecretCA(t, "kustomize ServiceMonitor", sm, host, secret)

	// Without ../prometheus the replacements' ServiceMonitor target is
	// absent, which must not break the build.
	mem := configWithMetricsCerts(t)
	k, _ := mem.ReadFile("/config/default/kustomization.yaml")
	if err := mem.WriteFile("/config/default/kustomization.yaml", []byte(strings.Replace(string(k), "\n- ../prometheus\n", "\n#- ../prometheus\n", 1))); err != nil {
		t.Fatal(err)
	}
	objs = kustomize(t, mem, "/config/default")
	if len(ofKind(objs, "ServiceMonitor")) != 0 {
		t.Fatal("../prometheus still included")
	}
	cert = find(t, objs, "Certificate", "token-operator-metrics-certs")
	if dnsNames, _, _ = unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames"); len(dnsNames) == 0 || dnsNames[0] != host {
		t.Errorf("without ../prometheus, Certificate dnsNames %v, want %s first", dnsNames, host)
	}
}

// checkMountsCertSecret asserts the pod mounts secret read-only and passes
// its directory as --metrics-cert-path, and nothing turns HTTPS off.
func checkMountsCertSecret(t *testing.T, source string, pod corev1.PodSpec, c corev1.Container, secret string) {
	t.Helper()
	var volume string
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			volume = v.Name
		}
	}
	if volume == "" || secret == "" {
		t.Fatalf("%s: no volume of the certificate's Secret %q: %+v", source, secret, pod.Volumes)
	}
	var path string
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.ReadOnly {
			path = m.MountPath
		}
	}
	if path == "" {
		t.Fatalf("%s: volume %s is not mounted read-only: %+v", source, volume, c.VolumeMounts)
	}
	containsAll(t, source, c.Args, "--metrics-cert-path="+path)
	containsNone(t, source, c.Args, "--metrics-secure=false")
}

// checkVerifiesWithSecretCA asserts a ServiceMonitor scrapes https and
// verifies the server as host against ca.crt of secret.
func checkVerifiesWithSecretCA(t *testing.T, source string, sm *unstructured.Unstructured, host, secret string) {
	t.Helper()
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("%s endpoints: %v", source, endpoints)
	}
	ep := endpoints[0].(map[string]any)
	tls, _, _ := unstructured.NestedMap(ep, "tlsConfig")
	want := map[string]any{"serverName": host, "insecureSkipVerify": false, "ca": map[string]any{"secret": map[string]any{"name": secret, "key": "ca.crt"}}}
	if ep["scheme"] != "https" || fmt.Sprint(tls) != fmt.Sprint(want) {
		t.Errorf("%s: scheme %v, tlsConfig %v; want https and %v", source, ep["scheme"], tls, want)
	}
}
