package tokenrequest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/operator"
)

// 100 TokenRequests that each need their own call, in one namespace, get
// their tokens at the namespace's call rate, while another namespace is
// served at once: waiting TokenRequests hold no worker.
func TestANamespaceOfManyDistinctRequestsIsServedAtItsCallRate(t *testing.T) {
	const n, rate, burst = 100, 10, 20
	startManager(t, func(o *operator.Options) {
		o.TokenCallsPerNamespacePerSecond, o.TokenCallBurstPerNamespace = rate, burst
	})
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	start := time.Now()
	for i := range n {
		tr := entraRequest(ns, fmt.Sprintf("tr-%d", i), clientID, "cred")
		tr.Spec.Scopes = []string{fmt.Sprintf("api://res-%d/.default", i)} // no shared-cache hit
		sts.AddResource("contoso", fmt.Sprintf("api://res-%d", i))
		k8s.MustCreate(t, tr)
	}
	created := time.Since(start)

	other := k8s.NewNamespace(t)
	otherID, otherSecret := app(t, 3600)
	credentialSecret(t, other, "cred", otherSecret, sts.Host())
	bystanderStart := time.Now()
	k8s.MustCreate(t, entraRequest(other, "bystander", otherID, "cred"))
	k8s.WaitReady(t, other, "bystander")
	if d := time.Since(bystanderStart); d > 3*time.Second {
		t.Errorf("another namespace waited %s for its token", d)
	}

	for i := range n {
		k8s.WaitReady(t, ns, fmt.Sprintf("tr-%d", i))
	}
	took := time.Since(start)
	t.Logf("%d TokenRequests created in %s, all Ready after %s; %d token calls", n, created.Round(time.Millisecond), took.Round(time.Millisecond), sts.TokenCalls(clientID))
	if minimum := time.Duration(float64(n-burst) / rate * float64(time.Second)); took < minimum-time.Second {
		t.Errorf("all Ready after %s, faster than %d calls at %d/s after a burst of %d allow (%s)", took, n, rate, burst, minimum)
	}
	if took > 30*time.Second {
		t.Errorf("all Ready after %s, want about %s", took, time.Duration(float64(n-burst)/rate*float64(time.Second)))
	}
	if c := sts.TokenCalls(clientID); c != n {
		t.Errorf("%d token calls, want %d", c, n)
	}
}
