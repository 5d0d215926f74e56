//go:build linux

package install_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/managerproc"
)

// rbacRun is what the variants of TestManagerUnderEachRBACVariant share:
// one API server, one token service, the manager binary, and namespaces
// two of which the scoped variants watch.
type rbacRun struct {
	cluster                     *kube.Cluster
	sts                         *entraserver.Server
	bin, caFile                 string
	watchedA, watchedB, outside string
	saIssuer                    string
	saKeys                      jose.JSONWebKeySet
}

// TestManagerUnderEachRBACVariant runs the built manager, one at a time, as
// its own service account bound to exactly the RBAC the chart renders for
// each variant: cluster-wide, scoped to two namespaces, and scoped with
// service account credentials or rollout restarts switched off. Each shows
// its working path and its refusals. The variants build on each other's
// TokenRequests, so they run in order.
func TestManagerUnderEachRBACVariant(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the manager four times")
	}
	work := t.TempDir()
	bin, err := managerproc.Build(work)
	if err != nil {
		t.Fatal(err)
	}
	run := &rbacRun{cluster: &kube.Cluster{Client: k8s, NamespacePrefix: "rbac-", Wait: 30 * time.Second}, sts: entraserver.New(), bin: bin}
	defer run.sts.Close()
	run.caFile = filepath.Join(work, "ca.pem")
	if err := os.WriteFile(run.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: run.sts.CA().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	run.watchedA, run.watchedB, run.outside = run.cluster.NewNamespace(t), run.cluster.NewNamespace(t), run.cluster.NewNamespace(t)
	run.saIssuer, run.saKeys = run.apiServerIssuer(t)
	watch := []any{run.watchedA, run.watchedB}

	steps := []struct {
		name   string
		values map[string]any
		check  func(t *testing.T, m *rbacManager)
	}{
		{"cluster-wide", nil, run.clusterWide},
		{"scoped", map[string]any{"watchNamespaces": watch}, run.scoped},
		{"scoped without service account credentials", map[string]any{"watchNamespaces": watch, "enableServiceAccountCredentials": false}, run.noServiceAccountCredentials},
		{"scoped without rollout restarts", map[string]any{"watchNamespaces": watch, "enableRolloutRestarts": false}, run.noRolloutRestarts},
	}
	for i, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			m := run.start(t, i, s.values)
			defer m.stop(t)
			s.check(t, m)
		})
		if !ok {
			t.FailNow() // the next variants rely on this one's TokenRequests
		}
	}
}

// rbacManager is a manager process and the user it runs as.
type rbacManager struct {
	proc      *managerproc.Process
	user      string
	groups    []string
	namespace string // the release namespace
	release   string
}

func (m *rbacManager) stop(t *testing.T) {
	m.proc.Stop()
	if t.Failed() {
		t.Logf("manager log (last 80 lines):\n%s", m.proc.LogTail(80))
	}
}

// start renders the chart with values, creates its service account and
// RBAC for real, and runs the manager with the Deployment's arguments as
// that service account.
func (run *rbacRun) start(t *testing.T, i int, values map[string]any) *rbacManager {
	t.Helper()
	ctx := context.Background()
	ns := run.cluster.NewNamespace(t)
	release := "rbac" + string(rune('a'+i))
	r := renderChart(t, release, ns, values)
	rbacKinds := []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
	for _, u := range r.objects {
		if !slices.Contains(rbacKinds, u.GetKind()) {
			continue
		}
		u = u.DeepCopy()
		if namespaced, _ := k8s.IsObjectNamespaced(u); namespaced && u.GetNamespace() == "" {
			u.SetNamespace(ns)
		}
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.ForceOwnership, client.FieldOwner(fieldOwner)); err != nil {
			t.Fatalf("%s: %v", describe(u), err)
		}
	}
	d, c := chartDeployment(t, r, release+"-token-operator")
	var args []string
	for _, a := range c.Args {
		// managerproc serves metrics and probes on free loopback ports.
		if !strings.HasPrefix(a, "--metrics-") && !strings.HasPrefix(a, "--health-probe-") {
			args = append(args, a)
		}
	}
	m := &rbacManager{namespace: ns, release: release,
		user:   serviceaccount.MakeUsername(ns, d.Spec.Template.Spec.ServiceAccountName),
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	kubeconfig := run.kubeconfigAs(t, m, ns)
	args = append(args, "--kubeconfig", kubeconfig, "--ca-bundle", run.caFile, "--leader-election-namespace", ns)
	p, err := managerproc.Start(run.bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	m.proc = p
	t.Logf("manager %s runs as %s with %v", release, m.user, args)
	return m
}

// kubeconfigAs writes a kubeconfig that impersonates the manager's service
// account, as its pod's token would authenticate it.
func (run *rbacRun) kubeconfigAs(t *testing.T, m *rbacManager, ns string) string {
	t.Helper()
	path, err := testEnv.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range kc.AuthInfos {
		u.Impersonate, u.ImpersonateGroups = m.user, m.groups
	}
	for _, c := range kc.Contexts {
		c.Namespace = ns
	}
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// may asks the API server whether the manager's account may do verb on
// resource (with subresource) in namespace ("" for every namespace).
func (m *rbacManager) may(t *testing.T, verb, group, resource, subresource, namespace string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: m.user, Groups: m.groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Group: group, Resource: resource, Subresource: subresource},
	}}
	if err := k8s.Create(context.Background(), sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

type access struct {
	verb, group, resource, sub, namespace string
}

func (m *rbacManager) expectAccess(t *testing.T, allowed bool, checks ...access) {
	t.Helper()
	for _, a := range checks {
		if got := m.may(t, a.verb, a.group, a.resource, a.sub, a.namespace); got != allowed {
			t.Errorf("manager may %s %s/%s %s in namespace %q: %v, want %v", a.verb, a.group, a.resource, a.sub, a.namespace, got, allowed)
		}
	}
}

func randomName(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// clientSecretRequest creates an app, its credential Secret and a
// TokenRequest using it, in ns.
func (run *rbacRun) clientSecretRequest(t *testing.T, ns, name string) *v1.TokenRequest {
	t.Helper()
	clientID, secret := randomName("app-"), randomName("s3cr")
	run.sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{secret}, ExpiresIn: 3600})
	run.cluster.MustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-cred", Namespace: ns, Annotations: map[string]string{v1.AnnotationAllowedIssuers: run.sts.Host()}},
		StringData: map[string]string{"clientSecret": secret},
	})
	return &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.TokenRequestSpec{Authority: run.sts.Authority("contoso"), ClientID: clientID, Scopes: []string{"api://" + clientID + "/.default"},
			Credential: &v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name + "-cred"}}},
	}
}

// federatedRequest creates a ServiceAccount that consents to the token
// service, an app trusting its tokens, and a TokenRequest exchanging them.
func (run *rbacRun) federatedRequest(t *testing.T, ns, name string) (*v1.TokenRequest, string) {
	t.Helper()
	clientID := randomName("fed-")
	run.sts.AddApp(entraserver.App{ClientID: clientID, ExpiresIn: 3600, Federated: []entraserver.FederatedCredential{{
		Issuer: run.saIssuer, Subject: "system:serviceaccount:" + ns + ":" + name, Audience: "api://AzureADTokenExchange", Keys: run.saKeys,
	}}})
	run.cluster.MustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
		Annotations: map[string]string{v1.AnnotationAllowedIssuers: run.sts.Host()}}})
	return &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.TokenRequestSpec{Authority: run.sts.Authority("contoso"), ClientID: clientID, Scopes: []string{"api://" + clientID + "/.default"},
			Credential: &v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: name}}},
	}, clientID
}

func (run *rbacRun) deployment(t *testing.T, ns, name string) {
	t.Helper()
	labels := map[string]string{"app": name}
	run.cluster.MustCreate(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}},
	}})
}

func restartedAt(t *testing.T, ns, name string) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Annotations[v1.AnnotationRestartedAt]
}

func accessToken(t *testing.T, ns, name string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data[v1.KeyAccessToken])
}

// waitCondition waits for condition typ of the TokenRequest to have status and reason.
func (run *rbacRun) waitCondition(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string) *v1.TokenRequest {
	t.Helper()
	return run.cluster.WaitReason(t, ns, name, typ, status, reason)
}

// stalledFor asserts a refusal: Stalled True with reason and a message
// naming what; an event with the reason; and no status churn afterwards
// (no retry storm).
func (run *rbacRun) stalledFor(t *testing.T, ns, name, reason, what string) *v1.TokenRequest {
	t.Helper()
	tr := run.waitCondition(t, ns, name, v1.ConditionStalled, metav1.ConditionTrue, reason)
	if msg := kube.Condition(tr, v1.ConditionStalled).Message; !strings.Contains(msg, what) {
		t.Errorf("%s/%s: Stalled message does not name %q: %s", ns, name, what, msg)
	}
	run.eventFor(t, ns, name, reason, what)
	before := run.cluster.GetTR(t, ns, name).ResourceVersion
	time.Sleep(3 * time.Second)
	if after := run.cluster.GetTR(t, ns, name); after.ResourceVersion != before {
		t.Errorf("%s/%s changed again within 3 s of its refusal: %+v", ns, name, after.Status)
	}
	return tr
}

func noSecret(t *testing.T, ns, name string) {
	t.Helper()
	if s := (&kube.Cluster{Client: k8s}).FindSecret(t, ns, name); s != nil {
		t.Errorf("Secret %s/%s was written", ns, name)
	}
}

// apiServerIssuer is the API server's service account token issuer and the
// key that verifies its tokens, for the token service's federation trust.
func (run *rbacRun) apiServerIssuer(t *testing.T) (string, jose.JSONWebKeySet) {
	t.Helper()
	raw, err := os.ReadFile(testEnv.ServiceAccountSigningCertFile())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("no PEM in the service account signing file")
	}
	var key any
	if block.Type == "CERTIFICATE" {
		cert, cerr := x509.ParseCertificate(block.Bytes)
		if cerr != nil {
			t.Fatal(cerr)
		}
		key = cert.PublicKey
	} else if key, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: run.outside}}
	run.cluster.MustCreate(t, sa)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"probe"}}}
	if err := k8s.SubResource("token").Create(context.Background(), sa, req); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(req.Status.Token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c.Issuer, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key}}}
}

// clusterWide: the default install reaches every namespace.
func (run *rbacRun) clusterWide(t *testing.T, m *rbacManager) {
	run.cluster.MustCreate(t, run.clientSecretRequest(t, run.outside, "anywhere"))
	run.cluster.WaitReady(t, run.outside, "anywhere")
	m.expectAccess(t, true,
		access{"get", "", "secrets", "", run.outside},
		access{"create", "", "serviceaccounts", "token", "kube-system"},
		access{"patch", "apps", "deployments", "", run.outside})
}

// scoped: tokens in the watched namespaces, through a client secret and a
// ServiceAccount, with a rollout restart; nothing outside them; and a
// missing right at runtime reported as PermissionDenied.
func (run *rbacRun) scoped(t *testing.T, m *rbacManager) {
	a, b, out := run.watchedA, run.watchedB, run.outside
	run.cluster.MustCreate(t, run.clientSecretRequest(t, out, "untouched"))
	run.cluster.MustCreate(t, run.clientSecretRequest(t, a, "plain"))
	fed, _ := run.federatedRequest(t, b, "federated")
	run.cluster.MustCreate(t, fed)
	run.deployment(t, a, "app")
	restarter := run.clientSecretRequest(t, a, "restarter")
	restarter.Spec.RolloutRestartTargets = []v1.RolloutRestartTarget{{Kind: "Deployment", Name: "app"}}
	run.cluster.MustCreate(t, restarter)

	// A ClusterTokenIssuer's credential lives in the release namespace,
	// which the manager may read although it does not watch it.
	corp := run.clientSecretRequest(t, m.namespace, "corp")
	ci := &v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: randomName("corp-")}, Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
		Authority: corp.Spec.Authority, ClientID: corp.Spec.ClientID, Credential: *corp.Spec.Credential}}}
	run.cluster.MustCreate(t, ci)
	defer func() { _ = k8s.Delete(context.Background(), ci) }()
	run.cluster.MustCreate(t, &v1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: a, Name: "via-cluster-issuer"},
		Spec: v1.TokenRequestSpec{IssuerRef: &v1.IssuerReference{Kind: v1.KindClusterTokenIssuer, Name: ci.Name}, Scopes: corp.Spec.Scopes}})

	run.cluster.WaitReady(t, a, "plain")
	run.cluster.WaitReady(t, a, "via-cluster-issuer")
	run.cluster.WaitReady(t, b, "federated")
	run.cluster.WaitReady(t, a, "restarter")
	kube.Eventually(t, 10*time.Second, "the Deployment restarted", func() bool { return restartedAt(t, a, "app") != "" })
	if tr := run.cluster.GetTR(t, out, "untouched"); len(tr.Status.Conditions) != 0 {
		t.Errorf("a TokenRequest outside the watched namespaces has a status: %+v", tr.Status)
	}
	noSecret(t, out, "untouched")

	m.expectAccess(t, true,
		access{"get", "", "secrets", "", a},
		access{"create", "", "serviceaccounts", "token", b},
		access{"patch", "apps", "deployments", "", a})
	m.expectAccess(t, false,
		access{"get", "", "secrets", "", out},
		access{"list", "", "secrets", "", ""},
		access{"create", "", "secrets", "", out},
		access{"create", "", "serviceaccounts", "token", out},
		access{"create", "", "serviceaccounts", "token", "kube-system"},
		access{"patch", "apps", "deployments", "", out},
		access{"patch", "apps", "deployments", "", "kube-system"})

	// An administrator takes the token right away in b: the next
	// ServiceAccount credential there is refused with a clear reason.
	role := &rbacv1.Role{}
	key := types.NamespacedName{Namespace: b, Name: m.release + "-token-operator-manager"}
	if err := k8s.Get(context.Background(), key, role); err != nil {
		t.Fatal(err)
	}
	role.Rules = slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "serviceaccounts/token") })
	if err := k8s.Update(context.Background(), role); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 10*time.Second, "the right to be gone", func() bool { return !m.may(t, "create", "", "serviceaccounts", "token", b) })
	denied, clientID := run.federatedRequest(t, b, "denied")
	run.cluster.MustCreate(t, denied)
	tr := run.stalledFor(t, b, "denied", v1.ReasonPermissionDenied, "serviceaccounts/token create")
	if c := kube.Condition(tr, v1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonPermissionDenied {
		t.Errorf("Ready: %s", kube.Describe(c))
	}
	if st := tr.Status; st.NextRetryTime == nil || st.NextRetryTime.Sub(st.LastFailureTime.Time) < 50*time.Second {
		t.Errorf("a refused right is retried within a minute: %+v", st)
	}
	if n := run.sts.TokenCalls(clientID); n != 0 {
		t.Errorf("%d token calls without a ServiceAccount token", n)
	}

	// Likewise the workload patch in a: the token is written, the restart
	// is reported as PermissionDenied and not retried every 30 s.
	key.Namespace = a
	if err := k8s.Get(context.Background(), key, role); err != nil {
		t.Fatal(err)
	}
	role.Rules = slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.APIGroups, "apps") })
	if err := k8s.Update(context.Background(), role); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 10*time.Second, "the right to be gone", func() bool { return !m.may(t, "patch", "apps", "deployments", "", a) })
	run.deployment(t, a, "app3")
	noPatch := run.clientSecretRequest(t, a, "no-patch")
	noPatch.Spec.RolloutRestartTargets = []v1.RolloutRestartTarget{{Kind: "Deployment", Name: "app3"}}
	run.cluster.MustCreate(t, noPatch)
	run.cluster.WaitReady(t, a, "no-patch")
	run.eventFor(t, a, "no-patch", v1.ReasonPermissionDenied, "deployments patch")
	if tr := run.cluster.GetTR(t, a, "no-patch"); len(tr.Status.PendingRestarts) != 0 {
		t.Errorf("a refused restart is still pending: %+v", tr.Status.PendingRestarts)
	}
}

// eventFor waits for an event about the TokenRequest with reason and a note containing what.
func (run *rbacRun) eventFor(t *testing.T, ns, name, reason, what string) {
	t.Helper()
	kube.Eventually(t, 10*time.Second, "a "+reason+" event for "+name, func() bool {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(evs.Items, func(e eventsv1.Event) bool {
			return e.Regarding.Name == name && e.Reason == reason && strings.Contains(e.Note, what)
		})
	})
}

// noServiceAccountCredentials: ServiceAccount credentials are refused, the
// last good token stays, client secrets still work.
func (run *rbacRun) noServiceAccountCredentials(t *testing.T, m *rbacManager) {
	a, b := run.watchedA, run.watchedB
	before := accessToken(t, b, "federated")
	tr := run.stalledFor(t, b, "federated", v1.ReasonServiceAccountCredentialsDisabled, "--enable-service-account-credentials=false")
	if !meta.IsStatusConditionTrue(tr.Status.Conditions, v1.ConditionReady) || accessToken(t, b, "federated") != before {
		t.Errorf("the last good token did not stay: Ready %s", kube.Describe(kube.Condition(tr, v1.ConditionReady)))
	}
	refused, clientID := run.federatedRequest(t, a, "refused")
	run.cluster.MustCreate(t, refused)
	tr = run.stalledFor(t, a, "refused", v1.ReasonServiceAccountCredentialsDisabled, "--enable-service-account-credentials=false")
	if c := kube.Condition(tr, v1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonServiceAccountCredentialsDisabled {
		t.Errorf("Ready: %s", kube.Describe(c))
	}
	noSecret(t, a, "refused")
	if n := run.sts.TokenCalls(clientID); n != 0 {
		t.Errorf("%d token calls for a refused ServiceAccount credential", n)
	}
	// The issuer status says so too.
	issuer := &v1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "federated", Namespace: a}, Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
		Authority: run.sts.Authority("contoso"), ClientID: refused.Spec.ClientID, Credential: v1.Credential{ServiceAccount: &v1.ServiceAccountCredential{Name: "refused"}}}}}
	run.cluster.MustCreate(t, issuer)
	kube.Eventually(t, 30*time.Second, "the issuer to be refused", func() bool {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(issuer), issuer); err != nil {
			t.Fatal(err)
		}
		c := meta.FindStatusCondition(issuer.Status.Conditions, v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1.ReasonServiceAccountCredentialsDisabled
	})
	run.cluster.MustCreate(t, run.clientSecretRequest(t, a, "plain-again"))
	run.cluster.WaitReady(t, a, "plain-again")
	m.expectAccess(t, false, access{"create", "", "serviceaccounts", "token", a}, access{"create", "", "serviceaccounts", "token", m.namespace})
}

// noRolloutRestarts: rollout restart targets are refused and no workload
// is patched; ServiceAccount credentials work again.
func (run *rbacRun) noRolloutRestarts(t *testing.T, m *rbacManager) {
	a, b := run.watchedA, run.watchedB
	tr := run.stalledFor(t, a, "restarter", v1.ReasonRolloutRestartsDisabled, "--enable-rollout-restarts=false")
	if !meta.IsStatusConditionTrue(tr.Status.Conditions, v1.ConditionReady) {
		t.Errorf("the last good token did not stay: %s", kube.Describe(kube.Condition(tr, v1.ConditionReady)))
	}
	run.deployment(t, a, "app2")
	refused := run.clientSecretRequest(t, a, "restart-refused")
	refused.Spec.RolloutRestartTargets = []v1.RolloutRestartTarget{{Kind: "Deployment", Name: "app2"}}
	run.cluster.MustCreate(t, refused)
	run.stalledFor(t, a, "restart-refused", v1.ReasonRolloutRestartsDisabled, "--enable-rollout-restarts=false")
	noSecret(t, a, "restart-refused")
	if v := restartedAt(t, a, "app2"); v != "" {
		t.Errorf("the Deployment was restarted: %s", v)
	}
	if n := run.sts.TokenCalls(refused.Spec.ClientID); n != 0 {
		t.Errorf("%d token calls for a refused TokenRequest", n)
	}
	run.waitCondition(t, b, "federated", v1.ConditionStalled, metav1.ConditionFalse, v1.ReasonUpToDate) // re-evaluated with the feature back
	m.expectAccess(t, false, access{"patch", "apps", "deployments", "", a}, access{"patch", "apps", "statefulsets", "", b})
	m.expectAccess(t, true, access{"create", "", "serviceaccounts", "token", a})
}
