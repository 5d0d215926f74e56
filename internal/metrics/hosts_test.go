package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The docs promise at most 32 issuer_host values, then "other": issuer
// hosts come from whoever writes a TokenRequest.
func TestIssuerHostLabelsStopAtThirtyTwoThenReadOther(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := New(reg)
	host := func(i int) string { return fmt.Sprintf("idp-%02d.example.com", i) }
	for i := range 40 {
		c.ObserveServiceCall(host(i), "success", time.Millisecond)
	}
	c.ObserveServiceCall(host(0), "success", time.Millisecond) // labelled before the cap: keeps its label

	if n := testutil.CollectAndCount(c.ServiceRequests); n != 33 {
		t.Errorf("%d issuer_host series in token_service_requests_total, want 32 hosts and other", n)
	}
	if n := testutil.CollectAndCount(c.ServiceDuration); n != 33 {
		t.Errorf("%d issuer_host series in token_service_request_duration, want 32 hosts and other", n)
	}
	for i, want := range map[int]float64{0: 2, 31: 1} {
		if got := testutil.ToFloat64(c.ServiceRequests.WithLabelValues(host(i), "success")); got != want {
			t.Errorf("%s counted %v, want %v", host(i), got, want)
		}
	}
	if got := testutil.ToFloat64(c.ServiceRequests.WithLabelValues(OtherHost, "success")); got != 8 {
		t.Errorf("other counted %v, want the 8 hosts past the cap", got)
	}
}
