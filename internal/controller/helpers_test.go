package controller_test

import (
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/testing/kube"
)

// reconciledSince reports whether the running manager set the ready metric
// for every name (the metric is reset before a manager starts).
func reconciledSince(t *testing.T, ns string, names []string) bool {
	t.Helper()
	for _, n := range names {
		if v, ok := metrics.Default().TokenReady(ns, n); !ok || v != 1 {
			return false
		}
	}
	return true
}

// waitForgotten waits until the running manager has reconciled the deletion
// of a TokenRequest it had reconciled before: that pass drops the ready
// metric. What the deletion pass would do has been done by then.
func waitForgotten(t *testing.T, ns, name string) {
	t.Helper()
	if _, ok := metrics.Default().TokenReady(ns, name); !ok {
		t.Fatalf("%s/%s has no ready metric to lose: it was never reconciled", ns, name)
	}
	kube.Eventually(t, 10*time.Second, "the manager to reconcile the deletion of "+name, func() bool {
		_, ok := metrics.Default().TokenReady(ns, name)
		return !ok
	})
}
