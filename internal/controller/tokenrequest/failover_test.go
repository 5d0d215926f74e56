package tokenrequest_test

import (
	"testing"
	"time"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

func TestAStandbyReplicaTakesOverWithoutReissuing(t *testing.T) {
	electionID := "token-operator-test-" + randomHex(4)
	elect := func(o *operator.Options) {
		o.LeaderElection = true
		o.LeaderElectionID = electionID
		o.LeaderElectionNamespace = testenv.OperatorNamespace // where the Role allows Leases
	}
	stopLeader := startManager(t, elect)
	ns := k8s.NewNamespace(t)
	clientID, secret := app(t, 3600)
	credentialSecret(t, ns, "cred", secret, sts.Host())
	k8s.MustCreate(t, entraRequest(ns, "ha", clientID, "cred"))
	k8s.WaitReady(t, ns, "ha")
	startManager(t, elect) // the standby

	trVersion := k8s.GetTR(t, ns, "ha").ResourceVersion
	secretVersion := k8s.GetSecret(t, ns, "ha").ResourceVersion
	metrics.Default().ResetTokens()
	stopLeader()
	kube.Eventually(t, 30*time.Second, "the standby to take over", func() bool {
		return reconciledSince(t, ns, []string{"ha"})
	})
	if n := sts.TokenCalls(clientID); n != 1 {
		t.Errorf("the failover caused %d more token-service calls", n-1)
	}
	if k8s.GetTR(t, ns, "ha").ResourceVersion != trVersion || k8s.GetSecret(t, ns, "ha").ResourceVersion != secretVersion {
		t.Errorf("the failover rewrote the TokenRequest or its Secret")
	}

	// The new leader does the work from now on.
	before := string(k8s.GetSecret(t, ns, "ha").Data[v1.KeyAccessToken])
	k8s.UpdateTR(t, ns, "ha", func(tr *v1.TokenRequest) {
		tr.Annotations = map[string]string{v1.AnnotationRefreshRequestedAt: "after-failover"}
	})
	kube.Eventually(t, 15*time.Second, "a refresh by the new leader", func() bool {
		return string(k8s.GetSecret(t, ns, "ha").Data[v1.KeyAccessToken]) != before
	})
}
