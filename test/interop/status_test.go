package interop_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/hydra"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// The status contract around refreshes: a stale cache read after the
// operator's own write must not roll the status back, and a failure stands
// until a call succeeds.

func TestTheReadyReasonSaysRefreshedAfterEachRefresh(t *testing.T) {
	// Several TokenRequests refreshing together make the race show.
	const lifespan = 6 * time.Second
	ctx := context.Background()
	ns := k8s.NewNamespace(t)
	const secret = "reason-secret-value"
	var ids []string
	// All clients exist before any token request: Hydra's in-memory SQLite
	// store can refuse a client read during a concurrent client write.
	for i := 0; i < 4; i++ {
		id := hydra.ClientID("reason")
		if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
			t.Fatal(err)
		}
		if err := srv.SetAccessTokenLifespan(ctx, id, lifespan); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		clientSecretCredential(t, ns, id+"-cred", secret)
		createTokenRequest(t, tokenRequest(ns, id, id, []string{"read"}, endpoints()[i%2]))
	}
	for _, id := range ids {
		k8s.WaitReady(t, ns, id)
	}

	// Over three refreshes each: once Ready says Refreshed it keeps saying
	// so, and every TokenRequest gets to say it.
	refreshed := map[string]bool{}
	tokens := map[string]bool{}
	for end := time.Now().Add(3 * lifespan); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, id := range ids {
			c := kube.Condition(k8s.GetTR(t, ns, id), v1.ConditionReady)
			switch {
			case c.Reason == v1.ReasonRefreshed:
				refreshed[id] = true
			case refreshed[id]:
				t.Fatalf("%s: Ready went back from Refreshed to %s", id, kube.Describe(c))
			}
			tokens[string(k8s.GetSecret(t, ns, id).Data[v1.KeyAccessToken])] = true
		}
	}
	if len(tokens) < 3*len(ids) {
		t.Fatalf("only %d tokens seen for %d TokenRequests in %v of %v tokens", len(tokens), len(ids), 3*lifespan, lifespan)
	}
	for _, id := range ids {
		if !refreshed[id] {
			t.Errorf("%s: Ready never said Refreshed", id)
		}
	}
}

func TestAnUnrelatedChangeDoesNotHideAFailedForcedRefresh(t *testing.T) {
	ctx := context.Background()
	ns := k8s.NewNamespace(t)
	id := hydra.ClientID("poked")
	const secret = "poked-secret-value"
	if err := srv.CreateClient(ctx, hydra.Client{ID: id, Secret: secret, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	clientSecretCredential(t, ns, id+"-cred", secret)
	createTokenRequest(t, tokenRequest(ns, id, id, []string{"read"}, endpoints()[1]))
	k8s.WaitReady(t, ns, id)
	if err := srv.DeleteClient(ctx, id); err != nil {
		t.Fatal(err)
	}
	tr := k8s.GetTR(t, ns, id)
	tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "revoked"}
	if err := k8s.Update(ctx, tr); err != nil {
		t.Fatal(err)
	}
	tr = k8s.WaitReason(t, ns, id, v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonTokenServiceRejected)

	tr.Annotations["example.com/unrelated"] = "1"
	if err := k8s.Update(ctx, tr); err != nil {
		t.Fatal(err)
	}
	// The pass that observes the probe edit made after the poke read the
	// poke as well.
	tr = k8s.SeeReconcile(t, ns, id)
	if c := kube.Condition(tr, v1.ConditionStalled); c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonTokenServiceRejected {
		t.Errorf("the failure is no longer reported: Stalled %s", kube.Describe(c))
	}
	if tr.Status.FailedAttempts != 1 || tr.Status.LastFailureTime == nil {
		t.Errorf("the failed attempt was forgotten: failedAttempts=%d lastFailureTime=%v", tr.Status.FailedAttempts, tr.Status.LastFailureTime)
	}
}
