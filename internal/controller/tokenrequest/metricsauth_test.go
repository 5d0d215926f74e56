package tokenrequest_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

func TestSecureMetricsAnswerOnlyTokensAllowedToGetMetrics(t *testing.T) {
	// The suite binds only role.yaml; a deployment also binds the metrics auth role.
	bindOperatorToMetricsAuthRole(t)
	addr := freePort(t)
	startManager(t, func(o *operator.Options) {
		o.MetricsSecure = true
		o.MetricsBindAddress = addr
	})
	ns := k8s.NewNamespace(t)
	reader := serviceAccountToken(t, ns, "scraper")
	stranger := serviceAccountToken(t, ns, "stranger")
	allowMetricsTo(t, ns, "scraper")

	// A reconciled token gives the operator's own series something to show.
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "metered", clientID, "cred"))
	k8s.WaitReady(t, ns, "metered")

	// RBAC and the server start take a moment; wait for the allowed scraper.
	kube.Eventually(t, 20*time.Second, "the bound scraper gets the operator's metrics", func() bool {
		code, body, err := secureGet(addr, reader)
		return err == nil && code == http.StatusOK && strings.Contains(body, "token_operator_")
	})
	garbage := "not-a-token-" + randomHex(8)
	for _, c := range []struct {
		what, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a token without the binding", stranger, http.StatusForbidden},
		{"a garbage token", garbage, http.StatusUnauthorized},
		{"the bound token again (cached)", reader, http.StatusOK},
	} {
		code, _, err := secureGet(addr, c.token)
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if code != c.want {
			t.Errorf("%s: status %d, want %d", c.what, code, c.want)
		}
	}

	// A flood of uncached tokens is turned away past the review rate, and
	// the cached scraper is still served.
	var wg sync.WaitGroup
	var refused, reviewed atomic.Int32
	for i := range 40 {
		wg.Go(func() {
			code, _, err := secureGet(addr, fmt.Sprintf("flood-%d-%s", i, randomHex(8)))
			switch {
			case err != nil:
				t.Errorf("flood: %v", err)
			case code == http.StatusTooManyRequests:
				refused.Add(1)
			case code == http.StatusUnauthorized:
				reviewed.Add(1)
			default:
				t.Errorf("flood: status %d", code)
			}
		})
	}
	wg.Wait()
	t.Logf("40 uncached tokens at once: %d reviewed (401), %d answered 429", reviewed.Load(), refused.Load())
	if refused.Load() == 0 {
		t.Errorf("40 uncached tokens at once: all %d reviewed, none answered 429", reviewed.Load())
	}
	if code, _, err := secureGet(addr, reader); err != nil || code != http.StatusOK {
		t.Errorf("the bound scraper during the flood: status %d (%v), want 200 from the cache", code, err)
	}

	// A denial is reused for 30 s, as controller-runtime's filters do: a
	// binding made now is honoured once it expires, not before.
	allowMetricsTo(t, ns, "stranger")
	kube.Eventually(t, 10*time.Second, "the API server allows the stranger now", func() bool {
		return canGetMetrics(t, ns, "stranger")
	})
	if code, _, err := secureGet(addr, stranger); err != nil || code != http.StatusForbidden {
		t.Errorf("the stranger just bound: status %d (%v), want the cached 403", code, err)
	}
	kube.Eventually(t, 45*time.Second, "the stranger gets the metrics once the denial expired", func() bool {
		code, _, err := secureGet(addr, stranger)
		return err == nil && code == http.StatusOK
	})
	for _, token := range []string{reader, stranger, garbage} {
		if strings.Contains(logs.String(), token) {
			t.Error("the operator logged a bearer token")
		}
	}
}

// secureGet fetches /metrics over the self-signed TLS server with token as
// the bearer token ("" for none).
func secureGet(addr, token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed test server
	}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// serviceAccountToken creates a service account and returns a token for the
// API server's own audience, as a scraper's projected token has.
func serviceAccountToken(t *testing.T, ns, name string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	k8s.MustCreate(t, sa)
	req := &authenticationv1.TokenRequest{}
	if err := k8s.SubResource("token").Create(context.Background(), sa, req); err != nil {
		t.Fatal(err)
	}
	return req.Status.Token
}

// canGetMetrics asks the API server whether the service account may get /metrics.
func canGetMetrics(t *testing.T, ns, name string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:                  "system:serviceaccount:" + ns + ":" + name,
		Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
	}}
	if err := k8s.Create(context.Background(), sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

// allowMetricsTo binds the service account to a ClusterRole that may get /metrics.
func allowMetricsTo(t *testing.T, ns, name string) {
	t.Helper()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-" + ns + "-" + name},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
	createClusterBinding(t, role, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns})
}

// bindOperatorToMetricsAuthRole binds the operator's service account to
// config/rbac/metrics_auth_role.yaml for this test only, so that other tests
// still run with the generated roles alone.
func bindOperatorToMetricsAuthRole(t *testing.T) {
	t.Helper()
	// OperatorConfig creates the service account and its namespace.
	if _, err := env.OperatorConfig(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "metrics_auth_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatal(err)
	}
	createClusterBinding(t, role, rbacv1.Subject{
		Kind: rbacv1.ServiceAccountKind, Name: testenv.OperatorServiceAccount, Namespace: testenv.OperatorNamespace,
	})
}

// createClusterBinding creates role and a binding of it to subject, both
// removed when the test ends.
func createClusterBinding(t *testing.T, role *rbacv1.ClusterRole, subject rbacv1.Subject) {
	t.Helper()
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{subject},
	}
	for _, o := range []client.Object{role, binding} {
		k8s.MustCreate(t, o)
		t.Cleanup(func() {
			if err := k8s.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s: %v", o.GetName(), err)
			}
		})
	}
}
