package tokenrequest_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

func TestAServerErrorIsRetriedWithBackoffAndRecovers(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	sts.InjectFaults(entraserver.Fault{Status: 500, ClientID: clientID})
	k8s.MustCreate(t, entraRequest(ns, "e500", clientID, "cred"))

	tr := k8s.WaitReason(t, ns, "e500", v1.ConditionReconciling, metav1.ConditionTrue, v1.ReasonTokenServiceUnavailable)
	if tr.Status.FailedAttempts != 1 || tr.Status.LastFailureTime == nil {
		t.Errorf("failure not counted: %+v", tr.Status)
	}
	if c := kube.Condition(tr, v1.ConditionReady); c.Status != metav1.ConditionFalse || !contains(c.Message, "500") {
		t.Errorf("Ready = %s %q", c.Status, c.Message)
	}
	waitEvent(t, ns, "e500", v1.ReasonTokenServiceUnavailable)
	// The first retry comes after about 5 s.
	tr = k8s.WaitReady(t, ns, "e500")
	if tr.Status.FailedAttempts != 0 || tr.Status.LastFailureTime != nil {
		t.Errorf("failure not cleared: %+v", tr.Status)
	}
	if c := kube.Condition(tr, v1.ConditionReconciling); c.Status != metav1.ConditionFalse {
		t.Errorf("Reconciling still %s", c.Status)
	}
	waitEvent(t, ns, "e500", v1.ReasonRecovered)
	if n := sts.TokenCalls(clientID); n != 2 {
		t.Errorf("token calls = %d, want 2 (one failure, one retry)", n)
	}
}

func TestTooManyRequestsWaitsAtLeastRetryAfter(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	sts.InjectFaults(entraserver.Fault{Status: 429, RetryAfter: "8", ClientID: clientID})
	k8s.MustCreate(t, entraRequest(ns, "e429", clientID, "cred"))

	tr := k8s.WaitReason(t, ns, "e429", v1.ConditionReconciling, metav1.ConditionTrue, v1.ReasonTokenServiceUnavailable)
	failedAt := time.Now()
	if !contains(kube.Condition(tr, v1.ConditionReconciling).Message, "429") {
		t.Errorf("message lacks the status: %s", kube.Condition(tr, v1.ConditionReconciling).Message)
	}
	// Poke the object: an unrelated change must not cut the Retry-After short.
	k8s.UpdateTR(t, ns, "e429", func(tr *v1.TokenRequest) { tr.Annotations = map[string]string{"example.com/poke": "1"} })
	// The pass that observes a probe edit made after the poke read the poke too.
	if c := kube.Condition(k8s.SeeReconcile(t, ns, "e429"), v1.ConditionReconciling); c.Reason != v1.ReasonTokenServiceUnavailable {
		t.Errorf("after the poke Reconciling is %s", kube.Describe(c))
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Fatalf("retried before Retry-After: %d calls", n)
	}
	k8s.WaitReady(t, ns, "e429")
	if waited := time.Since(failedAt); waited < 7*time.Second {
		t.Errorf("recovered after %v, before Retry-After", waited)
	}
}

func TestAnInvalidClientIsTerminalAndNotHammered(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, _ := app(t, 3600)
	wrong := "wrong-" + randomHex(8)
	secretsUsed.Store(wrong, true)
	credentialSecret(t, ns, "cred", wrong, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "badclient", clientID, "cred"))

	tr := k8s.WaitReason(t, ns, "badclient", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonTokenServiceRejected)
	msg := kube.Condition(tr, v1.ConditionReady).Message
	if !contains(msg, "invalid_client") || !contains(msg, "AADSTS7000215") || !contains(msg, "correlation_id=") {
		t.Errorf("message lacks the error code or correlation id: %s", msg)
	}
	waitEvent(t, ns, "badclient", v1.ReasonTokenServiceRejected)
	// A later pass, seen through observedGeneration, keeps the schedule: the
	// first retry of a terminal error a minute (less jitter) after it.
	st := k8s.SeeReconcile(t, ns, "badclient").Status
	if st.NextRetryTime == nil || st.LastFailureTime == nil || st.NextRetryTime.Sub(st.LastFailureTime.Time) < 50*time.Second {
		t.Errorf("a terminal error is retried at %v after failing at %v", st.NextRetryTime, st.LastFailureTime)
	}
	// And the operator keeps to it past the first retryable backoff (5s).
	callsStay(t, clientID, 1, 6*time.Second)
}

func TestAFailedRefreshKeepsTheLastGoodTokenUntilItExpires(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 8)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "keep", clientID, "cred"))
	k8s.WaitReady(t, ns, "keep")
	good := k8s.GetSecret(t, ns, "keep")

	// The app disappears: every refresh now fails with unauthorized_client.
	sts.AddApp(entraserver.App{ClientID: clientID, Secrets: []string{"something-else"}, ExpiresIn: 8})
	tr := k8s.WaitReason(t, ns, "keep", v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)
	if c := kube.Condition(tr, v1.ConditionReady); c.Status != metav1.ConditionTrue {
		t.Errorf("Ready went %s while the token is still valid", c.Status)
	}
	if s := k8s.GetSecret(t, ns, "keep"); string(s.Data[v1.KeyAccessToken]) != string(good.Data[v1.KeyAccessToken]) {
		t.Fatalf("the last good token was replaced")
	}
	tr = k8s.WaitReason(t, ns, "keep", v1.ConditionReady, metav1.ConditionFalse, v1.ReasonExpired)
	if !contains(kube.Condition(tr, v1.ConditionReady).Message, "invalid_client") {
		t.Errorf("Expired message lacks the cause: %s", kube.Condition(tr, v1.ConditionReady).Message)
	}
	if s := k8s.GetSecret(t, ns, "keep"); string(s.Data[v1.KeyAccessToken]) != string(good.Data[v1.KeyAccessToken]) {
		t.Errorf("the Secret changed after the failure")
	}
}
