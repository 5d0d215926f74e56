package tokenrequest

import (
	"testing"
	"time"

	v1 "github.com/token-operator/token-operator/api/v1alpha1"
	"github.com/token-operator/token-operator/internal/renewal"
	"github.com/token-operator/token-operator/internal/secretdata"
)

// BenchmarkDecideKeep measures the decision of the most common reconcile:
// a valid token that needs nothing.
func BenchmarkDecideKeep(b *testing.B) {
	now := time.Now()
	o := observed{now: now, tr: &v1.TokenRequest{}, inputHash: "in", attemptHash: "a", credentialOK: true,
		policy: renewal.Policy{MinRemaining: 2 * time.Minute, JitterSeed: "ns/name"},
		secret: &secretdata.State{HasToken: true, Intact: true, IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour),
			InputHash: "in", TemplateHash: secretdata.TemplateHash(nil)}}
	b.ReportAllocs()
	for b.Loop() {
		if decide(o).action != actKeep {
			b.Fatal("not kept")
		}
	}
}
