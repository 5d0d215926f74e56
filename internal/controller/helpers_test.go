package controller_test

import (
	"testing"

	"github.com/token-operator/token-operator/internal/metrics"
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
