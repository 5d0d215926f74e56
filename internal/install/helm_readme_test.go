package install_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// valueLeaves flattens values.yaml into leaf paths ("a.b.c") and their
// defaults as compact JSON; an empty map or any list is a leaf.
func valueLeaves(t *testing.T, prefix string, v any, out map[string]string) {
	t.Helper()
	if m, ok := v.(map[string]any); ok && len(m) > 0 {
		for k, x := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			valueLeaves(t, p, x, out)
		}
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	out[prefix] = strings.TrimSpace(b.String())
}

// readmeValueRow is a row of the chart README's values table.
var readmeValueRow = regexp.MustCompile("^\\| `([^`]+)` \\| `([^`]*)` \\| (.*) \\|$")

// TestChartReadmeListsEveryValue: the chart README's values table lists
// exactly the leaf keys of values.yaml, with their defaults.
func TestChartReadmeListsEveryValue(t *testing.T) {
	want := map[string]string{}
	valueLeaves(t, "", readValues(t, repoPath("charts", "token-operator", "values.yaml")), want)
	got := map[string]string{}
	for _, line := range strings.Split(readFile(t, "charts", "token-operator", "README.md"), "\n") {
		m := readmeValueRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := got[m[1]]; dup {
			t.Errorf("README lists %s twice", m[1])
		}
		got[m[1]] = m[2]
	}
	if len(got) == 0 {
		t.Fatal("no values table in charts/token-operator/README.md")
	}
	var missing, extra []string
	for k, def := range want {
		switch g, ok := got[k]; {
		case !ok:
			missing = append(missing, k+" (default `"+def+"`)")
		case g != def:
			t.Errorf("README: %s defaults to `%s`, values.yaml to `%s`", k, g, def)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("the README's values table lacks %s", strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		t.Errorf("the README's values table lists keys values.yaml does not have: %s", strings.Join(extra, ", "))
	}
}
