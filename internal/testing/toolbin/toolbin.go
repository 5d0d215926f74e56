// Package toolbin finds the test servers that hack/setup-*.sh build from the
// Go module proxy into a cache outside the clone.
package toolbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"time"
)

// Path returns the binary named by envVar if it is set, else the one the
// setup script hack/<script> builds (the first time on a machine) and
// prints as its last line. Build progress goes to stderr; needs says what
// a build requires, for the error.
func Path(envVar, script, needs string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", envVar, err)
		}
		return p, nil
	}
	path := filepath.Join(repoRoot(), "hack", script)
	cmd := exec.Command("bash", path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building with %s failed (needs %s): %w", path, needs, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	p := strings.TrimSpace(lines[len(lines)-1])
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		return "", fmt.Errorf("%s printed %q, which is not a binary", path, p)
	}
	return p, nil
}

// repoRoot is the repository's top folder, found from this file's location.
func repoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Stop ends a test server's process: SIGTERM, then a kill after 5 s.
// exited is closed once the process has been waited for; a server that had
// to be killed is an error.
func Stop(p *os.Process, exited <-chan struct{}, name string) error {
	select {
	case <-exited:
		return nil
	default:
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(5 * time.Second):
		_ = p.Kill()
		<-exited
		return fmt.Errorf("%s did not stop within 5s of SIGTERM and was killed", name)
	}
}
