package hydra

import "syscall"

// procAttr has the kernel stop Hydra if the test process dies without
// calling Stop, so no server outlives a crashed test run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
