package tokenrequest_test

import (
	"testing"
	"time"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// TestATokenRequestCreatedAgainTakesBackItsRetainedSecret: what docs/upgrade.md
// promises for a migration that deletes TokenRequests under Retain. The
// Secret outlives its TokenRequest; one created again under the same name
// takes the same Secret back, with the token in it, and calls no token
// service while that token is valid.
func TestATokenRequestCreatedAgainTakesBackItsRetainedSecret(t *testing.T) {
	startManager(t)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	tr := entraRequest(ns, "kept", clientID, "cred")
	tr.Spec.DeletionPolicy = v1.DeletionPolicyRetain
	k8s.MustCreate(t, tr)
	k8s.WaitReady(t, ns, "kept")
	before := k8s.GetSecret(t, ns, "kept")

	deleteAndSeeForgotten(t, ns, "kept")
	if k8s.FindSecret(t, ns, "kept") == nil {
		t.Fatal("the Secret went away with its Retain TokenRequest")
	}

	again := entraRequest(ns, "kept", clientID, "cred") // Delete, the default
	k8s.MustCreate(t, again)
	ready := k8s.WaitReady(t, ns, "kept")
	kube.Eventually(t, 10*time.Second, "the Secret owned by the new TokenRequest", func() bool {
		s := k8s.GetSecret(t, ns, "kept")
		ref := ownerRef(s, ready.UID)
		return ref != nil && ref.Controller != nil && *ref.Controller
	})
	after := k8s.GetSecret(t, ns, "kept")
	if after.UID != before.UID {
		t.Errorf("the Secret was made anew (UID %s, was %s) instead of taken back", after.UID, before.UID)
	}
	if string(after.Data[v1.KeyAccessToken]) != string(before.Data[v1.KeyAccessToken]) {
		t.Errorf("the retained token was replaced")
	}
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("taking the Secret back called the token service: %d calls, want the first one only", n)
	}
}
