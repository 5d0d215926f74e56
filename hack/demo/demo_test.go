package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/testing/syncbuf"
)

// TestDemo runs the demo unattended, as `DEMO_DURATION=... make demo` does,
// with a freshly built manager and 20-second tokens: both TokenRequests must
// become Ready, each token must be refreshed with a new token from the local
// token server before it expires, and neither the demo's output nor the
// manager's log may show a token or a credential.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane and the manager for about 45 seconds")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s", "1.37.2")
		if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
			t.Fatal("no API-server binaries: run 'make test' or set KUBEBUILDER_ASSETS=$(hack/setup-envtest.sh)")
		}
	}

	dir := t.TempDir()
	manager := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-trimpath", "-o", manager, "./cmd/manager") // as make build does, to share its cache
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the manager: %v\n%s", err, out)
	}

	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	started := time.Now()
	res, err := run(ctx, config{
		Root:          root,
		Assets:        assets,
		Manager:       manager,
		WorkDir:       filepath.Join(dir, "demo"),
		Duration:      30 * time.Second,
		TokenLifetime: 20 * time.Second, // refreshed 10s after issue (--min-remaining-lifetime=10s)
		MinRemaining:  10 * time.Second,
		Interval:      5 * time.Second,
		Out:           out,
	})
	t.Logf("demo ran %s:\n%s", time.Since(started).Round(time.Second), out)
	if err != nil {
		t.Fatal(err)
	}
	if log, err := os.ReadFile(res.ManagerLog); err == nil && t.Failed() {
		t.Logf("manager.log:\n%s", log)
	}
	if res.Interrupted {
		t.Fatal("the demo was interrupted")
	}
	if !res.OK() {
		t.Errorf("the demo failed: %v", res.problems())
	}
	text := out.String()
	for _, want := range []string{"export KUBECONFIG=", "REFRESH #1 client-secret-token", "REFRESH #1 certificate-token", "\nOK: "} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if len(res.Issued) < 4 {
		t.Errorf("the token server issued %d tokens, want at least 4 (2 issues, 2 refreshes)", len(res.Issued))
	}
	for _, secret := range append(res.Issued, res.Credentials...) {
		if strings.Contains(text, secret) {
			t.Fatal("the demo's output shows a token or credential")
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "demo", "kubeconfig")); err != nil {
		t.Errorf("no kubeconfig written: %v", err)
	}
}
