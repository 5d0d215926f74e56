package tokenrequest_test

import (
	"testing"
	"time"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/token-operator/token-operator/internal/operator"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// leaderStatus is the value of leader_election_master_status{name=lease} on
// the manager's metrics registry, and whether the series exists.
func leaderStatus(t *testing.T, lease string) (float64, bool) {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "leader_election_master_status" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == lease {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestLeaderMetricForTheNoLeaderAlert: the manager with leader election
// exposes leader_election_master_status{name=<Lease>} 1 once it leads, which
// the TokenOperatorNoLeader alert (config/prometheus/alerts.yaml) reads; a
// replica that never led has no series.
func TestLeaderMetricForTheNoLeaderAlert(t *testing.T) {
	lease := "token-operator-test-" + randomHex(4)
	if _, ok := leaderStatus(t, lease); ok {
		t.Fatal("a series before any manager ran")
	}
	stop := startManager(t, func(o *operator.Options) {
		o.LeaderElection = true
		o.LeaderElectionID = lease
		o.LeaderElectionNamespace = testenv.OperatorNamespace
	})
	defer stop()
	kube.Eventually(t, 30*time.Second, "leader_election_master_status 1", func() bool {
		v, ok := leaderStatus(t, lease)
		return ok && v == 1
	})
}
