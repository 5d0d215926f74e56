package install_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const dashboardFile = "token-operator-dashboard.json"

// dashboardJSON reads config/grafana/token-operator-dashboard.json.
func dashboardJSON(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPath("config", "grafana", dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// queries collects the PromQL of every panel target ("expr") and of the
// template variables ("query" objects' "query", "definition") in v.
func queries(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && (k == "expr" || k == "definition") {
				*out = append(*out, s)
			}
			queries(e, out)
		}
	case []any:
		for _, e := range v {
			queries(e, out)
		}
	}
}

// TestDashboardUsesOperatorMetrics: every panel of the dashboard queries
// something, and every token_operator_* name in its queries is one the
// operator exposes.
func TestDashboardUsesOperatorMetrics(t *testing.T) {
	var d struct {
		Panels []map[string]any `json:"panels"`
	}
	data := dashboardJSON(t)
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range d.Panels {
		var exprs []string
		queries(p, &exprs)
		if len(exprs) == 0 {
			t.Errorf("panel %q has no query", p["title"])
		}
		for _, e := range exprs {
			if metricRef.FindString(e) == "" {
				t.Errorf("panel %q: %q names no token_operator_* metric", p["title"], e)
			}
		}
	}
	var all map[string]any
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	queries(all, &exprs)
	for _, e := range exprs {
		checkMetricNames(t, "config/grafana/"+dashboardFile, e)
	}
}

// TestChartGrafanaDashboard: the chart ships config/grafana's dashboard,
// byte for byte, in a ConfigMap with the sidecar's label when
// grafana.dashboards.enabled, and nothing by default.
func TestChartGrafanaDashboard(t *testing.T) {
	want := dashboardJSON(t)
	copied, err := os.ReadFile(repoPath("charts", "token-operator", "dashboards", dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(copied, want) {
		t.Errorf("charts/token-operator/dashboards/%s differs from config/grafana/%s: copy it", dashboardFile, dashboardFile)
	}
	if got := ofKind(renderChart(t, "token-operator", "token-operator-system", nil).objects, "ConfigMap"); len(got) != 0 {
		t.Errorf("a ConfigMap by default: %s", describe(got[0]))
	}
	for name, c := range map[string]struct {
		values            map[string]any
		label, labelValue string
		annotations       map[string]string
	}{
		"all options on": {allOnValues(t), "grafana_dashboard", "1", map[string]string{"grafana_folder": "Platform"}},
		"another label": {map[string]any{"grafana": map[string]any{"dashboards": map[string]any{"enabled": true, "label": "dashboards.example.com/grafana", "labelValue": "platform"}}},
			"dashboards.example.com/grafana", "platform", nil},
	} {
		t.Run(name, func(t *testing.T) {
			r := renderChart(t, "tokens", "platform", c.values)
			cm := convert[corev1.ConfigMap](t, find(t, r.objects, "ConfigMap", "tokens-token-operator-dashboard"))
			if cm.Labels[c.label] != c.labelValue || cm.Labels["app.kubernetes.io/instance"] != "tokens" {
				t.Errorf("ConfigMap labels %v, want %s=%q and the release's", cm.Labels, c.label, c.labelValue)
			}
			if !reflect.DeepEqual(cm.Annotations, c.annotations) {
				t.Errorf("ConfigMap annotations %v, want %v", cm.Annotations, c.annotations)
			}
			if got := cm.Data[dashboardFile]; got != string(bytes.TrimSuffix(want, []byte("\n"))) {
				t.Errorf("the ConfigMap's %s is not config/grafana's dashboard (%d bytes, want %d)", dashboardFile, len(got), len(want))
			}
		})
	}
}
