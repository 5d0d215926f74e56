package tokenrequest_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/secretdata"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

func TestARefreshHintTheTokenServiceStopsSendingIsDroppedAndCausesNoRefreshLoop(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	// An hour-long token that Entra asks to refresh after 2 s (refresh_in).
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{secret}, ExpiresIn: 3600, RefreshIn: 2})
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "hint", clientID, "cred"))
	k8s.WaitReady(t, ns, "hint")
	s := k8s.GetSecret(t, ns, "hint")
	if s.Annotations[secretdata.AnnotationRefreshHint] == "" {
		t.Fatalf("the Secret does not record the refresh hint: %v", s.Annotations)
	}
	first := string(s.Data[v1.KeyAccessToken])
	kube.Eventually(t, 15*time.Second, "a refresh at the hinted time", func() bool {
		return string(k8s.GetSecret(t, ns, "hint").Data[v1.KeyAccessToken]) != first
	})

	// The app stops sending the hint; a forced refresh gets a token without one.
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{secret}, ExpiresIn: 3600})
	before := sts.TokenCalls(clientID)
	const requested = "2026-12-01T09:00:00Z"
	k8s.UpdateTR(t, ns, "hint", func(tr *v1.TokenRequest) {
		tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: requested}
	})
	kube.Eventually(t, 15*time.Second, "the forced refresh written without a hint", func() bool {
		s = k8s.GetSecret(t, ns, "hint")
		_, hint := s.Annotations[secretdata.AnnotationRefreshHint]
		return k8s.GetTR(t, ns, "hint").Status.LastRefreshRequestedAt == requested &&
			s.Annotations[v1.AnnotationRefreshRequestedAt] == requested && !hint
	})
	after := sts.TokenCalls(clientID)
	// A hinted refresh already due may have come just before the forced one.
	if d := after - before; d < 1 || d > 2 {
		t.Errorf("the forced refresh took %d token calls", d)
	}
	callsStay(t, clientID, after, 5*time.Second)
	s = k8s.GetSecret(t, ns, "hint")
	if v, ok := s.Annotations[secretdata.AnnotationRefreshHint]; ok {
		t.Errorf("the Secret still carries refresh hint %q", v)
	}
	tr := k8s.GetTR(t, ns, "hint")
	if d := tr.Status.RefreshAt.Sub(tr.Status.LastRefreshTime.Time); d < 30*time.Minute {
		t.Errorf("refresh planned %v after issue for an hour-long token without a hint", d)
	}
}

func TestSwitchingTheDeletionPolicyMovesTheOwnerReferenceWithoutATokenCall(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "policy", clientID, "cred"))
	tr := k8s.WaitReady(t, ns, "policy")
	if ownerRef(k8s.GetSecret(t, ns, "policy"), tr.UID) == nil {
		t.Fatalf("a Delete Secret has no owner reference")
	}
	token := string(k8s.GetSecret(t, ns, "policy").Data[v1.KeyAccessToken])
	setPolicy := func(p v1.DeletionPolicy) {
		k8s.UpdateTR(t, ns, "policy", func(tr *v1.TokenRequest) { tr.Spec.DeletionPolicy = p })
	}
	released := func() bool { return ownerRef(k8s.GetSecret(t, ns, "policy"), tr.UID) == nil }

	setPolicy(v1.DeletionPolicyRetain)
	kube.Eventually(t, 5*time.Second, "the owner reference removed under Retain", released)
	setPolicy(v1.DeletionPolicyDelete)
	kube.Eventually(t, 5*time.Second, "the controller reference back under Delete", func() bool {
		ref := ownerRef(k8s.GetSecret(t, ns, "policy"), tr.UID)
		return ref != nil && ref.Controller != nil && *ref.Controller
	})
	setPolicy(v1.DeletionPolicyRetain)
	kube.Eventually(t, 5*time.Second, "the owner reference removed again", released)
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("switching the deletion policy called the token service: %d calls", n)
	}

	deleteAndSeeForgotten(t, ns, "policy")
	s := k8s.FindSecret(t, ns, "policy")
	if s == nil {
		t.Fatalf("the Secret went away with its Retain TokenRequest")
	}
	// envtest runs no garbage collector: no owner reference is what keeps it.
	if len(s.OwnerReferences) != 0 || string(s.Data[v1.KeyAccessToken]) != token {
		t.Errorf("the retained Secret has owner references %v or lost its token", s.OwnerReferences)
	}
}

func TestATokenRequestWithASeventySixCharacterNameGetsItsSecretBackAfterADelete(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	name := "settlement-graph-token.for-the-nightly-payments-reconciliation-batch-jobs-eu"
	if len(name) != 76 {
		t.Fatalf("name has %d characters", len(name))
	}
	k8s.MustCreate(t, entraRequest(ns, name, clientID, "cred"))
	tr := k8s.WaitReady(t, ns, name)
	s := k8s.GetSecret(t, ns, name)
	if l := s.Labels[v1.LabelTokenRequest]; l == "" || len(l) > 63 {
		t.Errorf("token-request label %q (%d characters)", l, len(l))
	}
	if got := s.Annotations[v1.AnnotationTokenRequestName]; got != name {
		t.Errorf("token-request-name annotation = %q", got)
	}
	if ownerRef(s, tr.UID) == nil || !issuedBySTS(string(s.Data[v1.KeyAccessToken])) {
		t.Errorf("the Secret is not owned or holds no token: %v", s.OwnerReferences)
	}

	if err := k8s.Delete(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 10*time.Second, "the Secret restored", func() bool {
		got := k8s.FindSecret(t, ns, name)
		return got != nil && got.UID != s.UID && issuedBySTS(string(got.Data[v1.KeyAccessToken])) &&
			got.Annotations[v1.AnnotationTokenRequestName] == name
	})
	k8s.WaitReady(t, ns, name)
}

func TestTemplateEntriesDroppedFromTheSpecLeaveTheSecretWhileOthersEntriesStay(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	tr := entraRequest(ns, "pruned", clientID, "cred")
	tr.Spec.SecretTemplate = &v1.SecretTemplate{
		Labels:      map[string]string{"team": "payments", "tier": "gold"},
		Annotations: map[string]string{"example.com/owner": "payments", "example.com/contact": "ops"},
		Data:        map[string]string{"authorization": "{{ .TokenType }} {{ .AccessToken }}", "client": "{{ .ClientID }}"},
	}
	k8s.MustCreate(t, tr)
	k8s.WaitReady(t, ns, "pruned")
	s := k8s.GetSecret(t, ns, "pruned")
	token := string(s.Data[v1.KeyAccessToken])
	if s.Labels["tier"] != "gold" || s.Annotations["example.com/contact"] != "ops" || string(s.Data["client"]) != clientID {
		t.Fatalf("template not applied: labels %v, data keys %d", s.Labels, len(s.Data))
	}
	// Someone else labels and annotates the Secret.
	updateSecret(t, ns, "pruned", func(s *corev1.Secret) {
		s.Labels["example.com/backup"] = "nightly"
		s.Annotations["example.com/note"] = "by hand"
	})

	k8s.UpdateTR(t, ns, "pruned", func(tr *v1.TokenRequest) {
		tr.Spec.SecretTemplate = &v1.SecretTemplate{
			Labels:      map[string]string{"team": "payments"},
			Annotations: map[string]string{"example.com/owner": "payments"},
			Data:        map[string]string{"authorization": "{{ .TokenType }} {{ .AccessToken }}"},
		}
	})
	kube.Eventually(t, 10*time.Second, "the dropped entries removed", func() bool {
		s = k8s.GetSecret(t, ns, "pruned")
		_, label := s.Labels["tier"]
		_, annotation := s.Annotations["example.com/contact"]
		_, data := s.Data["client"]
		return !label && !annotation && !data
	})
	if s.Labels["team"] != "payments" || s.Annotations["example.com/owner"] != "payments" || string(s.Data["authorization"]) != "Bearer "+token {
		t.Errorf("the kept template entries changed: labels %v, authorization kept %v", s.Labels, string(s.Data["authorization"]) == "Bearer "+token)
	}
	if s.Labels["example.com/backup"] != "nightly" || s.Annotations["example.com/note"] != "by hand" {
		t.Errorf("entries added by someone else were removed: labels %v", s.Labels)
	}
	if string(s.Data[v1.KeyAccessToken]) != token {
		t.Errorf("dropping template entries replaced the token")
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("dropping template entries called the token service: %d calls", n)
	}
}

func TestRenamingTheSecretUnderDeleteDeletesTheFormerOneOnceTheNewOneHoldsAToken(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	tr := entraRequest(ns, "renamed", clientID, "cred")
	tr.Spec.SecretName = "first"
	k8s.MustCreate(t, tr)
	got := k8s.WaitReady(t, ns, "renamed")

	k8s.UpdateTR(t, ns, "renamed", func(tr *v1.TokenRequest) { tr.Spec.SecretName = "second" })
	gap := false
	kube.Eventually(t, 15*time.Second, "the former Secret deleted", func() bool {
		if k8s.FindSecret(t, ns, "first") != nil {
			return false
		}
		s := k8s.FindSecret(t, ns, "second")
		gap = s == nil || !issuedBySTS(string(s.Data[v1.KeyAccessToken]))
		return true
	})
	if gap {
		t.Errorf("the former Secret was deleted before the new one held a token")
	}
	s := k8s.GetSecret(t, ns, "second")
	if ownerRef(s, got.UID) == nil || s.Labels[v1.LabelManagedBy] != v1.ManagedByValue {
		t.Errorf("the new Secret is not owned and labelled: %v %v", s.OwnerReferences, s.Labels)
	}
	if st := k8s.WaitReady(t, ns, "renamed").Status; st.SecretName != "second" {
		t.Errorf("status.secretName = %q", st.SecretName)
	}
}

func TestRenamingTheSecretUnderRetainReleasesTheFormerOne(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	tr := entraRequest(ns, "renamed", clientID, "cred")
	tr.Spec.SecretName = "first"
	k8s.MustCreate(t, tr)
	got := k8s.WaitReady(t, ns, "renamed")
	old := k8s.GetSecret(t, ns, "first")
	if ownerRef(old, got.UID) == nil {
		t.Fatalf("a Delete Secret has no owner reference")
	}

	k8s.UpdateTR(t, ns, "renamed", func(tr *v1.TokenRequest) {
		tr.Spec.SecretName = "second"
		tr.Spec.DeletionPolicy = v1.DeletionPolicyRetain
	})
	kube.Eventually(t, 15*time.Second, "the former Secret released", func() bool {
		s := k8s.FindSecret(t, ns, "first")
		if s == nil {
			t.Fatalf("the former Secret of a Retain TokenRequest was deleted")
		}
		_, managed := s.Labels[v1.LabelManagedBy]
		return ownerRef(s, got.UID) == nil && !managed
	})
	s := k8s.GetSecret(t, ns, "second")
	if !issuedBySTS(string(s.Data[v1.KeyAccessToken])) || len(s.OwnerReferences) != 0 {
		t.Errorf("the new Secret holds no token or has owner references %v", s.OwnerReferences)
	}
	k8s.SeeReconcile(t, ns, "renamed")
	if s := k8s.FindSecret(t, ns, "first"); s == nil || string(s.Data[v1.KeyAccessToken]) != string(old.Data[v1.KeyAccessToken]) {
		t.Errorf("the released Secret went away or lost its token")
	}
}

func TestARolloutTargetCreatedAfterTheTokenIsRestartedOnceAndNotAgainByANewOperator(t *testing.T) {
	stop := startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	target := v1.RolloutRestartTarget{Kind: "Deployment", Name: "api"}
	tr := entraRequest(ns, "late", clientID, "cred")
	tr.Spec.RolloutRestartTargets = []v1.RolloutRestartTarget{target}
	k8s.MustCreate(t, tr)
	k8s.WaitReady(t, ns, "late")
	kube.Eventually(t, 10*time.Second, "the missing target owed a restart", func() bool {
		p := k8s.GetTR(t, ns, "late").Status.PendingRestarts
		return len(p) == 1 && p[0] == target
	})
	if notes := waitEvent(t, ns, "late", v1.ReasonRolloutRestartFailed); !contains(notes[0], `Deployment "api"`) {
		t.Errorf("the failure does not name the target: %s", notes[0])
	}

	k8s.MustCreate(t, deployment(ns, "api"))
	created := time.Now()
	var d *appsv1.Deployment
	kube.Eventually(t, 40*time.Second, "the Deployment restarted", func() bool {
		d = getDeployment(t, ns, "api")
		return d.Spec.Template.Annotations[v1.AnnotationRestartedAt] != ""
	})
	t.Logf("restarted %v after the Deployment appeared", time.Since(created).Round(time.Second))
	st := k8s.GetTR(t, ns, "late").Status
	if got, want := d.Spec.Template.Annotations[v1.AnnotationRestartedAt], st.LastRefreshTime.UTC().Format(time.RFC3339); got != want {
		t.Errorf("restarted-at = %q, want the token's issue time %q", got, want)
	}
	kube.Eventually(t, 5*time.Second, "no restart owed", func() bool {
		return len(k8s.GetTR(t, ns, "late").Status.PendingRestarts) == 0
	})
	waitEvent(t, ns, "late", v1.ReasonRolloutRestarted)

	// A new operator process owes nothing and patches nothing.
	stop()
	d = getDeployment(t, ns, "api")
	metrics.Default().ResetTokens()
	startManager(t)
	kube.Eventually(t, 20*time.Second, "the new manager to reconcile", func() bool {
		return reconciledSince(t, ns, []string{"late"})
	})
	time.Sleep(3 * time.Second)
	if again := getDeployment(t, ns, "api"); again.ResourceVersion != d.ResourceVersion || again.Generation != d.Generation {
		t.Errorf("the Deployment was patched again after the operator restarted: generation %d → %d", d.Generation, again.Generation)
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("token calls = %d, want 1", n)
	}
}

func TestAFailingRefreshRecordsTheNextRetryAndTheReasonAndWarnsOncePerReason(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	// An hour-long token with a refresh hint, so a refresh comes at once.
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{secret}, ExpiresIn: 3600, RefreshIn: 3})
	// The first call succeeds; the refresh and its first retry get 503.
	sts.InjectFaults(entraserver.Fault{ClientID: clientID}, entraserver.Fault{Status: 503, ClientID: clientID}, entraserver.Fault{Status: 503, ClientID: clientID})
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "flaky", clientID, "cred"))
	k8s.WaitReady(t, ns, "flaky")
	good := string(k8s.GetSecret(t, ns, "flaky").Data[v1.KeyAccessToken])

	failure := func(attempts int32) *v1.TokenRequest {
		t.Helper()
		var tr *v1.TokenRequest
		kube.Eventually(t, 20*time.Second, "failed attempt "+string(rune('0'+attempts)), func() bool {
			tr = k8s.GetTR(t, ns, "flaky")
			return tr.Status.FailedAttempts == attempts
		})
		st := tr.Status
		if st.NextRetryTime == nil || st.LastFailureTime == nil || !st.NextRetryTime.After(st.LastFailureTime.Time) {
			t.Fatalf("attempt %d: next retry %v after failure %v", attempts, st.NextRetryTime, st.LastFailureTime)
		}
		if c := kube.Condition(tr, v1.ConditionReady); c.Status != metav1.ConditionTrue {
			t.Errorf("attempt %d: Ready went %s while the token is valid", attempts, c.Status)
		}
		return tr
	}
	first := failure(1).Status
	if first.LastFailureReason != v1.ReasonTokenServiceUnavailable {
		t.Errorf("lastFailureReason = %q", first.LastFailureReason)
	}
	// The first retry comes after about 5 s.
	if d := first.NextRetryTime.Sub(first.LastFailureTime.Time); d < 4*time.Second || d > 6*time.Second {
		t.Errorf("first retry planned %v after the failure", d)
	}
	second := failure(2).Status
	if d := second.NextRetryTime.Sub(second.LastFailureTime.Time); d < 8*time.Second || d > 11*time.Second {
		t.Errorf("second retry planned %v after the failure", d)
	}
	if second.LastFailureReason != v1.ReasonTokenServiceUnavailable {
		t.Errorf("lastFailureReason = %q", second.LastFailureReason)
	}
	// Now the app refuses the client secret: another reason.
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{"other-" + randomHex(8)}, ExpiresIn: 3600})
	tr := failure(3)
	if tr.Status.LastFailureReason != v1.ReasonTokenServiceRejected {
		t.Errorf("lastFailureReason = %q", tr.Status.LastFailureReason)
	}
	if c := kube.Condition(tr, v1.ConditionStalled); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Stalled = %s", kube.Describe(c))
	}
	if n := sts.TokenCalls(clientID); n != 4 {
		t.Errorf("token calls = %d, want 4 (issue, two 503s, the refusal)", n)
	}
	if got := string(k8s.GetSecret(t, ns, "flaky").Data[v1.KeyAccessToken]); got != good {
		t.Errorf("the last good token was replaced")
	}

	kube.Eventually(t, 10*time.Second, "the warning for the new reason", func() bool {
		return warningsFor(t, ns, "flaky")[v1.ReasonTokenServiceRejected] > 0
	})
	time.Sleep(time.Second)
	w := warningsFor(t, ns, "flaky")
	if w[v1.ReasonTokenServiceUnavailable] != 1 || w[v1.ReasonTokenServiceRejected] != 1 {
		t.Errorf("warnings by reason = %v, want one per reason", w)
		for _, n := range eventsFor(t, ns, "flaky")[v1.ReasonTokenServiceUnavailable] {
			t.Logf("%s: %s", v1.ReasonTokenServiceUnavailable, n)
		}
	}
}

// ownerRef is the Secret's owner reference to uid, or nil.
func ownerRef(s *corev1.Secret, uid types.UID) *metav1.OwnerReference {
	for i := range s.OwnerReferences {
		if s.OwnerReferences[i].UID == uid {
			return &s.OwnerReferences[i]
		}
	}
	return nil
}

// callsStay fails the test if clientID's token calls leave n within d.
func callsStay(t *testing.T, clientID string, n int, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got := sts.TokenCalls(clientID); got != n {
			t.Fatalf("token calls went from %d to %d", n, got)
		}
	}
}

// updateSecret changes a Secret, retrying on conflicts.
func updateSecret(t *testing.T, ns, name string, mutate func(*corev1.Secret)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := k8s.GetSecret(t, ns, name)
		mutate(s)
		return k8s.Update(context.Background(), s)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func deployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "example.com/" + name + ":1"}}},
			},
		},
	}
}

func getDeployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), objectKey(ns, name), d); err != nil {
		t.Fatal(err)
	}
	return d
}

// warningsFor counts the Warning events about a TokenRequest by reason; an
// event repeated with the same note counts as often as its series says.
func warningsFor(t *testing.T, ns, name string) map[string]int {
	t.Helper()
	var list eventsv1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range list.Items {
		if e.Regarding.Name != name || e.Type != corev1.EventTypeWarning {
			continue
		}
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		out[e.Reason] += n
	}
	return out
}
