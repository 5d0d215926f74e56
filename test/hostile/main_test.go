//go:build linux

// Package hostile_test runs the built manager (cmd/manager, as its own
// process) against a real API server and token services that misbehave on
// purpose, with TokenRequests written the way an untrusted namespace editor
// would write them, and checks that TokenRequests in other namespaces keep
// getting their tokens promptly.
package hostile_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/syncbuf"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

var (
	k8s *kube.Cluster
	// sts is a well-behaved token service (the Microsoft Entra ID protocol)
	// for the bystanders.
	sts *entraserver.Server
	// mgr is the manager process under test.
	mgr *managerProcess
	// hostile serves every misbehaving token endpoint; its CA is trusted.
	hostile *hostileServers
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = &kube.Cluster{Client: env.Client, NamespacePrefix: "hostile-", Wait: 30 * time.Second}
	sts = entraserver.New()
	defer sts.Close()
	hostile = startHostileServers()
	defer hostile.Close()

	work, err := os.MkdirTemp("", "hostile-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(work) }()
	mgr, err = startManagerProcess(env, work)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting the manager:", err)
		return 1
	}
	code := m.Run()
	mgr.Stop()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- manager log (last 200 lines) ---\n%s\n", mgr.logTail(200))
	}
	return code
}

// managerProcess is bin/manager built from this tree and run as a child.
type managerProcess struct {
	cmd         *exec.Cmd
	log         syncbuf.Buffer
	metricsAddr string
}

func startManagerProcess(env *testenv.Env, work string) (*managerProcess, error) {
	bin := filepath.Join(work, "manager")
	build := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/manager: %v\n%s", err, out)
	}
	kubeconfig, err := env.WriteKubeconfig(work)
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(work, "ca.pem")
	bundle := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sts.CA().Raw}), hostile.caPEM()...)
	if err := os.WriteFile(caFile, bundle, 0o600); err != nil {
		return nil, err
	}
	m := &managerProcess{metricsAddr: freeAddr()}
	probe := freeAddr()
	// Documented defaults otherwise: 8 workers, 2 token calls per
	// namespace, a 30 s call timeout, no plain-http loopback.
	m.cmd = exec.Command(bin,
		"--kubeconfig", kubeconfig,
		"--ca-bundle", caFile,
		"--metrics-bind-address", m.metricsAddr,
		"--health-probe-bind-address", probe,
	)
	m.cmd.Stdout, m.cmd.Stderr = &m.log, &m.log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + probe + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.Stop()
	return nil, fmt.Errorf("the manager was not ready within a minute:\n%s", m.logTail(50))
}

func (m *managerProcess) Stop() {
	if m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = m.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = m.cmd.Process.Kill()
		}
	}
}

func (m *managerProcess) logTail(n int) string {
	lines := strings.Split(m.log.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// peakRSS is the manager's high-water resident set size, in bytes.
func (m *managerProcess) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", m.cmd.Process.Pid)
}

func (m *managerProcess) scrape(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.metricsAddr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}
