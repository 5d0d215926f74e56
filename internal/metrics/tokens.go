package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// tokenValues are one TokenRequest's gauge values; zero means unset.
type tokenValues struct {
	expires, refresh int64
	ready            bool
	// problem is the reason of a True Reconciling or Stalled condition.
	problem string
}

// tokenGauges serve the three per-TokenRequest gauges from one compact map,
// built into constant metrics at scrape time: three GaugeVecs hold about
// 1.3 KB per TokenRequest, this map about 150 bytes.
type tokenGauges struct {
	mu     sync.RWMutex
	values map[types.NamespacedName]tokenValues

	expiration, renewal, readiness, problem *prometheus.Desc
}

func newTokenGauges() *tokenGauges {
	labels := []string{"namespace", "name"}
	return &tokenGauges{
		values: map[types.NamespacedName]tokenValues{},
		expiration: prometheus.NewDesc("token_operator_token_expiration_timestamp_seconds",
			"When the token in a TokenRequest's Secret expires, as a Unix timestamp.", labels, nil),
		renewal: prometheus.NewDesc("token_operator_token_renewal_timestamp_seconds",
			"When the operator plans to refresh a TokenRequest's token, as a Unix timestamp.", labels, nil),
		readiness: prometheus.NewDesc("token_operator_token_ready",
			"1 when a TokenRequest's Secret holds an unexpired token matching its spec, else 0.", labels, nil),
		problem: prometheus.NewDesc("token_operator_token_problem",
			"1 while a TokenRequest's Reconciling or Stalled condition is True, with its reason (one of the operator's condition reasons).",
			[]string{"namespace", "name", "reason"}, nil),
	}
}

func (g *tokenGauges) set(key types.NamespacedName, expiresAt, refreshAt time.Time, ready bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.values[key]
	if !expiresAt.IsZero() {
		v.expires = expiresAt.Unix()
	}
	if !refreshAt.IsZero() {
		v.refresh = refreshAt.Unix()
	}
	v.ready = ready
	g.values[key] = v
}

func (g *tokenGauges) setProblem(key types.NamespacedName, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.values[key]
	v.problem = reason
	g.values[key] = v
}

func (g *tokenGauges) forget(key types.NamespacedName) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.values, key)
}

func (g *tokenGauges) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.values)
}

func (g *tokenGauges) ready(key types.NamespacedName) (float64, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	v, ok := g.values[key]
	if !ok {
		return 0, false
	}
	return readyValue(v.ready), true
}

// Describe implements prometheus.Collector.
func (g *tokenGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.expiration
	ch <- g.renewal
	ch <- g.readiness
	ch <- g.problem
}

type tokenEntry struct {
	key types.NamespacedName
	tokenValues
}

// Collect implements prometheus.Collector. It copies the values first, so a
// slow scrape does not hold up reconciles.
func (g *tokenGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.RLock()
	entries := make([]tokenEntry, 0, len(g.values))
	for k, v := range g.values {
		entries = append(entries, tokenEntry{k, v})
	}
	g.mu.RUnlock()
	for _, e := range entries {
		ns, name := e.key.Namespace, e.key.Name
		if e.expires != 0 {
			ch <- prometheus.MustNewConstMetric(g.expiration, prometheus.GaugeValue, float64(e.expires), ns, name)
		}
		if e.refresh != 0 {
			ch <- prometheus.MustNewConstMetric(g.renewal, prometheus.GaugeValue, float64(e.refresh), ns, name)
		}
		ch <- prometheus.MustNewConstMetric(g.readiness, prometheus.GaugeValue, readyValue(e.ready), ns, name)
		if e.problem != "" {
			ch <- prometheus.MustNewConstMetric(g.problem, prometheus.GaugeValue, 1, ns, name, e.problem)
		}
	}
}

func readyValue(ready bool) float64 {
	if ready {
		return 1
	}
	return 0
}
