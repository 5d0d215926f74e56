// Package consumer_test builds a program the way an application team would:
// its own module, on an older Go and client-go than the operator's, importing
// only pkg/tokenfile.
package consumer_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The consumer's own choices, which importing pkg/tokenfile must leave alone.
const (
	consumerGo       = "1.24.0"
	consumerClientGo = "v0.33.13"
	tokenfileModule  = "github.com/token-operator/token-operator/pkg/tokenfile"
)

// Modules of the operator that a consumer must never get.
var operatorOnly = []string{
	"github.com/token-operator/token-operator ", // the root module itself (path then version)
	"sigs.k8s.io/controller-runtime",
	"sigs.k8s.io/kustomize",
	"github.com/yuin/gopher-lua",
	"helm.sh/helm",
	"github.com/AzureAD/microsoft-authentication-library-for-go",
}

const consumerMain = `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"golang.org/x/oauth2"
	"k8s.io/client-go/rest"

	"github.com/token-operator/token-operator/pkg/tokenfile"
)

// Calls an API through client-go's transport with the mounted token.
func main() {
	cfg := &rest.Config{Host: os.Args[2]}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &oauth2.Transport{Source: tokenfile.New(os.Args[1]), Base: rt}
	})
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		panic(err)
	}
	resp, err := client.Get(os.Args[2])
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
}
`

// TestConsumerModuleKeepsItsGoAndClientGo: a module on go 1.24 and client-go
// v0.33 that imports pkg/tokenfile resolves, builds and runs with its go line
// and client-go version unchanged, and without the operator's dependencies.
// It needs the Go module proxy (or a module cache holding client-go v0.33).
func TestConsumerModuleKeepsItsGoAndClientGo(t *testing.T) {
	gobin, tokenfileDir, dir := consumerModule(t, "tokenfile")
	write(t, filepath.Join(dir, "go.mod"), fmt.Sprintf(
		"module example.com/consumer\n\ngo %s\n\nrequire k8s.io/client-go %s\n\nreplace %s => %s\n",
		consumerGo, consumerClientGo, tokenfileModule, tokenfileDir))
	write(t, filepath.Join(dir, "main.go"), consumerMain)

	goCmd := goRunner(t, gobin, dir)

	goCmd("mod", "tidy")
	var mod struct {
		Go        string
		Toolchain string
		Require   []struct{ Path, Version string }
	}
	if err := json.Unmarshal([]byte(goCmd("mod", "edit", "-json")), &mod); err != nil {
		t.Fatal(err)
	}
	if mod.Go != consumerGo || mod.Toolchain != "" {
		t.Errorf("go.mod says go %s, toolchain %q after go mod tidy; want go %s and no toolchain line", mod.Go, mod.Toolchain, consumerGo)
	}
	required := map[string]string{}
	for _, r := range mod.Require {
		required[r.Path] = r.Version
	}
	if v := required["k8s.io/client-go"]; v != consumerClientGo {
		t.Errorf("go.mod requires k8s.io/client-go %s after go mod tidy, want %s", v, consumerClientGo)
	}
	if _, ok := required[tokenfileModule]; !ok {
		t.Errorf("go.mod does not require %s: %v", tokenfileModule, required)
	}

	all := goCmd("list", "-m", "all")
	for _, line := range strings.Split(all, "\n") {
		for _, bad := range operatorOnly {
			if strings.HasPrefix(line+" ", bad) {
				t.Errorf("the consumer's build list holds %q", line)
			}
		}
		// client-go and the API modules it comes with stay at one release.
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "k8s.io/client-go" || f[0] == "k8s.io/api" || f[0] == "k8s.io/apimachinery") && f[1] != consumerClientGo {
			t.Errorf("the build list holds %s, want %s", line, consumerClientGo)
		}
	}

	goCmd("build", "./...")
	checkRun(t, goCmd)
}

// checkRun runs the consumer against an API on loopback that wants the token
// from a mounted Secret's files.
func checkRun(t *testing.T, goCmd func(...string) string) {
	t.Helper()
	token := t.TempDir()
	write(t, filepath.Join(token, "access_token"), "consumer-token")
	write(t, filepath.Join(token, "token_type"), "Bearer")
	write(t, filepath.Join(token, "expires_at"), time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer consumer-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer api.Close()
	if out := goCmd("run", ".", token, api.URL); out != "200 hello" {
		t.Errorf("the consumer printed %q, want %q", out, "200 hello")
	}
}

// goRunner runs the go command in the consumer module at dir and returns
// its output; it fails the test when the command fails.
// consumerModule skips without the module proxy's time or a go command, and
// returns the go command, the absolute path of pkg/<module> and an empty
// folder for a consumer module.
func consumerModule(t *testing.T, module string) (gobin, moduleDir, dir string) {
	t.Helper()
	if testing.Short() {
		t.Skip("resolves modules through the Go module proxy")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	moduleDir, err = filepath.Abs(filepath.Join("..", "..", "pkg", module))
	if err != nil {
		t.Fatal(err)
	}
	return gobin, moduleDir, t.TempDir()
}

func goRunner(t *testing.T, gobin, dir string) func(...string) string {
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command(gobin, args...)
		cmd.Dir = dir
		// GOTOOLCHAIN=local: a dependency needing a newer Go raises the go
		// line instead of switching toolchains, which the checks see.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GOWORK=off", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
