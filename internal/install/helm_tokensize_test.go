package install_test

import "testing"

// The chart passes --max-token-bytes as a plain integer, also for values
// read from YAML (floats) large enough to print in exponent notation.
func TestChartPassesMaxTokenBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"default values", map[string]any{}, "--max-token-bytes=65536"},
		{"every option on", allOnValues(t), "--max-token-bytes=1048576"},
		{"a value Helm reads as a float", map[string]any{"maxTokenBytes": float64(16 << 20)}, "--max-token-bytes=16777216"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := chartDeployment(t, renderChart(t, "token-operator", "token-operator-system", tc.values), "token-operator")
			checkArgsAreFlags(t, "chart Deployment", c.Args)
			containsAll(t, "chart Deployment", c.Args, tc.want)
		})
	}
}
