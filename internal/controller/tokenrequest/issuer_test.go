package tokenrequest_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// clusterIssuer registers an Entra app, puts its secret in the cluster
// resource namespace and creates a ClusterTokenIssuer for it.
func clusterIssuer(t *testing.T, mutate func(*v1.ClusterTokenIssuerSpec)) (name, clientID string) {
	t.Helper()
	clientID, secret := app(t, 3600)
	name = "corp-" + randomHex(4)
	credentialSecret(t, testenv.OperatorNamespace, name+"-cred", secret, sts.Host())
	ci := &v1.ClusterTokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.ClusterTokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			Authority: sts.Authority("contoso"), ClientID: clientID,
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: name + "-cred"}},
		}},
	}
	if mutate != nil {
		mutate(&ci.Spec)
	}
	k8s.MustCreate(t, ci)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ci) })
	return name, clientID
}

// issuerRequest is a TokenRequest that names an issuer and asks for scope.
func issuerRequest(ns, name, kind, issuer, scope string) *v1.TokenRequest {
	return &v1.TokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.TokenRequestSpec{
			IssuerRef: &v1.IssuerReference{Kind: kind, Name: issuer},
			Scopes:    []string{scope},
		},
	}
}

func waitIssuerReady(t *testing.T, obj client.Object, conditions func() []metav1.Condition) {
	t.Helper()
	kube.Eventually(t, 10*time.Second, obj.GetName()+" to be Ready", func() bool {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
		return isTrue(conditions(), v1.ConditionReady)
	})
}

func TestAClusterIssuerServesManyNamespacesWithOneCall(t *testing.T) {
	addr := freePort(t)
	startManager(t, func(o *operator.Options) { o.MetricsBindAddress = addr })
	issuer, clientID := clusterIssuer(t, nil)
	scope := "api://" + clientID + "/.default"
	a, b := k8s.NewNamespace(t), k8s.NewNamespace(t)
	k8s.MustCreate(t, issuerRequest(a, "orders", v1.KindClusterTokenIssuer, issuer, scope))
	k8s.MustCreate(t, issuerRequest(b, "billing", v1.KindClusterTokenIssuer, issuer, scope))

	ta, tb := k8s.WaitReady(t, a, "orders"), k8s.WaitReady(t, b, "billing")
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("%d token calls for two namespaces on one issuer, want 1", n)
	}
	sa, sb := k8s.GetSecret(t, a, "orders"), k8s.GetSecret(t, b, "billing")
	if tok := string(sa.Data[v1.KeyAccessToken]); tok == "" || tok != string(sb.Data[v1.KeyAccessToken]) || !issuedBySTS(tok) {
		t.Errorf("the two namespaces do not share one token from the issuer")
	}
	if ta.Status.ExpiresAt == nil || tb.Status.ExpiresAt == nil {
		t.Errorf("status without expiry: %+v / %+v", ta.Status, tb.Status)
	}

	ci := &v1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: issuer}}
	kube.Eventually(t, 10*time.Second, "the issuer to count 2 TokenRequests", func() bool {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ci), ci); err != nil {
			t.Fatal(err)
		}
		return isTrue(ci.Status.Conditions, v1.ConditionReady) && ci.Status.TokenRequests == 2 && ci.Status.ObservedGeneration == ci.Generation
	})
	if notes := waitEvent(t, a, "orders", v1.ReasonIssued); !contains(notes[0], `ClusterTokenIssuer "`+issuer+`"`) {
		t.Errorf("Issued event does not name the issuer: %q", notes[0])
	}
	series := `token_operator_issuer_token_requests{kind="ClusterTokenIssuer",name="` + issuer + `",namespace=""} 2`
	if m := scrape(t, addr); !contains(m, series) || !contains(m, `token_operator_issuer_ready{kind="ClusterTokenIssuer",name="`+issuer+`",namespace=""} 1`) {
		t.Errorf("metrics lack the issuer's series %s", series)
	}
}

func TestAClusterIssuerRefusesOtherNamespacesAndScopesWithoutACall(t *testing.T) {
	startManager(t)
	allowed, other := k8s.NewNamespace(t), k8s.NewNamespace(t)
	issuer, clientID := clusterIssuer(t, func(s *v1.ClusterTokenIssuerSpec) {
		s.AllowedNamespaces = &v1.AllowedNamespaces{Names: []string{allowed}}
		s.AllowedScopes = []string{"api://*/.default"}
	})
	scope := "api://" + clientID + "/.default"
	k8s.MustCreate(t, issuerRequest(other, "outsider", v1.KindClusterTokenIssuer, issuer, scope))
	k8s.MustCreate(t, issuerRequest(allowed, "greedy", v1.KindClusterTokenIssuer, issuer, "https://graph.microsoft.com/.default"))
	k8s.MustCreate(t, issuerRequest(allowed, "bystander", v1.KindClusterTokenIssuer, issuer, scope))

	k8s.WaitReady(t, allowed, "bystander")
	outsider := k8s.WaitReason(t, other, "outsider", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonIssuerNotAllowed)
	greedy := k8s.WaitReason(t, allowed, "greedy", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonScopeNotAllowed)
	if c := kube.Condition(outsider, v1.ConditionReady); c.Status != metav1.ConditionFalse || !contains(c.Message, other) {
		t.Errorf("outsider Ready: %s", kube.Describe(c))
	}
	if c := kube.Condition(greedy, v1.ConditionReady); !contains(c.Message, "https://graph.microsoft.com/.default") {
		t.Errorf("greedy Ready does not name the refused scope: %s", kube.Describe(c))
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("%d token calls, want only the bystander's 1", n)
	}
	if s := k8s.FindSecret(t, other, "outsider"); s != nil {
		t.Errorf("a refused namespace got a Secret")
	}

	// Labelling the namespace into a selector lets it in, with no slow poll.
	ci := &v1.ClusterTokenIssuer{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: issuer}, ci); err != nil {
		t.Fatal(err)
	}
	ci.Spec.AllowedNamespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tokens-team": "orders"}}
	if err := k8s.Update(context.Background(), ci); err != nil {
		t.Fatal(err)
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(nsGVK)
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: other}, ns); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(ns.DeepCopy())
	ns.Labels = map[string]string{"tokens-team": "orders"}
	if err := k8s.Patch(context.Background(), ns, patch); err != nil {
		t.Fatal(err)
	}
	k8s.WaitReady(t, other, "outsider")
}

func TestANamespacedIssuerServesOnlyItsNamespace(t *testing.T) {
	startManager(t)
	team, stranger := k8s.NewNamespace(t), k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, team, "team-app", secret, sts.Host())
	ti := &v1.TokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: team},
		Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			TokenURL: sts.TokenURL("contoso"), ClientID: clientID,
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "team-app"}},
		}},
	}
	k8s.MustCreate(t, ti)
	scope := "api://" + clientID + "/.default"
	k8s.MustCreate(t, issuerRequest(team, "app", v1.KindTokenIssuer, "team", scope))
	k8s.MustCreate(t, issuerRequest(stranger, "app", v1.KindTokenIssuer, "team", scope))

	k8s.WaitReady(t, team, "app")
	tr := k8s.WaitReason(t, stranger, "app", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonIssuerNotFound)
	if c := kube.Condition(tr, v1.ConditionReconciling); c.Status != metav1.ConditionTrue {
		t.Errorf("a missing issuer should keep the request waiting: %s", kube.Describe(c))
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("%d token calls, want 1", n)
	}
	waitIssuerReady(t, ti, func() []metav1.Condition { return ti.Status.Conditions })
	if ti.Status.TokenRequests != 1 {
		t.Errorf("issuer counts %d TokenRequests, want the 1 of its namespace", ti.Status.TokenRequests)
	}
}

func TestATokenRequestWaitsForItsIssuerAndRecoversWhenItAppears(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	k8s.MustCreate(t, issuerRequest(ns, "early", v1.KindTokenIssuer, "late", "api://"+clientID+"/.default"))
	k8s.WaitReason(t, ns, "early", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonIssuerNotFound)

	credentialSecret(t, ns, "late-app", secret, sts.Host())
	k8s.MustCreate(t, &v1.TokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: ns},
		Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			Authority: sts.Authority("contoso"), ClientID: clientID,
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "late-app"}},
		}},
	})
	start := time.Now()
	k8s.WaitReady(t, ns, "early")
	t.Logf("Ready %v after the issuer appeared", time.Since(start))
}

func TestAnIssuerWithoutConsentIsNotReadyAndItsRequestsSayWhy(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "no-consent", secret, "")
	ti := &v1.TokenIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: ns},
		Spec: v1.TokenIssuerSpec{IssuerSpec: v1.IssuerSpec{
			Authority: sts.Authority("contoso"), ClientID: clientID,
			Credential: v1.Credential{ClientSecret: &v1.ClientSecretCredential{Name: "no-consent"}},
		}},
	}
	k8s.MustCreate(t, ti)
	k8s.MustCreate(t, issuerRequest(ns, "app", v1.KindTokenIssuer, "team", "api://"+clientID+"/.default"))
	tr := k8s.WaitReason(t, ns, "app", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonIssuerNotReady)
	if c := kube.Condition(tr, v1.ConditionStalled); !contains(c.Message, v1.ReasonCredentialNotAllowed) || !contains(c.Message, `TokenIssuer "team"`) {
		t.Errorf("Stalled message: %s", c.Message)
	}
	kube.Eventually(t, 10*time.Second, "the issuer to say CredentialNotAllowed", func() bool {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ti), ti); err != nil {
			t.Fatal(err)
		}
		c := findCondition(ti.Status.Conditions, v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1.ReasonCredentialNotAllowed
	})
	if n := sts.TokenCalls(clientID); n != 0 {
		t.Errorf("%d token calls without consent", n)
	}
	if res := kstatusOfKind(t, "TokenIssuer", ns, "team"); res.Status != status.FailedStatus {
		t.Errorf("kstatus of an issuer that cannot be used: %s (%s), want Failed", res.Status, res.Message)
	}

	// Consent given: the issuer turns Current and its request gets a token.
	cred := k8s.GetSecret(t, ns, "no-consent")
	cred.Annotations = map[string]string{v1.AnnotationAllowedIssuers: sts.Host()}
	if err := k8s.Update(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	k8s.WaitReady(t, ns, "app")
	kube.Eventually(t, 10*time.Second, "the issuer to be Current for kstatus", func() bool {
		return kstatusOfKind(t, "TokenIssuer", ns, "team").Status == status.CurrentStatus
	})
}

func TestRotatingAnIssuerCredentialReachesRequestsAtTheirNextRefresh(t *testing.T) {
	startManager(t)
	issuer, clientID := clusterIssuer(t, nil)
	ns := k8s.NewNamespace(t)
	k8s.MustCreate(t, issuerRequest(ns, "app", v1.KindClusterTokenIssuer, issuer, "api://"+clientID+"/.default"))
	k8s.WaitReady(t, ns, "app")
	before := string(k8s.GetSecret(t, ns, "app").Data[v1.KeyAccessToken])
	// The operator learns credential versions from its Secret metadata
	// watch. A probe waits for a credential Secret created after the
	// rotation: once that creation has reached the operator, so has the
	// rotation.
	probeID, probeSecret := app(t, 3600)
	k8s.MustCreate(t, entraRequest(ns, "probe", probeID, "probe-cred"))
	k8s.WaitReason(t, ns, "probe", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonCredentialNotFound)

	// The platform team rotates: the app accepts only the new secret.
	newSecret := "rotated+" + randomHex(12)
	secretsUsed.Store(newSecret, true)
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{newSecret}, ExpiresIn: 3600})
	cred := k8s.GetSecret(t, testenv.OperatorNamespace, issuer+"-cred")
	cred.Data = map[string][]byte{"clientSecret": []byte(newSecret)}
	if err := k8s.Update(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
	credentialSecret(t, ns, "probe-cred", probeSecret, sts.Host())
	k8s.WaitReady(t, ns, "probe")
	k8s.SeeReconcile(t, ns, "app") // a pass of app with the rotation in view
	if got := string(k8s.GetSecret(t, ns, "app").Data[v1.KeyAccessToken]); got != before || sts.TokenCalls(clientID) != 1 {
		t.Fatalf("a rotation re-minted at once (%d calls); the valid token should stay until its refresh", sts.TokenCalls(clientID))
	}

	k8s.UpdateTR(t, ns, "app", func(tr *v1.TokenRequest) {
		tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: time.Now().UTC().Format(time.RFC3339)}
	})
	kube.Eventually(t, 10*time.Second, "a token obtained with the rotated secret", func() bool {
		tok := string(k8s.GetSecret(t, ns, "app").Data[v1.KeyAccessToken])
		return tok != before && issuedBySTS(tok)
	})
	if tr := k8s.GetTR(t, ns, "app"); tr.Status.FailedAttempts != 0 {
		t.Errorf("%d failed attempts: the old secret was used", tr.Status.FailedAttempts)
	}
}

func TestNarrowingAnIssuerStopsRefreshingAndLeavesTheTokenToExpire(t *testing.T) {
	startManager(t)
	issuer, clientID := clusterIssuer(t, nil)
	ns := k8s.NewNamespace(t)
	k8s.MustCreate(t, issuerRequest(ns, "app", v1.KindClusterTokenIssuer, issuer, "api://"+clientID+"/.default"))
	k8s.WaitReady(t, ns, "app")
	token := string(k8s.GetSecret(t, ns, "app").Data[v1.KeyAccessToken])

	ci := &v1.ClusterTokenIssuer{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: issuer}, ci); err != nil {
		t.Fatal(err)
	}
	ci.Spec.AllowedNamespaces = &v1.AllowedNamespaces{Names: []string{"somewhere-else"}}
	if err := k8s.Update(context.Background(), ci); err != nil {
		t.Fatal(err)
	}
	tr := k8s.WaitReason(t, ns, "app", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonIssuerNotAllowed)
	if tr.Status.LastFailureReason != v1.ReasonIssuerNotAllowed {
		t.Errorf("lastFailureReason %q", tr.Status.LastFailureReason)
	}
	if got := string(k8s.GetSecret(t, ns, "app").Data[v1.KeyAccessToken]); got != token {
		t.Errorf("the valid token was removed or replaced")
	}
	k8s.UpdateTR(t, ns, "app", func(tr *v1.TokenRequest) {
		tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: time.Now().UTC().Format(time.RFC3339)}
	})
	// The pass that observes a probe edit made after the request read it.
	if c := kube.Condition(k8s.SeeReconcile(t, ns, "app"), v1.ConditionStalled); c.Reason != v1.ReasonIssuerNotAllowed {
		t.Errorf("after the requested refresh Stalled is %s", kube.Describe(c))
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("%d token calls after the namespace was refused, want the first 1 only", n)
	}
}

var nsGVK = corev1.SchemeGroupVersion.WithKind("Namespace")

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	return meta.FindStatusCondition(conds, typ)
}
