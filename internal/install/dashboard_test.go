package install_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
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

// panelValues replaces the dashboard's variables for promtool: every
// namespace, the default minimum remaining lifetime.
var panelValues = strings.NewReplacer(`"$namespace"`, `".*"`, `"$namespace|"`, `".*|"`,
	"$min_remaining_lifetime", "120", "$__rate_interval", "5m")

// dashboardScenarios are an operator with healthy Entra tokens (60-90
// minutes, one refresh a minute ago still being written) and one whose
// refreshes fail, at 120m (7200 s). Each failing count is 1.
var dashboardScenarios = map[string]string{
	"healthy": `
  - series: 'token_operator_token_expiration_timestamp_seconds{namespace="team-a",name="graph"}'
    values: '9600x130'
  - series: 'token_operator_token_renewal_timestamp_seconds{namespace="team-a",name="graph"}'
    values: '7320x130'
  - series: 'token_operator_token_ready{namespace="team-a",name="graph"}'
    values: '1x130'
  - series: 'token_operator_token_expiration_timestamp_seconds{namespace="team-b",name="mail"}'
    values: '9000x130'
  - series: 'token_operator_token_renewal_timestamp_seconds{namespace="team-b",name="mail"}'
    values: '7140x130'
  - series: 'token_operator_token_ready{namespace="team-b",name="mail"}'
    values: '1x130'
  - series: 'token_operator_issuer_ready{kind="ClusterTokenIssuer",namespace="",name="corp-entra"}'
    values: '1x130'
  - series: 'token_operator_issuer_ready{kind="TokenIssuer",namespace="team-a",name="graph"}'
    values: '1x130'
`,
	"failing": `
  - series: 'token_operator_token_expiration_timestamp_seconds{namespace="team-a",name="graph"}'
    values: '7300x130'
  - series: 'token_operator_token_renewal_timestamp_seconds{namespace="team-a",name="graph"}'
    values: '6000x130'
  - series: 'token_operator_token_ready{namespace="team-a",name="graph"}'
    values: '1x130'
  - series: 'token_operator_token_ready{namespace="team-b",name="billing"}'
    values: '0x130'
  - series: 'token_operator_issuer_ready{kind="ClusterTokenIssuer",namespace="",name="corp-entra"}'
    values: '0x130'
  - series: 'token_operator_issuer_ready{kind="TokenIssuer",namespace="team-a",name="graph"}'
    values: '1x130'
`,
}

// TestDashboardStatsGreenOnHealthyTokens evaluates the dashboard's stat
// panels with promtool: on healthy Entra tokens, which are always less than
// an hour from expiry, each is 0 and below its first colored threshold; on
// failing refreshes, a not-Ready TokenRequest and a broken issuer, each is 1
// and colored. The renewal-lag panel lists only the overdue token.
func TestDashboardStatsGreenOnHealthyTokens(t *testing.T) {
	var d struct {
		Panels []struct {
			Title       string
			Type        string
			Targets     []struct{ Expr string }
			FieldConfig struct {
				Defaults struct {
					Thresholds struct {
						Steps []struct {
							Color string
							Value *float64
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(dashboardJSON(t), &d); err != nil {
		t.Fatal(err)
	}
	type check struct{ scenario, expr, samples string }
	var checks []check
	stats := 0
	for _, p := range d.Panels {
		switch {
		case p.Type == "stat":
			stats++
			steps := p.FieldConfig.Defaults.Thresholds.Steps
			if len(steps) != 2 || steps[0].Color != "green" || steps[1].Value == nil || *steps[1].Value != 1 {
				t.Errorf("stat %q: thresholds %+v, want green, then a color from 1", p.Title, steps)
			}
			expr := panelValues.Replace(p.Targets[0].Expr)
			checks = append(checks, check{"healthy", expr, "{} 0"}, check{"failing", expr, "{} 1"})
		case p.Title == "Renewal lag":
			expr := panelValues.Replace(p.Targets[0].Expr)
			checks = append(checks, check{"healthy", expr, ""},
				check{"failing", expr, `{namespace="team-a",name="graph"} 1200`})
		}
	}
	if stats < 4 || len(checks) != 2*stats+2 {
		t.Fatalf("%d stat panels and %d checks: want the four stats and the renewal lag", stats, len(checks))
	}
	var b strings.Builder
	b.WriteString("rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n")
	for _, c := range checks {
		fmt.Fprintf(&b, "- name: %s\n  interval: 1m\n  input_series:%s  promql_expr_test:\n  - expr: %q\n    eval_time: 120m\n",
			c.scenario, dashboardScenarios[c.scenario], c.expr)
		if labels, value, ok := strings.Cut(c.samples, " "); ok {
			fmt.Fprintf(&b, "    exp_samples:\n    - labels: '%s'\n      value: %s\n", labels, value)
		} else {
			b.WriteString("    exp_samples: []\n")
		}
	}
	dir := t.TempDir()
	for name, data := range map[string]string{"rules.yaml": "groups: []\n", "dashboard_test.yaml": b.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool(t), "test", "rules", "dashboard_test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool on the dashboard's panels: %v\n%s", err, out)
	}
}
