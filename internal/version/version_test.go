package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveLdflagsWin(t *testing.T) {
	read := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "fromvcs"}}}, true
	}
	i := resolve("v1.2.3", "abc", "2026-01-02T03:04:05Z", read)
	if i.Version != "v1.2.3" || i.Commit != "abc" || i.Date != "2026-01-02T03:04:05Z" {
		t.Errorf("got %+v", i)
	}
	if !strings.Contains(i.String(), "v1.2.3") || !strings.Contains(i.String(), "abc") {
		t.Errorf("String() = %q", i.String())
	}
}

func TestResolveFallsBackToVCS(t *testing.T) {
	read := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "deadbeef"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		}}, true
	}
	i := resolve("dev", "", "", read)
	if i.Commit != "deadbeef-dirty" || i.Date != "2026-01-02T03:04:05Z" || i.Version != "dev" {
		t.Errorf("got %+v", i)
	}
}

func TestResolveUnknown(t *testing.T) {
	i := resolve("", "", "", func() (*debug.BuildInfo, bool) { return nil, false })
	if i.Version != "dev" || i.Commit != "unknown" || i.Date != "unknown" || i.GoVersion == "" {
		t.Errorf("got %+v", i)
	}
}
