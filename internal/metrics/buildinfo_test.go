package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/token-operator/token-operator/internal/version"
)

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterBuildInfo(reg, version.Info{Version: "v1.2.3", Commit: "abc123", Date: "2026-01-02", GoVersion: "go1.26.0"})
	want := `
# HELP token_operator_build_info Always 1; the labels tell the running manager's version, commit and Go version.
# TYPE token_operator_build_info gauge
token_operator_build_info{commit="abc123",go_version="go1.26.0",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), BuildInfoName); err != nil {
		t.Error(err)
	}
}
