package metrics

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTokenGaugesShowEachTokenRequestUntilForgotten(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := New(reg)
	expires := time.Unix(2_000_000_000, 0)
	refresh := time.Unix(1_999_990_000, 0)
	c.SetToken("team-a", "graph", expires, refresh, true)
	c.SetToken("team-b", "pending", time.Time{}, time.Time{}, false)

	want := `
# HELP token_operator_token_expiration_timestamp_seconds When the token in a TokenRequest's Secret expires, as a Unix timestamp.
# TYPE token_operator_token_expiration_timestamp_seconds gauge
token_operator_token_expiration_timestamp_seconds{name="graph",namespace="team-a"} 2e+09
# HELP token_operator_token_ready 1 when a TokenRequest's Secret holds an unexpired token matching its spec, else 0.
# TYPE token_operator_token_ready gauge
token_operator_token_ready{name="graph",namespace="team-a"} 1
token_operator_token_ready{name="pending",namespace="team-b"} 0
# HELP token_operator_token_renewal_timestamp_seconds When the operator plans to refresh a TokenRequest's token, as a Unix timestamp.
# TYPE token_operator_token_renewal_timestamp_seconds gauge
token_operator_token_renewal_timestamp_seconds{name="graph",namespace="team-a"} 1.99999e+09
`
	names := []string{"token_operator_token_expiration_timestamp_seconds", "token_operator_token_ready", "token_operator_token_renewal_timestamp_seconds"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}

	// A failed refresh keeps the times it does not know and turns ready off.
	c.SetToken("team-a", "graph", time.Time{}, time.Time{}, false)
	if v, ok := c.TokenReady("team-a", "graph"); !ok || v != 0 {
		t.Errorf("ready = %v, %v after a failure; want 0, true", v, ok)
	}
	if n := testutil.CollectAndCount(c.tokens, "token_operator_token_expiration_timestamp_seconds"); n != 1 {
		t.Errorf("the expiration series went with a failure: %d series", n)
	}

	c.Forget("team-a", "graph")
	if n := testutil.CollectAndCount(c.tokens); n != 1 {
		t.Errorf("after Forget, %d series are left; want the other TokenRequest's ready series only", n)
	}
	if _, ok := c.TokenReady("team-a", "graph"); ok {
		t.Errorf("the forgotten TokenRequest still has a ready value")
	}
	c.ResetTokens()
	if n := testutil.CollectAndCount(c.tokens); n != 0 {
		t.Errorf("after ResetTokens, %d series are left", n)
	}
}

// BenchmarkTokenGaugesMemory reports the heap the per-TokenRequest gauges
// keep for 10,000 TokenRequests.
func BenchmarkTokenGaugesMemory(b *testing.B) {
	const n = 10_000
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("tr-%05d", i)
	}
	now := time.Now()
	var perTR float64
	for b.Loop() {
		before := heapInUse()
		c := New(prometheus.NewRegistry())
		for i, name := range names {
			c.SetToken(fmt.Sprintf("ns-%02d", i%10), name, now, now, true)
		}
		perTR = float64(heapInUse()-before) / n
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perTR, "heap-B/TokenRequest")
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func TestTokenProblemSeriesFollowsTheConditionReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := New(reg)
	c.SetToken("team-a", "graph", time.Time{}, time.Time{}, false)
	c.SetTokenProblem("team-a", "graph", "TokenServiceRejected")
	c.SetToken("team-b", "fine", time.Time{}, time.Time{}, true)
	c.SetTokenProblem("team-b", "fine", "")
	want := `
# HELP token_operator_token_problem 1 while a TokenRequest's Reconciling or Stalled condition is True, with its reason (one of the operator's condition reasons).
# TYPE token_operator_token_problem gauge
token_operator_token_problem{name="graph",namespace="team-a",reason="TokenServiceRejected"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "token_operator_token_problem"); err != nil {
		t.Fatal(err)
	}
	// A new reason replaces the old series; a fix removes it.
	c.SetTokenProblem("team-a", "graph", "CredentialNotFound")
	if n := testutil.CollectAndCount(c.tokens, "token_operator_token_problem"); n != 1 {
		t.Errorf("%d problem series after a change of reason, want 1", n)
	}
	c.SetTokenProblem("team-a", "graph", "")
	if n := testutil.CollectAndCount(c.tokens, "token_operator_token_problem"); n != 0 {
		t.Errorf("%d problem series after the fix, want 0", n)
	}
}
