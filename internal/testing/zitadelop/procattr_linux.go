package zitadelop

import "syscall"

// procAttr has the kernel stop the server if the test process dies without
// calling Stop, so no server outlives a crashed test run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
