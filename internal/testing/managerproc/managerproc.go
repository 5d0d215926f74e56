//go:build linux

// Package managerproc builds the manager (cmd/manager) from this tree and
// runs it as a child process, for tests and benchmarks that treat it as a
// black box: its log, its /metrics, its memory in /proc.
package managerproc

import (
	"context"
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
	"time"

	"github.com/token-operator/token-operator/internal/testing/syncbuf"
	"github.com/token-operator/token-operator/internal/testing/testenv"
)

// Build compiles ./cmd/manager into dir, the way the image and `make build`
// do (static, no symbol tables), and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/manager")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/manager: %v\n%s", err, out)
	}
	return bin, nil
}

// Process is a running manager.
type Process struct {
	Cmd *exec.Cmd
	// Log is everything the manager wrote to stdout and stderr.
	Log syncbuf.Buffer
	// MetricsAddr and ProbeAddr are the host:port the manager serves
	// /metrics and /readyz on.
	MetricsAddr, ProbeAddr string
	// Args are the flags it was started with, for a restart.
	Args []string
	// SecureMetrics is true when it was started by StartSecure: metrics
	// over HTTPS behind a bearer token, which Scrape does not read.
	SecureMetrics bool
	// Started is when the process was started.
	Started time.Time
}

// Start runs bin with args plus --metrics-bind-address,
// --metrics-secure=false (Scrape reads plain HTTP) and
// --health-probe-bind-address on free loopback ports, and waits up to a
// minute for /readyz.
func Start(bin string, args ...string) (*Process, error) {
	return StartAt(bin, FreeAddr(), FreeAddr(), args...)
}

// StartAt is Start with the metrics and probe addresses given.
func StartAt(bin, metricsAddr, probeAddr string, args ...string) (*Process, error) {
	return start(bin, metricsAddr, probeAddr, false, args)
}

// StartSecure is Start that leaves --metrics-secure at its default, so that
// the manager serves metrics as it does when deployed: over HTTPS, to
// bearer tokens allowed to get /metrics.
func StartSecure(bin string, args ...string) (*Process, error) {
	return start(bin, FreeAddr(), FreeAddr(), true, args)
}

func start(bin, metricsAddr, probeAddr string, secure bool, args []string) (*Process, error) {
	p := &Process{MetricsAddr: metricsAddr, ProbeAddr: probeAddr, Args: args, SecureMetrics: secure}
	all := []string{"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr}
	if !secure {
		all = append(all, "--metrics-secure=false")
	}
	p.Cmd = exec.Command(bin, append(all, args...)...)
	p.Cmd.Stdout, p.Cmd.Stderr = &p.Log, &p.Log
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.Started = time.Now()
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if ready(probeAddr) && listening(metricsAddr) {
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Stop()
	return nil, fmt.Errorf("the manager was not ready within a minute:\n%s", p.LogTail(50))
}

// ready reports whether the manager's /readyz answers 200.
func ready(probeAddr string) bool {
	resp, err := http.Get("http://" + probeAddr + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// listening reports whether the metrics server accepts connections: it
// starts beside the probes, so /readyz can answer before it listens.
func listening(metricsAddr string) bool {
	if metricsAddr == "" || metricsAddr == "0" {
		return true
	}
	conn, err := net.DialTimeout("tcp", metricsAddr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// Restart stops p and starts the same binary with the same flags and
// addresses.
func (p *Process) Restart() (*Process, error) {
	p.Stop()
	return start(p.Cmd.Path, p.MetricsAddr, p.ProbeAddr, p.SecureMetrics, p.Args)
}

// Stop sends SIGTERM and waits up to 15 s for the exit, then kills.
func (p *Process) Stop() {
	if p.Cmd.Process == nil || p.Cmd.ProcessState != nil {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-done
	}
}

// LogTail is the last n lines of the log.
func (p *Process) LogTail(n int) string {
	lines := strings.Split(p.Log.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// PeakRSS is the manager's high-water resident set size (VmHWM), in bytes.
func (p *Process) PeakRSS() (int64, error) { return p.status("VmHWM") }

// RSS is the manager's current resident set size (VmRSS), in bytes.
func (p *Process) RSS() (int64, error) { return p.status("VmRSS") }

// RSSAnon is the part of RSS that is the process's own memory (heap,
// stacks), in bytes; the rest is mostly the binary's pages.
func (p *Process) RSSAnon() (int64, error) { return p.status("RssAnon") }

// status reads a kB field of /proc/<pid>/status.
func (p *Process) status(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, p.Cmd.Process.Pid)
}

// Scrape reads /metrics over plain HTTP.
func (p *Process) Scrape(ctx context.Context) (string, error) {
	if p.SecureMetrics {
		return "", fmt.Errorf("the manager serves metrics over HTTPS behind a bearer token")
	}
	return Get(ctx, "http://"+p.MetricsAddr+"/metrics")
}

// Get reads the body of a GET on url.
func Get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// FreeAddr is a loopback host:port nobody listens on right now.
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}
