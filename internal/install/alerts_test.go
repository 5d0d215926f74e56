package install_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
// is expected to fire in at least one case of the promtool tests and to stay
// quiet in another.
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
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			fires[a.Alertname] = fires[a.Alertname] || len(a.ExpAlerts) > 0
			quiet[a.Alertname] = quiet[a.Alertname] || len(a.ExpAlerts) == 0
		}
	}
	for _, rule := range alertRules(t) {
		if name, _ := rule["alert"].(string); !fires[name] {
			t.Errorf("no promtool test expects %s to fire", name)
		} else if !quiet[name] {
			t.Errorf("no promtool test expects %s to stay quiet", name)
		}
	}
}

// alertRules are the alerting rules of config/prometheus/alerts.yaml.
func alertRules(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, g := range alertGroups(t) {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, rule := range rules {
			if r := rule.(map[string]any); r["alert"] != nil {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no alerting rules")
	}
	return out
}

const runbookURL = "https://github.com/token-operator/token-operator/blob/main/docs/runbook.md#"

// TestEveryAlertHasARunbook: each alert has a severity, an owner to route on
// and a runbook_url pointing at the section of docs/runbook.md named after
// it, which explains meaning, impact, diagnosis and fix.
func TestEveryAlertHasARunbook(t *testing.T) {
	data, err := os.ReadFile(repoPath("docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, s := range strings.Split(string(data), "\n## ")[1:] {
		heading, body, _ := strings.Cut(s, "\n")
		sections[strings.ToLower(heading)] = body
	}
	for _, rule := range alertRules(t) {
		name := rule["alert"].(string)
		labels, _ := rule["labels"].(map[string]any)
		if sev := labels["severity"]; sev != "critical" && sev != "warning" {
			t.Errorf("%s: severity %v, want critical or warning", name, sev)
		}
		if owner := labels["owner"]; owner != "platform" && owner != "tenant" {
			t.Errorf("%s: owner %v, want platform or tenant", name, owner)
		}
		annotations, _ := rule["annotations"].(map[string]any)
		url, _ := annotations["runbook_url"].(string)
		if want := runbookURL + strings.ToLower(name); url != want {
			t.Errorf("%s: runbook_url %q, want %q", name, url, want)
			continue
		}
		body, ok := sections[strings.ToLower(name)]
		if !ok {
			t.Errorf("docs/runbook.md has no section \"## %s\"", name)
			continue
		}
		for _, part := range []string{"**Meaning.**", "**Impact.**", "**Diagnosis.**", "**Fix.**"} {
			if !strings.Contains(body, part) {
				t.Errorf("docs/runbook.md#%s has no %s", strings.ToLower(name), part)
			}
		}
	}
}

// resultMatcher and reasonMatcher are the =~ matchers of a rule's expression.
var (
	resultMatcher = regexp.MustCompile(`result=~"([^"]+)"`)
	reasonMatcher = regexp.MustCompile(`reason=~"([^"]+)"`)
)

// matcherValues are the alternatives of re's matcher in the expression of
// the alert named alert.
func matcherValues(t *testing.T, alert string, re *regexp.Regexp) []string {
	t.Helper()
	for _, r := range alertRules(t) {
		if r["alert"] == alert {
			m := re.FindStringSubmatch(r["expr"].(string))
			if m == nil {
				t.Fatalf("%s has no matcher %s", alert, re)
			}
			return strings.Split(m[1], "|")
		}
	}
	t.Fatalf("no alert %s", alert)
	return nil
}

// tenantResults are the token-service call results a tenant's configuration
// causes. The TokenRequest then turns Stalled with TokenServiceRejected,
// CredentialNotAllowed (host_not_allowed) or TokenTooLarge.
var tenantResults = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
	"unsupported_grant_type", "invalid_scope", "access_denied", "scheme_not_allowed", "host_not_allowed", "token_too_large", "invalid_target"}

// notTenantReasons are the condition reasons that need nothing of a
// tenant: success, transient failures the operator retries, rollouts, and
// rights the operator's own install lacks (PermissionDenied).
var notTenantReasons = []string{"Issued", "Refreshed", "Expired", "Recovered", "UpToDate", "Checked",
	"TokenServiceUnavailable", "RefreshFailed", "TokenCallsBusy", "ShortLifetime", "RolloutRestarted", "RolloutRestartFailed", "PermissionDenied"}

// reasonConstant is a condition reason constant of api/v1alpha1.
var reasonConstant = regexp.MustCompile(`(?m)^\s*Reason\w+\s*=\s*"(\w+)"`)

// TestEveryReasonIsRouted: each condition reason of api/v1alpha1 either
// pages the tenant (TokenOperatorTenantConfigErrors, and then
// TokenOperatorTokenNotReady leaves it out) or is in notTenantReasons, so a
// new reason cannot slip past both.
func TestEveryReasonIsRouted(t *testing.T) {
	tenant := matcherValues(t, "TokenOperatorTenantConfigErrors", reasonMatcher)
	if notReady := matcherValues(t, "TokenOperatorTokenNotReady", reasonMatcher); !slices.Equal(notReady, tenant) {
		t.Errorf("TokenOperatorTokenNotReady leaves out %v, TokenOperatorTenantConfigErrors matches %v", notReady, tenant)
	}
	reasons := reasonConstant.FindAllStringSubmatch(readFile(t, "api", "v1alpha1", "well_known.go"), -1)
	if len(reasons) < 20 {
		t.Fatalf("read only %d reasons from api/v1alpha1/well_known.go", len(reasons))
	}
	for _, m := range reasons {
		reason := m[1]
		if slices.Contains(tenant, reason) == slices.Contains(notTenantReasons, reason) {
			t.Errorf("reason %s: in TokenOperatorTenantConfigErrors %v, in notTenantReasons %v; want exactly one",
				reason, slices.Contains(tenant, reason), slices.Contains(notTenantReasons, reason))
		}
	}
	for _, reason := range []string{"TokenServiceRejected", "CredentialNotAllowed", "TokenTooLarge"} {
		if !slices.Contains(tenant, reason) {
			t.Errorf("TokenOperatorTenantConfigErrors leaves out %s, where tenantResults end", reason)
		}
	}
}

// TestServiceAlertsSplitEveryResult: each failing result of a token-service
// call is either the platform's (TokenOperatorTokenServiceFailing) or one of
// tenantResults, never both, so no failure pages both or neither.
func TestServiceAlertsSplitEveryResult(t *testing.T) {
	platform := matcherValues(t, "TokenOperatorTokenServiceFailing", resultMatcher)
	docs := documentedResults(t)
	if len(docs) < 10 {
		t.Fatalf("read only %v from docs/metrics.md", docs)
	}
	for _, result := range docs {
		if result == "success" {
			continue
		}
		if slices.Contains(platform, result) == slices.Contains(tenantResults, result) {
			t.Errorf("result %s: platform %v, tenant %v; want exactly one", result,
				slices.Contains(platform, result), slices.Contains(tenantResults, result))
		}
	}
	for _, result := range append(platform, tenantResults...) {
		if !slices.Contains(docs, result) {
			t.Errorf("result %s is not among those docs/metrics.md lists", result)
		}
	}
}

// documentedResults are the result values of
// token_operator_token_service_requests_total that docs/metrics.md lists.
func documentedResults(t *testing.T) []string {
	t.Helper()
	for _, line := range strings.Split(readFile(t, "docs", "metrics.md"), "\n") {
		if !strings.HasPrefix(line, "| `token_operator_token_service_requests_total`") {
			continue
		}
		cells := strings.Split(line, "|")
		meaning := cells[len(cells)-2]
		// "... `result` takes a fixed set of values, never text a server chose: `success`, ..."
		_, meaning, _ = strings.Cut(meaning, "chose:")
		meaning, _, _ = strings.Cut(meaning, "`issuer_host`")
		var results []string
		for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(meaning, -1) {
			results = append(results, m[1])
		}
		return results
	}
	t.Fatal("docs/metrics.md has no row for token_operator_token_service_requests_total")
	return nil
}
