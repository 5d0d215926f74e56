//go:build !linux

package zitadelop

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
