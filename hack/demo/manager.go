package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// managerProcess is the bin/manager child; the demo stops only this process.
type managerProcess struct {
	cmd       *exec.Cmd
	probeAddr string
	// exited is closed when the process has exited; err is then its Wait error.
	exited chan struct{}
	err    error
}

// startManager runs the manager with its output in logFile. The child gets
// its own process group, so a Ctrl-C in the terminal reaches the demo only,
// which then stops the manager itself.
func startManager(ctx context.Context, path string, args []string, logFile string) (*managerProcess, error) {
	probe := ""
	for i, a := range args {
		if a == "--health-probe-bind-address" && i+1 < len(args) {
			probe = args[i+1]
		}
	}
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	m := &managerProcess{probeAddr: probe, exited: make(chan struct{})}
	m.cmd = exec.Command(path, args...)
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = sysProcAttr()
	started := make(chan error, 1)
	go func() {
		// The parent-death signal (Linux) is tied to the thread that starts
		// the child: keep that thread for as long as the child runs.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer log.Close()
		if err := m.cmd.Start(); err != nil {
			started <- fmt.Errorf("starting %s: %w", path, err)
			return
		}
		started <- nil
		m.err = m.cmd.Wait()
		close(m.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return m, nil
}

func (m *managerProcess) pid() int { return m.cmd.Process.Pid }

// waitReady polls /readyz until the manager's caches are synced.
func (m *managerProcess) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + m.probeAddr + "/readyz"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.exited:
			return fmt.Errorf("the manager exited while starting (%v)", m.err)
		case <-ctx.Done():
			return fmt.Errorf("the manager was not ready at %s after %s: %w", url, timeout, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, waits for a graceful exit, then kills.
func (m *managerProcess) stop(grace time.Duration) error {
	select {
	case <-m.exited:
		return nil
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
		return nil
	case <-time.After(grace):
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	return fmt.Errorf("the manager did not stop within %s of SIGTERM and was killed", grace)
}

// freePort asks the kernel for a free loopback port.
func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "0"
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
