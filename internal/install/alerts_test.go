package install_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// promtool returns PROMTOOL if set, else the promtool hack/setup-promtool.sh
// builds (several minutes the first time on a machine, then cached outside
// the clone).
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	script := repoPath("hack", "setup-promtool.sh")
	var out bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building promtool with %s (needs Go module proxy access): %v", script, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// alertTests reads the promtool unit tests of the alerts.
func alertTests(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPath("internal", "install", "testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAlertRules runs `promtool check rules` and `promtool test rules`
// (internal/install/testdata/alerts_test.yaml) on the rule groups of
// config/prometheus/alerts.yaml and on those of the chart's PrometheusRule.
func TestAlertRules(t *testing.T) {
	bin := promtool(t)
	r := renderChart(t, "token-operator", "token-operator-system", map[string]any{"prometheusRule": map[string]any{"enabled": true}})
	chartGroups, _, _ := unstructured.NestedSlice(find(t, r.objects, "PrometheusRule", "token-operator").Object, "spec", "groups")
	for source, groups := range map[string][]any{
		"config/prometheus/alerts.yaml": alertGroups(t),
		"chart PrometheusRule":          chartGroups,
	} {
		t.Run(source, func(t *testing.T) {
			rules, err := yaml.Marshal(map[string]any{"groups": groups})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			for name, data := range map[string][]byte{"rules.yaml": rules, "alerts_test.yaml": alertTests(t)} {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
				cmd := exec.Command(bin, args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("promtool %s on the rules of %s: %v\n%s", strings.Join(args, " "), source, err, out)
				}
			}
		})
	}
}

// TestEveryAlertHasAFiringTest: each alert of config/prometheus/alerts.yaml
// is expected to fire in at least one case of the promtool tests.
func TestEveryAlertHasAFiringTest(t *testing.T) {
	var file struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(alertTests(t), &file); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			fires[a.Alertname] = fires[a.Alertname] || len(a.ExpAlerts) > 0
		}
	}
	for _, g := range alertGroups(t) {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, rule := range rules {
			if name, _ := rule.(map[string]any)["alert"].(string); name != "" && !fires[name] {
				t.Errorf("no promtool test expects %s to fire", name)
			}
		}
	}
}
