package tokenrequest_test

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkTokenRequestsToReady measures how long a batch of 20 TokenRequests
// sharing one credential takes from creation to Ready against the real API
// server, through the shared cache (one token-service call per batch).
func BenchmarkTokenRequestsToReady(b *testing.B) {
	startManager(b)
	const batch = 20
	b.ReportAllocs()
	var total time.Duration
	for b.Loop() {
		ns := k8s.NewNamespace(b)
		clientID, secret := app(b, 3600)
		credentialSecret(b, ns, "cred", secret, sts.Host())
		start := time.Now()
		for i := 0; i < batch; i++ {
			k8s.MustCreate(b, entraRequest(ns, fmt.Sprintf("tr-%d", i), clientID, "cred"))
		}
		for i := 0; i < batch; i++ {
			k8s.WaitReady(b, ns, fmt.Sprintf("tr-%d", i))
		}
		total += time.Since(start)
		if n := sts.TokenCalls(clientID); n != 1 {
			b.Fatalf("%d token-service calls for one batch", n)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N*batch), "ms/TokenRequest")
}
