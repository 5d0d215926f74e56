//go:build !linux

package hydra

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
