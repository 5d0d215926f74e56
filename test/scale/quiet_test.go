//go:build linux

package scale_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// controlPlaneBusy is the CPU share (of one core) above which the API server
// and etcd still count as busy (idle, they use about 0.06): after a mass
// delete they work on for a while, and a phase measured then would be
// slower than the server really is.
const controlPlaneBusy = 0.2

// waitForQuietControlPlane waits, up to limit, until the kube-apiserver and
// etcd this process started use less than controlPlaneBusy of a core over
// a second, and returns how long that took.
func waitForQuietControlPlane(limit time.Duration) (time.Duration, error) {
	pids, err := childrenNamed("kube-apiserver", "etcd")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	before, err := cpuTicks(pids)
	if err != nil {
		return 0, err
	}
	for time.Since(start) < limit {
		time.Sleep(time.Second)
		now, err := cpuTicks(pids)
		if err != nil {
			return 0, err
		}
		// Linux reports process CPU time in ticks of 1/100 s.
		if float64(now-before)/100 < controlPlaneBusy {
			return time.Since(start), nil
		}
		before = now
	}
	return time.Since(start), errStillBusy
}

var errStillBusy = errors.New("the control plane is still busy")

// childrenNamed lists the PIDs of this process's children with those names.
func childrenNamed(names ...string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := procStat(pid)
		if err != nil {
			continue
		}
		comm, ppid := stat[0], stat[2]
		for _, n := range names {
			if comm == "("+n+")" && ppid == strconv.Itoa(os.Getpid()) {
				pids = append(pids, pid)
			}
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("no child process named %v", names)
	}
	return pids, nil
}

// cpuTicks sums user and system time of pids.
func cpuTicks(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		stat, err := procStat(pid)
		if err != nil {
			return 0, err
		}
		for _, field := range stat[12:14] { // utime, stime
			v, err := strconv.ParseInt(field, 10, 64)
			if err != nil {
				return 0, err
			}
			total += v
		}
	}
	return total, nil
}

// procStat is /proc/<pid>/stat split into fields from the command name on
// (fields[0] is "(comm)", fields[2] the parent PID).
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return nil, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	return append([]string{s[open : end+1]}, strings.Fields(s[end+1:])...), nil
}
