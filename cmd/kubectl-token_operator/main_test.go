package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testenv"
	"github.com/token-operator/token-operator/internal/version"
)

var (
	k8s *kube.Cluster
	// kubeconfig is the path of an administrator's kubeconfig for the
	// plugin run through its command line.
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = &kube.Cluster{Client: env.Client, NamespacePrefix: "plugin-"}
	dir, err := os.MkdirTemp("", "kubectl-token-operator-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if kubeconfig, err = env.WriteKubeconfig(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// fakeToken is the access token the tests put in output Secrets; the plugin
// must never print it.
const fakeToken = "eyFAKE-access-token-that-must-never-be-printed"

// newTR creates a TokenRequest with a token URL and a client secret (no
// operator runs, so neither is used) and returns it.
func newTR(t *testing.T, ns, name, secretName string) *v1.TokenRequest {
	t.Helper()
	tr := &v1.TokenRequest{}
	// From YAML, so that the test does not depend on the Go shape of the spec.
	manifest := fmt.Sprintf(`
metadata: {namespace: %s, name: %s}
spec:
  tokenURL: https://login.example.com/oauth2/token
  clientID: orders
  credential: {clientSecret: {name: orders-credential}}
  secretName: %q
`, ns, name, secretName)
	if err := yaml.Unmarshal([]byte(manifest), tr); err != nil {
		t.Fatal(err)
	}
	k8s.MustCreate(t, tr)
	return tr
}

// setStatus writes the status of a TokenRequest as the operator would.
func setStatus(t *testing.T, tr *v1.TokenRequest, st v1.TokenRequestStatus) {
	t.Helper()
	tr.Status = st
	if err := k8s.Status().Update(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
}

func at(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

// execute runs the plugin's command line against the test API server.
func execute(t *testing.T, now time.Time, args ...string) (string, error) {
	t.Helper()
	out, _, err := executeStderr(t, now, args...)
	return out, err
}

// executeStderr is execute that also returns what went to stderr.
func executeStderr(t *testing.T, now time.Time, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut, func() time.Time { return now })
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	err := cmd.Execute()
	if err != nil {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), errOut.String(), err
}

func TestCommandLine(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ns := k8s.NewNamespace(t)
	tr := newTR(t, ns, "orders-api", "")
	setStatus(t, tr, v1.TokenRequestStatus{
		ObservedGeneration: tr.Generation,
		SecretName:         "orders-api",
		ExpiresAt:          at(now.Add(41 * time.Minute)),
		Conditions: []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: v1.ReasonIssued, Message: "token issued", LastTransitionTime: metav1.NewTime(now)}},
	})

	out, err := execute(t, now, "status", "-n", ns, "orders-api")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ns + "/orders-api", "Issued", "token issued", "in 41m"} {
		if !strings.Contains(out, want) {
			t.Errorf("status printed:\n%s\nwant it to contain %q", out, want)
		}
	}

	out, err = execute(t, now, "status", "--all-namespaces")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, ns) {
		t.Errorf("status -A printed:\n%s\nwant a NAMESPACE column with %s", out, ns)
	}

	if _, err := execute(t, now, "status", "-A", "orders-api"); err == nil {
		t.Error("status -A NAME succeeded, want an error")
	}
	if _, err := execute(t, now, "-n", ns, "renew"); err == nil {
		t.Error("renew without NAME or --all succeeded, want an error")
	}

	out, err = execute(t, now, "-n", ns, "renew", "--all")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, ns+"/orders-api") {
		t.Errorf("renew --all printed %q, want it to name %s/orders-api", out, ns)
	}
	if got := k8s.GetTR(t, ns, "orders-api").Annotations[v1.AnnotationRefreshRequestedAt]; got != now.Format(time.RFC3339) {
		t.Errorf("refresh-requested-at = %q, want %q", got, now.Format(time.RFC3339))
	}
}

func TestVersion(t *testing.T) {
	saved := version.Version
	version.Version = "v9.8.7-plugin"
	defer func() { version.Version = saved }()
	out, err := execute(t, time.Now(), "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"v9.8.7-plugin", "go1."} {
		if !strings.Contains(out, want) {
			t.Errorf("version printed %q, want it to contain %q", out, want)
		}
	}
}

// secretWithToken creates an output Secret as the operator writes it, with
// fakeToken in it.
func secretWithToken(t *testing.T, ns, name string, issued, expires, refresh time.Time) {
	t.Helper()
	k8s.MustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{
			v1.AnnotationIssuedAt:  issued.Format(time.RFC3339Nano),
			v1.AnnotationExpiresAt: expires.Format(time.RFC3339),
			v1.AnnotationRefreshAt: refresh.Format(time.RFC3339),
		}},
		Data: map[string][]byte{
			v1.KeyAccessToken: []byte(fakeToken),
			v1.KeyTokenType:   []byte("Bearer"),
			v1.KeyExpiresAt:   []byte(expires.Format(time.RFC3339)),
		},
	})
}
