// Package metrics holds the operator's Prometheus collectors, registered on
// the controller-runtime metrics endpoint.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Collectors are the operator's metrics. Labels never carry token material.
type Collectors struct {
	Expiration      *prometheus.GaugeVec
	Renewal         *prometheus.GaugeVec
	Ready           *prometheus.GaugeVec
	ServiceRequests *prometheus.CounterVec
	ServiceDuration *prometheus.HistogramVec
	CacheRequests   *prometheus.CounterVec
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) *Collectors {
	c := &Collectors{
		Expiration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_operator_token_expiration_timestamp_seconds",
			Help: "When the token in a TokenRequest's Secret expires, as a Unix timestamp.",
		}, []string{"namespace", "name"}),
		Renewal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_operator_token_renewal_timestamp_seconds",
			Help: "When the operator plans to refresh a TokenRequest's token, as a Unix timestamp.",
		}, []string{"namespace", "name"}),
		Ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_operator_token_ready",
			Help: "1 when a TokenRequest's Secret holds an unexpired token matching its spec, else 0.",
		}, []string{"namespace", "name"}),
		ServiceRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_operator_token_service_requests_total",
			Help: "Calls to token services, by issuer host and result (success, or the error code).",
		}, []string{"issuer_host", "result"}),
		ServiceDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "token_operator_token_service_request_duration_seconds",
			Help:    "How long calls to token services took, by issuer host.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"issuer_host"}),
		CacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_operator_token_cache_requests_total",
			Help: "Lookups in the shared token cache: hit, miss (this lookup called the token service) or shared (joined a call under way).",
		}, []string{"result"}),
	}
	reg.MustRegister(c.Expiration, c.Renewal, c.Ready, c.ServiceRequests, c.ServiceDuration, c.CacheRequests)
	return c
}

var registered *Collectors

// Default returns the collectors registered on controller-runtime's registry.
func Default() *Collectors {
	if registered == nil {
		registered = New(ctrlmetrics.Registry)
	}
	return registered
}

// SetToken records a TokenRequest's token times and readiness.
func (c *Collectors) SetToken(namespace, name string, expiresAt, refreshAt time.Time, ready bool) {
	if !expiresAt.IsZero() {
		c.Expiration.WithLabelValues(namespace, name).Set(float64(expiresAt.Unix()))
	}
	if !refreshAt.IsZero() {
		c.Renewal.WithLabelValues(namespace, name).Set(float64(refreshAt.Unix()))
	}
	v := 0.0
	if ready {
		v = 1
	}
	c.Ready.WithLabelValues(namespace, name).Set(v)
}

// Forget removes a deleted TokenRequest's series.
func (c *Collectors) Forget(namespace, name string) {
	for _, g := range []*prometheus.GaugeVec{c.Expiration, c.Renewal, c.Ready} {
		g.DeleteLabelValues(namespace, name)
	}
}

// ObserveServiceCall records one call to a token service.
func (c *Collectors) ObserveServiceCall(issuerHost, result string, took time.Duration) {
	c.ServiceRequests.WithLabelValues(issuerHost, result).Inc()
	c.ServiceDuration.WithLabelValues(issuerHost).Observe(took.Seconds())
}

// ObserveCache records one cache lookup.
func (c *Collectors) ObserveCache(outcome string) {
	c.CacheRequests.WithLabelValues(outcome).Inc()
}
