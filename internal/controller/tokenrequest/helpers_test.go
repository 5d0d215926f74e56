package tokenrequest_test

import (
	"context"
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

// deleteAndSeeForgotten deletes a TokenRequest and waits until the running
// manager has reconciled the deletion: that pass drops the ready metric,
// which a pass seen just before the deletion had set. What the deletion
// pass would do has been done by then.
func deleteAndSeeForgotten(t *testing.T, ns, name string) {
	t.Helper()
	tr := k8s.SeeReconcile(t, ns, name)
	if _, ok := metrics.Default().TokenReady(ns, name); !ok {
		t.Fatalf("%s/%s has no ready metric after a pass: the deletion pass cannot be seen", ns, name)
	}
	if err := k8s.Delete(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, 10*time.Second, "the manager to reconcile the deletion of "+name, func() bool {
		_, ok := metrics.Default().TokenReady(ns, name)
		return !ok
	})
}
