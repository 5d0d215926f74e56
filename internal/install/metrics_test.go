package install_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/token-operator/token-operator/internal/metrics"
	"github.com/token-operator/token-operator/internal/version"
)

// operatorMetricNames are the series names the operator exposes, histogram
// suffixes and the build identity included.
func operatorMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := metrics.New(reg)
	c.SetToken("ns", "name", time.Now(), time.Now(), true)
	c.SetTokenProblem("ns", "name", "TokenServiceRejected")
	c.ObserveServiceCall("issuer.example.com", "success", time.Second)
	c.ObserveCache("hit")
	c.SetIssuer("ClusterTokenIssuer", "", "corp", true, 1)
	metrics.RegisterBuildInfo(reg, version.Get())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	if len(families) != 10 {
		t.Fatalf("want the ten operator metrics, got %d", len(families))
	}
	return names
}

var metricRef = regexp.MustCompile(`\btoken_operator_[a-z_]+\b`)

// checkMetricNames fails for any token_operator_* name in text the operator
// does not expose.
func checkMetricNames(t *testing.T, source, text string) {
	t.Helper()
	known := operatorMetricNames(t)
	for _, m := range metricRef.FindAllString(text, -1) {
		if !known[m] {
			t.Errorf("%s names %s, which the operator does not expose", source, m)
		}
	}
}
