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
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/token-operator/token-operator/internal/testing/entraserver"
	"github.com/token-operator/token-operator/internal/testing/kube"
	"github.com/token-operator/token-operator/internal/testing/managerproc"
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
	restConfig = env.Config
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

// The manager's settings the steps rely on.
const (
	managerWorkers        = 16 // --max-concurrent-reconciles, default
	callSlotsPerNamespace = 2  // --max-token-calls-per-namespace, default
	minRefreshInterval    = 15 * time.Second
	namespaceCallRate     = 5
	namespaceCallBurst    = 10
)

// managerProcess is the manager built from this tree and run as a child.
type managerProcess struct {
	*managerproc.Process
	log *syncbuf.Buffer
}

func startManagerProcess(env *testenv.Env, work string) (*managerProcess, error) {
	bin, err := managerproc.Build(work)
	if err != nil {
		return nil, err
	}
	// As its service account, bound to the generated roles only.
	kubeconfig, err := env.WriteOperatorKubeconfig(context.Background(), work)
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(work, "ca.pem")
	bundle := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sts.CA().Raw}), hostile.caPEM()...)
	if err := os.WriteFile(caFile, bundle, 0o600); err != nil {
		return nil, err
	}
	// Documented defaults otherwise: 16 workers, 2 token calls per
	// namespace, a 30 s call timeout, no plain-http loopback.
	p, err := managerproc.Start(bin, "--kubeconfig", kubeconfig, "--ca-bundle", caFile,
		"--cluster-resource-namespace", testenv.OperatorNamespace,
		// Short and low enough that the storm steps see them at work.
		"--min-refresh-interval", minRefreshInterval.String(),
		"--token-calls-per-namespace-per-second", fmt.Sprint(namespaceCallRate),
		"--token-call-burst-per-namespace", fmt.Sprint(namespaceCallBurst),
	)
	if err != nil {
		return nil, err
	}
	return &managerProcess{Process: p, log: &p.Log}, nil
}

func (m *managerProcess) logTail(n int) string { return m.LogTail(n) }

// peakRSS is the manager's high-water resident set size, in bytes.
func (m *managerProcess) peakRSS() (int64, error) { return m.PeakRSS() }

func (m *managerProcess) scrape(ctx context.Context) (string, error) { return m.Scrape(ctx) }
