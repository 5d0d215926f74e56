// Package metrics holds the operator's Prometheus collectors, registered on
// the controller-runtime metrics endpoint.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/token-operator/token-operator/internal/version"
)

// Collectors are the operator's metrics. Labels never carry token material.
type Collectors struct {
	// tokens are the per-TokenRequest gauges: expiration, renewal, ready.
	tokens          *tokenGauges
	ServiceRequests *prometheus.CounterVec
	ServiceDuration *prometheus.HistogramVec
	CacheRequests   *prometheus.CounterVec
	// IssuerReady and IssuerRequests describe TokenIssuers and ClusterTokenIssuers.
	IssuerReady    *prometheus.GaugeVec
	IssuerRequests *prometheus.GaugeVec

	hosts hostLabels
}

// MaxIssuerHostLabels bounds the distinct issuer_host label values: issuer
// hosts are chosen by whoever writes a TokenRequest, so past this many the
// label reads "other" and the series count stays flat.
const MaxIssuerHostLabels = 32

// OtherHost is the issuer_host value once MaxIssuerHostLabels are in use.
const OtherHost = "other"

// hostLabels hands out issuer_host values, first come first served, up to
// MaxIssuerHostLabels.
type hostLabels struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (h *hostLabels) label(host string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string]bool{}
	}
	if h.seen[host] {
		return host
	}
	if len(h.seen) >= MaxIssuerHostLabels {
		return OtherHost
	}
	h.seen[host] = true
	return host
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) *Collectors {
	c := &Collectors{
		tokens: newTokenGauges(),
		ServiceRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_operator_token_service_requests_total",
			Help: "Calls to token services, by issuer host (at most 32, then \"other\") and result (success, a standard OAuth2 error code, an operator code, or \"other\").",
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
		IssuerReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_operator_issuer_ready",
			Help: "1 when a TokenIssuer's or ClusterTokenIssuer's configuration and credential can be used, else 0 (namespace empty for a ClusterTokenIssuer).",
		}, []string{"kind", "namespace", "name"}),
		IssuerRequests: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_operator_issuer_token_requests",
			Help: "TokenRequests that name an issuer (those this manager serves).",
		}, []string{"kind", "namespace", "name"}),
	}
	reg.MustRegister(c.tokens, c.ServiceRequests, c.ServiceDuration, c.CacheRequests, c.IssuerReady, c.IssuerRequests)
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

// SetToken records a TokenRequest's token times and readiness; a zero time
// leaves that gauge as it was.
func (c *Collectors) SetToken(namespace, name string, expiresAt, refreshAt time.Time, ready bool) {
	c.tokens.set(types.NamespacedName{Namespace: namespace, Name: name}, expiresAt, refreshAt, ready)
}

// SetTokenProblem records the reason of a TokenRequest's True Reconciling or
// Stalled condition; empty when neither is True. Reasons are the operator's
// own constants, so the series count stays one per TokenRequest at most.
func (c *Collectors) SetTokenProblem(namespace, name, reason string) {
	c.tokens.setProblem(types.NamespacedName{Namespace: namespace, Name: name}, reason)
}

// Forget removes a deleted TokenRequest's series.
func (c *Collectors) Forget(namespace, name string) {
	c.tokens.forget(types.NamespacedName{Namespace: namespace, Name: name})
}

// TokenReady is the token_operator_token_ready value of a TokenRequest, and
// whether it has one.
func (c *Collectors) TokenReady(namespace, name string) (float64, bool) {
	return c.tokens.ready(types.NamespacedName{Namespace: namespace, Name: name})
}

// ResetTokens removes every TokenRequest's series.
func (c *Collectors) ResetTokens() { c.tokens.reset() }

// SetIssuer records an issuer's readiness and how many TokenRequests name it.
func (c *Collectors) SetIssuer(kind, namespace, name string, ready bool, requests int) {
	c.IssuerReady.WithLabelValues(kind, namespace, name).Set(readyValue(ready))
	c.IssuerRequests.WithLabelValues(kind, namespace, name).Set(float64(requests))
}

// ForgetIssuer removes a deleted issuer's series.
func (c *Collectors) ForgetIssuer(kind, namespace, name string) {
	c.IssuerReady.DeleteLabelValues(kind, namespace, name)
	c.IssuerRequests.DeleteLabelValues(kind, namespace, name)
}

// ObserveServiceCall records one call to a token service. result must come
// from a fixed set; issuerHost is bounded here.
func (c *Collectors) ObserveServiceCall(issuerHost, result string, took time.Duration) {
	issuerHost = c.hosts.label(issuerHost)
	c.ServiceRequests.WithLabelValues(issuerHost, result).Inc()
	c.ServiceDuration.WithLabelValues(issuerHost).Observe(took.Seconds())
}

// ObserveCache records one cache lookup.
func (c *Collectors) ObserveCache(outcome string) {
	c.CacheRequests.WithLabelValues(outcome).Inc()
}

// BuildInfoName is the name of the build identity gauge.
const BuildInfoName = "token_operator_build_info"

// RegisterBuildInfo registers token_operator_build_info{version,commit,go_version},
// always 1, on reg.
func RegisterBuildInfo(reg prometheus.Registerer, v version.Info) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: BuildInfoName,
		Help: "Always 1; the labels tell the running manager's version, commit and Go version.",
	}, []string{"version", "commit", "go_version"})
	g.WithLabelValues(v.Version, v.Commit, v.GoVersion).Set(1)
	reg.MustRegister(g)
}
