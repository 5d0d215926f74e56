package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "manager")
	pkg := "github.com/token-operator/token-operator/internal/version"
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X "+pkg+".Version=v9.8.7 -X "+pkg+".Commit=abc123 -X "+pkg+".Date=2026-01-02T03:04:05Z", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("manager --version: %v\n%s", err, out)
	}
	for _, want := range []string{"v9.8.7", "abc123", "2026-01-02T03:04:05Z", "go1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("manager --version printed %q, want it to contain %q", out, want)
		}
	}
}
